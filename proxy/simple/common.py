"""Pieces shared by the simple-API HTML and JSON codecs: the error, versions, hashes.

Owns `PageFormatError`, PEP 629 api-version checks, the set of
hash names a page may use, and the api-version a rendered page announces.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from proxy.simple.model import ProjectPage
from proxy.simple.names import NormalizedName, normalize_name

_API_VERSION = re.compile(r"^(\d+)\.(\d+)$")

SUPPORTED_API_MAJOR = 1
# PEP 700: `versions`, `size` and `upload-time` exist from api-version 1.1 on.
PEP700_API_VERSION = (1, 1)

# PEP 503/691: any hashlib algorithm that takes no extra parameters. The guaranteed set keeps
# parsing identical on every machine; shake_* need a length and are not usable here.
HASH_NAMES = frozenset(name for name in hashlib.algorithms_guaranteed if "shake" not in name)


class PageFormatError(ValueError):
    """An index page could not be read; the one-line message names the bad part."""


def name_from_url(page_url: str) -> NormalizedName:
    """The normalised project name a page URL ends with (`.../simple/Foo_Bar/` -> foo-bar)."""
    segments = [segment for segment in urlsplit(page_url).path.split("/") if segment]
    if not segments:
        raise PageFormatError(f"cannot tell the project name from the page URL {page_url!r}")
    return normalize_name(unquote(segments[-1]))


def parse_api_version(text: str, where: str) -> tuple[int, int]:
    """Return (major, minor) of a PEP 629 `Major.Minor` version, refusing other majors."""
    match = _API_VERSION.match(text.strip())
    if match is None:
        raise PageFormatError(f"{where} {text!r} is not a 'Major.Minor' api-version")
    major, minor = int(match.group(1)), int(match.group(2))
    if major != SUPPORTED_API_MAJOR:
        raise PageFormatError(
            f"{where} {text!r} has unsupported major api-version {major}"
            f" (only {SUPPORTED_API_MAJOR}.x is understood)"
        )
    return major, minor


def rendered_api_version(page: ProjectPage) -> str:
    """The api-version to announce for `page`: at least 1.1 when it carries PEP 700 data."""
    has_pep700_data = page.versions is not None or any(
        f.size is not None or f.upload_time is not None for f in page.files
    )
    return announced_api_version(page.api_version, has_pep700_data)


def announced_api_version(api_version: str, has_pep700_data: bool) -> str:
    """`api_version`, raised to 1.1 for a page that carries PEP 700 data."""
    if not has_pep700_data:
        return api_version
    match = _API_VERSION.match(api_version)
    if match is not None and (int(match.group(1)), int(match.group(2))) >= PEP700_API_VERSION:
        return api_version
    return "{}.{}".format(*PEP700_API_VERSION)


def hash_name(text: str) -> str | None:
    """The lowercase hash name if `text` names a usable hashlib algorithm, else None."""
    name = text.strip().lower()
    return name if name in HASH_NAMES else None


def preferred_hash(hashes: Mapping[str, str]) -> tuple[str, str] | None:
    """The (name, digest) a single-hash format shows: sha256 if present, else the first."""
    if "sha256" in hashes:
        return "sha256", hashes["sha256"]
    for name, digest in hashes.items():
        return name, digest
    return None
