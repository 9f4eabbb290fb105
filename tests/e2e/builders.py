"""Real distributions for the e2e tests: wheels, sdists and their side files, built in-process.

Every wheel is a valid, installable zip (dist-info METADATA, WHEEL, RECORD with sha256 lines,
optional PEP 825 `variant.json`); its package carries a `BUILD` marker constant so a test can
tell which file an installer picked. Every sdist builds offline through an in-tree PEP 517
backend, so no build dependency is ever fetched. Output is deterministic for equal inputs.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import random
import re
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

# The schema URL of PEP 825's example; tests that need another one pass `schema_url`.
VARIANT_SCHEMA_URL = "https://variants-schema.wheelnext.dev/v0.0.3.json"

# 1980-01-01 is the earliest time a zip entry can carry; fixed so builds are reproducible.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_TAR_MTIME = 315532800

# {namespace: {feature: [values]}}, as in the `variants` entries of variant.json.
VariantProperties = Mapping[str, Mapping[str, Sequence[str]]]


class BuildError(ValueError):
    """A distribution cannot be built from the given parameters; the message names the bad one."""


@dataclass(frozen=True)
class BuiltDist:
    """One built file on disk and the facts an index page states about it."""

    project: str
    version: str
    path: Path
    kind: Literal["wheel", "sdist", "other"]
    # The core metadata (wheel METADATA / sdist PKG-INFO) bytes, as PEP 658 serves them.
    metadata: bytes = b""
    requires_python: str | None = None
    variant_label: str | None = None
    # The wheel's `*.dist-info/variant.json` content, for variant wheels.
    variant_json: Mapping[str, Any] | None = None
    build_marker: str = ""

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    @property
    def metadata_path(self) -> Path | None:
        """The PEP 658 `{file}.metadata` side file, written next to every wheel."""
        side = self.path.with_name(self.path.name + ".metadata")
        return side if side.exists() else None


def normalize(name: str) -> str:
    """PEP 503 project name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def escaped_name(name: str) -> str:
    """The name as it appears in wheel/sdist file names, dist-info folders and imports."""
    return re.sub(r"[-_.]+", "_", name).lower()


def core_metadata(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    summary: str = "",
) -> bytes:
    """Core metadata 2.1 text, the content of METADATA, PKG-INFO and `.metadata` files."""
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if summary:
        lines.append(f"Summary: {summary}")
    if requires_python is not None:
        lines.append(f"Requires-Python: {requires_python}")
    lines.extend(f"Requires-Dist: {requirement}" for requirement in requires_dist)
    return ("\n".join(lines) + "\n\n").encode()


def variant_json_document(
    label: str,
    properties: VariantProperties,
    *,
    namespace_priorities: Sequence[str] | None = None,
    schema_url: str = VARIANT_SCHEMA_URL,
) -> dict[str, Any]:
    """A PEP 825 `variant.json` for one wheel: the one label and its properties."""
    if not re.fullmatch(r"[0-9a-z_.]{1,16}", label):
        raise BuildError(f"invalid variant label {label!r}")
    namespaces = list(namespace_priorities) if namespace_priorities is not None else []
    for namespace in properties:
        if namespace not in namespaces:
            namespaces.append(namespace)
    return {
        "$schema": schema_url,
        "default-priorities": {"namespace": namespaces},
        "variants": {
            label: {
                namespace: {feature: list(values) for feature, values in features.items()}
                for namespace, features in properties.items()
            }
        },
    }


def parse_properties(items: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """`["ns :: feature :: value", ...]` -> `{ns: {feature: [value, ...]}}`, order kept."""
    nested: dict[str, dict[str, list[str]]] = {}
    for item in items:
        parts = [part.strip() for part in item.split("::")]
        if len(parts) != 3 or not all(parts):
            raise BuildError(f"invalid variant property {item!r}")
        namespace, feature, value = parts
        values = nested.setdefault(namespace, {}).setdefault(feature, [])
        if value not in values:
            values.append(value)
    return nested


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _expand_tags(tags: str) -> list[str]:
    """`py2.py3-none-any` -> every `python-abi-platform` triple it stands for."""
    parts = tags.split("-")
    if len(parts) != 3 or not all(parts):
        raise BuildError(f"invalid wheel tags {tags!r}: expected 'python-abi-platform'")
    pythons, abis, platforms = (part.split(".") for part in parts)
    return [f"{p}-{a}-{pl}" for p in pythons for a in abis for pl in platforms]


def _zip_bytes(members: Sequence[tuple[str, bytes]], stored: Iterable[str] = ()) -> bytes:
    stored_names = set(stored)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = (
                zipfile.ZIP_STORED if name in stored_names else zipfile.ZIP_DEFLATED
            )
            archive.writestr(info, data)
    return buffer.getvalue()


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    tags: str = "py3-none-any",
    variant_label: str | None = None,
    variant_properties: VariantProperties | Sequence[str] | None = None,
    namespace_priorities: Sequence[str] | None = None,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    build_marker: str | None = None,
    payload_size: int = 0,
) -> BuiltDist:
    """Write `{name}-{version}-{tags}[-{variant_label}].whl` and its `.metadata` into `dest`.

    `build_marker` (default: the variant label, else "plain") becomes `BUILD` in the package's
    `__init__.py`. `variant_properties` (a nested mapping or `ns :: feature :: value` strings)
    go to `{dist}.dist-info/variant.json`; a variant label without properties is a null-like
    variant with an empty property set. `payload_size` adds that many random bytes
    (deterministic for the file name) as `{package}/payload.bin`, stored uncompressed.
    """
    dist = escaped_name(name)
    marker = build_marker if build_marker is not None else (variant_label or "plain")
    filename = f"{dist}-{version}-{tags}" + (f"-{variant_label}" if variant_label else "") + ".whl"
    dist_info = f"{dist}-{version}.dist-info"
    metadata = core_metadata(
        name, version, requires_python=requires_python, requires_dist=requires_dist
    )
    wheel_file = "Wheel-Version: 1.0\nGenerator: variant-proxy-e2e\nRoot-Is-Purelib: true\n"
    wheel_file += "".join(f"Tag: {tag}\n" for tag in _expand_tags(tags))
    init = f'"""Test package {name} {version}."""\n\nBUILD = {marker!r}\nVERSION = {version!r}\n'
    members: list[tuple[str, bytes]] = [(f"{dist}/__init__.py", init.encode())]
    stored: list[str] = []
    if payload_size:
        payload = random.Random(filename).randbytes(payload_size)
        members.append((f"{dist}/payload.bin", payload))
        stored.append(f"{dist}/payload.bin")
    variant_json: dict[str, Any] | None = None
    if variant_label is not None:
        if variant_properties is None:
            nested: VariantProperties = {}
        elif isinstance(variant_properties, Mapping):
            nested = variant_properties
        else:
            nested = parse_properties(variant_properties)
        variant_json = variant_json_document(
            variant_label, nested, namespace_priorities=namespace_priorities
        )
        members.append((f"{dist_info}/variant.json", json.dumps(variant_json, indent=2).encode()))
    elif variant_properties is not None:
        raise BuildError(f"variant_properties given for {filename!r} without a variant_label")
    members += [(f"{dist_info}/METADATA", metadata), (f"{dist_info}/WHEEL", wheel_file.encode())]
    record = [_record_line(path, data) for path, data in members] + [f"{dist_info}/RECORD,,"]
    members.append((f"{dist_info}/RECORD", ("\n".join(record) + "\n").encode()))

    dest.mkdir(parents=True, exist_ok=True)
    path = dest / filename
    path.write_bytes(_zip_bytes(members, stored))
    path.with_name(filename + ".metadata").write_bytes(metadata)
    return BuiltDist(
        project=normalize(name),
        version=version,
        path=path,
        kind="wheel",
        metadata=metadata,
        requires_python=requires_python,
        variant_label=variant_label,
        variant_json=variant_json,
        build_marker=marker,
    )


# The in-tree PEP 517 backend shipped in every sdist. It reads name and version from PKG-INFO
# and builds a pure wheel of the package folder, using only the standard library.
_BACKEND_SOURCE = '''\
"""Minimal in-tree PEP 517 backend for e2e test sdists (standard library only)."""

import base64
import gzip
import hashlib
import os
import re
import tarfile
import zipfile
from email.parser import HeaderParser

_HERE = os.path.dirname(os.path.abspath(__file__))


def _pkg_info():
    with open(os.path.join(_HERE, "PKG-INFO"), encoding="utf-8") as handle:
        text = handle.read()
    headers = HeaderParser().parsestr(text)
    dist = re.sub(r"[-_.]+", "_", headers["Name"]).lower()
    return text, dist, headers["Version"]


def _dist_info_files():
    text, dist, version = _pkg_info()
    wheel = (
        "Wheel-Version: 1.0\\nGenerator: e2e-backend\\nRoot-Is-Purelib: true\\n"
        "Tag: py3-none-any\\n"
    )
    return f"{dist}-{version}.dist-info", {"METADATA": text, "WHEEL": wheel}


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    folder, files = _dist_info_files()
    os.makedirs(os.path.join(metadata_directory, folder), exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(metadata_directory, folder, name), "w", encoding="utf-8") as out:
            out.write(text)
    return folder


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _, dist, version = _pkg_info()
    folder, files = _dist_info_files()
    members = []
    package_dir = os.path.join(_HERE, dist)
    for name in sorted(os.listdir(package_dir)):
        with open(os.path.join(package_dir, name), "rb") as handle:
            members.append((f"{dist}/{name}", handle.read()))
    members += [(f"{folder}/{name}", text.encode()) for name, text in files.items()]
    record = [_record_line(path, data) for path, data in members] + [f"{folder}/RECORD,,"]
    members.append((f"{folder}/RECORD", ("\\n".join(record) + "\\n").encode()))
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
        for path, data in members:
            archive.writestr(path, data)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    _, dist, version = _pkg_info()
    filename = f"{dist}-{version}.tar.gz"
    with tarfile.open(os.path.join(sdist_directory, filename), "w:gz") as archive:
        archive.add(_HERE, arcname=f"{dist}-{version}")
    return filename
'''

_PYPROJECT = """\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
"""


def build_sdist(
    dest: Path,
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    build_marker: str = "sdist",
) -> BuiltDist:
    """Write `{name}-{version}.tar.gz`: PKG-INFO, pyproject.toml, backend.py and the package."""
    dist = escaped_name(name)
    root = f"{dist}-{version}"
    pkg_info = core_metadata(
        name, version, requires_python=requires_python, requires_dist=requires_dist
    )
    init = f'"""Test package {name} {version}."""\n\nBUILD = {build_marker!r}\n'
    init += f"VERSION = {version!r}\n"
    members = [
        (f"{root}/PKG-INFO", pkg_info),
        (f"{root}/pyproject.toml", _PYPROJECT.encode()),
        (f"{root}/backend.py", _BACKEND_SOURCE.encode()),
        (f"{root}/{dist}/__init__.py", init.encode()),
    ]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in (root, f"{root}/{dist}"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = _TAR_MTIME
            archive.addfile(info)
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = _TAR_MTIME
            archive.addfile(info, io.BytesIO(data))
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{root}.tar.gz"
    # mtime=0 in the gzip header keeps the bytes reproducible.
    path.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    return BuiltDist(
        project=normalize(name),
        version=version,
        path=path,
        kind="sdist",
        metadata=pkg_info,
        requires_python=requires_python,
        build_marker=build_marker,
    )


def merged_variants_json(wheels: Iterable[BuiltDist]) -> dict[str, Any]:
    """The index-level `{name}-{version}-variants.json` for these variant wheels (PEP 825)."""
    merged: dict[str, Any] | None = None
    for wheel in wheels:
        if wheel.variant_json is None:
            continue
        if merged is None:
            merged = json.loads(json.dumps(wheel.variant_json))
            continue
        namespaces: list[str] = merged["default-priorities"]["namespace"]
        for namespace in wheel.variant_json["default-priorities"]["namespace"]:
            if namespace not in namespaces:
                namespaces.append(namespace)
        for label, properties in wheel.variant_json["variants"].items():
            if merged["variants"].setdefault(label, properties) != properties:
                raise BuildError(f"variant label {label!r} has two property sets")
    if merged is None:
        raise BuildError("no variant wheels to merge into a variants.json")
    return merged


def write_variants_json(
    dest: Path, name: str, version: str, wheels: Iterable[BuiltDist]
) -> BuiltDist:
    """Write `{name}-{version}-variants.json` (merged from `wheels`) into `dest`."""
    document = merged_variants_json(wheels)
    path = dest / f"{escaped_name(name)}-{version}-variants.json"
    path.write_bytes(json.dumps(document, indent=2).encode())
    return BuiltDist(project=normalize(name), version=version, path=path, kind="other")
