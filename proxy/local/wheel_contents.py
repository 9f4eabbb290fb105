"""What the local index reads from inside one wheel: its METADATA and its variant.json.

A wheel is a zip with exactly one top-level `*.dist-info` folder holding METADATA; a variant
wheel also holds `*.dist-info/variant.json` (PEP 825). Member sizes are checked before any
member is read, so a zip bomb costs nothing.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import IO

MAX_METADATA_BYTES = 16 * 1024 * 1024
MAX_VARIANT_JSON_BYTES = 8 * 1024 * 1024
_METADATA_RE = re.compile(r"^([^/]+\.dist-info)/METADATA$")


class WheelError(ValueError):
    """The file is not a readable wheel; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class WheelContents:
    dist_info: str  # the `{name}-{version}.dist-info` folder name
    metadata: bytes
    variant_json: bytes | None

    @property
    def metadata_fields(self) -> tuple[str, str, str | None]:
        """(Name, Version, Requires-Python) of METADATA; empty strings when missing."""
        headers = BytesHeaderParser().parsebytes(self.metadata)
        return (
            str(headers.get("Name", "")).strip(),
            str(headers.get("Version", "")).strip(),
            _optional(headers.get("Requires-Python")),
        )


def _optional(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes | None:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > limit:
        raise WheelError(f"{name} is larger than {limit} bytes")
    return archive.read(info)


def read_wheel(source: str | IO[bytes]) -> WheelContents:
    """Open a wheel (a path or a binary file) and read its METADATA and variant.json."""
    try:
        with zipfile.ZipFile(source) as archive:
            folders = sorted(
                match.group(1)
                for name in archive.namelist()
                if (match := _METADATA_RE.match(name)) is not None
            )
            if len(folders) != 1:
                found = ", ".join(folders[:3]) or "none"
                raise WheelError(f"expected one *.dist-info/METADATA, found {found}")
            folder = folders[0]
            metadata = _member(archive, f"{folder}/METADATA", MAX_METADATA_BYTES) or b""
            variant_json = _member(archive, f"{folder}/variant.json", MAX_VARIANT_JSON_BYTES)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error) as exc:
        raise WheelError(f"not a valid zip archive: {exc}") from None
    except (OSError, RuntimeError, NotImplementedError) as exc:
        raise WheelError(f"cannot read the archive: {exc}") from None
    return WheelContents(folder, metadata, variant_json)


def check_sdist(path: str) -> None:
    """The file is a readable `.tar.gz` or `.zip` archive (its members are listed, not read)."""
    try:
        if path.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        else:
            with tarfile.open(path, "r:gz") as tar:
                tar.getmembers()
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise WheelError(f"not a readable source archive: {exc}") from None
