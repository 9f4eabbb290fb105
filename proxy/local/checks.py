"""Whether an upload may enter the local index (pure: no I/O).

The legacy upload API (`twine upload`, `uv publish`) sends a multipart form: `:action`,
`protocol_version`, the metadata fields (`name`, `version`, ...), digests of the file
(`sha256_digest`, `blake2_256_digest`, `md5_digest`) and the file itself as `content`.
Every check names what is wrong, for a 400 answer; `UploadRejected.status` says which code.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from proxy.local.wheel_contents import WheelContents
from proxy.simple.filenames import (
    FilenameError,
    WheelName,
    normalize_version,
    parse_dist_filename,
)
from proxy.simple.names import normalize_name
from proxy.variants.metadata import VariantsDoc, VariantsJsonError, parse_variants_json

SAFE_FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+!~-]*$")
MAX_FILENAME_LENGTH = 255
ECHO_LIMIT = 200


class UploadRejected(Exception):
    """The upload is refused: `status` (400, 403, 409, 413) and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def echo(text: str) -> str:
    """A client's value as an error message may quote it: bounded, one line."""
    shown = text[:ECHO_LIMIT].replace("\n", " ").replace("\r", " ")
    return repr(shown) + ("..." if len(text) > ECHO_LIMIT else "")


def presented_token(authorization: str | None) -> str | None:
    """The token an `Authorization` header carries: a Bearer token, or the password of basic
    auth (twine and `uv publish` send `__token__:TOKEN`; any user name is accepted)."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, colon, password = decoded.partition(":")
    return password if colon and password else None


def token_matches(authorization: str | None, token: str) -> bool:
    """True when the header carries `token` (compared in constant time)."""
    presented = presented_token(authorization)
    if not token or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), token.encode())


@dataclass(frozen=True)
class Received:
    """What arrived: the form's text fields and the file, as hashed while it was written."""

    fields: Mapping[str, Sequence[str]]
    filename: str
    size: int
    digests: Mapping[str, str]  # sha256, blake2_256, md5 -> hex digest of the bytes received


@dataclass(frozen=True)
class CheckedUpload:
    project: str  # normalised
    version: str  # normalised
    filename: str
    wheel: WheelName | None
    variant: VariantsDoc | None  # the wheel's own variant.json, for a variant wheel


def field(received: Received, name: str) -> str | None:
    values = received.fields.get(name)
    return values[0] if values else None


def check_form(received: Received) -> None:
    """The request is a file upload of the protocol version this server speaks."""
    action = field(received, ":action")
    if action != "file_upload":
        raise UploadRejected(400, f"unsupported :action {echo(action or '')}; expected file_upload")
    protocol = field(received, "protocol_version")
    if protocol not in (None, "1"):
        raise UploadRejected(400, f"unsupported protocol_version {echo(protocol)}")


def check_filename(filename: str) -> WheelName | None:
    """The file name is a bare wheel or sdist name; returns the wheel's parts (None: sdist)."""
    if (
        not filename
        or len(filename) > MAX_FILENAME_LENGTH
        or not SAFE_FILENAME_RE.fullmatch(filename)
    ):
        raise UploadRejected(400, f"invalid file name {echo(filename)}")
    try:
        parsed = parse_dist_filename(filename)
    except FilenameError as exc:
        raise UploadRejected(400, str(exc)) from None
    if parsed is None:
        raise UploadRejected(400, f"not a wheel or sdist file name: {echo(filename)}")
    return parsed if isinstance(parsed, WheelName) else None


def check_digests(received: Received) -> None:
    """Every digest the client sent matches the bytes received; at least one was sent."""
    sent = False
    for algorithm in ("sha256", "blake2_256", "md5"):
        claimed = field(received, f"{algorithm}_digest")
        if not claimed:
            continue
        sent = True
        if claimed.strip().lower() != received.digests.get(algorithm):
            raise UploadRejected(
                400, f"{algorithm}_digest does not match the uploaded file {received.filename}"
            )
    if not sent:
        raise UploadRejected(400, "no sha256_digest given for the uploaded file")


def check_name_and_version(received: Received) -> tuple[str, str]:
    parsed = parse_dist_filename(received.filename)
    assert parsed is not None  # check_filename ran first
    name, version = field(received, "name"), field(received, "version")
    if not name:
        raise UploadRejected(400, "the name field is missing")
    if not version:
        raise UploadRejected(400, "the version field is missing")
    project = normalize_name(parsed.distribution)
    if normalize_name(name) != project:
        raise UploadRejected(
            400, f"name {echo(name)} does not match the file name {received.filename}"
        )
    if normalize_version(version) != normalize_version(parsed.version):
        raise UploadRejected(
            400, f"version {echo(version)} does not match the file name {received.filename}"
        )
    return project, normalize_version(parsed.version)


def check_wheel(wheel: WheelName, contents: WheelContents) -> VariantsDoc | None:
    """METADATA agrees with the file name; a variant wheel's variant.json names its label."""
    name, version, _ = contents.metadata_fields
    filename = wheel.filename
    if normalize_name(name) != normalize_name(wheel.distribution):
        raise UploadRejected(400, f"METADATA Name {echo(name)} does not match {filename}")
    if normalize_version(version) != normalize_version(wheel.version):
        raise UploadRejected(400, f"METADATA Version {echo(version)} does not match {filename}")
    if wheel.variant_label is None:
        if contents.variant_json is not None:
            raise UploadRejected(
                400, f"{filename} has a variant.json but no variant label in its name"
            )
        return None
    if contents.variant_json is None:
        raise UploadRejected(400, f"variant wheel {filename} has no *.dist-info/variant.json")
    try:
        doc = parse_variants_json(contents.variant_json)
    except VariantsJsonError as exc:
        raise UploadRejected(400, f"invalid variant.json in {filename}: {exc}") from None
    if wheel.variant_label not in doc.variants:
        raise UploadRejected(
            400,
            f"variant label {wheel.variant_label!r} of {filename} is not in its variant.json "
            f"(which lists {sorted(doc.variants)[:5]})",
        )
    if len(doc.variants) != 1:
        raise UploadRejected(
            400, f"the variant.json of {filename} must describe only its own label"
        )
    return doc


def check_upload(received: Received, contents: WheelContents | None) -> CheckedUpload:
    """All checks of one upload; `contents` is the opened wheel (None for an sdist)."""
    check_form(received)
    wheel = check_filename(received.filename)
    project, version = check_name_and_version(received)
    check_digests(received)
    variant = None
    if wheel is not None:
        if contents is None:
            raise UploadRejected(400, f"{received.filename} is not a readable wheel")
        variant = check_wheel(wheel, contents)
    return CheckedUpload(project, version, received.filename, wheel, variant)
