"""Distribution file names: wheels (with the PEP 825 variant label), sdists, variants.json.

Pure parsing and formatting of the names an index lists. No I/O. (Which wheel stands in for
which on a legacy page is tag coverage: proxy/variants/coverage.py.)

Wheel names follow the PEP 825 template (one line in the PEP)::

    {distribution}-{version}(-{build tag})?-{python tag}-{abi tag}-{platform tag}
        (-{variant label})?.whl

A six-part name is read as carrying a build tag when its third part starts with a digit
(PEP 427 build tags must, and PEP 825 forbids python tags that do), else a variant label.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

NULL_VARIANT_LABEL = "null"
WHEEL_SUFFIX = ".whl"
SDIST_SUFFIXES = (".tar.gz", ".zip")
VARIANTS_JSON_SUFFIX = "-variants.json"

# PEP 825: non-empty, lowercase letters, digits, '_' and '.'; no length limit (older drafts
# and the uv prototype capped it at 16 characters, which files in the wild may exceed).
_LABEL_RE = re.compile(r"[0-9a-z_.]+")
# Names as they appear in file names: no '-', no whitespace. Legacy names may hold '.' and
# uppercase letters, so only the characters that can never appear are refused.
_DISTRIBUTION_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?")
# Legacy sdists were named after the unnormalised project name, which may contain '-'.
_SDIST_DISTRIBUTION_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_VERSION_RE = re.compile(r"[A-Za-z0-9_.!+]+")
_BUILD_TAG_RE = re.compile(r"[0-9][A-Za-z0-9_.]*")
_TAG_RE = re.compile(r"[A-Za-z0-9_.]+")


class FilenameError(ValueError):
    """A distribution file name is malformed; the message names the bad part."""


@dataclass(frozen=True, slots=True)
class WheelName:
    """The parts of a wheel file name, as written in it (tags possibly compressed: `py2.py3`)."""

    distribution: str
    version: str
    build_tag: str | None
    python_tag: str
    abi_tag: str
    platform_tag: str
    variant_label: str | None = None

    @property
    def is_variant(self) -> bool:
        """True for a PEP 825 variant wheel (the null variant included)."""
        return self.variant_label is not None

    @property
    def is_null_variant(self) -> bool:
        return self.variant_label == NULL_VARIANT_LABEL

    @property
    def legacy_filename(self) -> str:
        """The name with the variant label dropped: what a variant-unaware client may install."""
        build = f"-{self.build_tag}" if self.build_tag is not None else ""
        return (
            f"{self.distribution}-{self.version}{build}"
            f"-{self.python_tag}-{self.abi_tag}-{self.platform_tag}{WHEEL_SUFFIX}"
        )

    @property
    def filename(self) -> str:
        """The full file name, variant label included."""
        if self.variant_label is None:
            return self.legacy_filename
        return self.legacy_filename[: -len(WHEEL_SUFFIX)] + f"-{self.variant_label}{WHEEL_SUFFIX}"

    def __str__(self) -> str:
        return self.filename


@dataclass(frozen=True, slots=True)
class SdistName:
    """The parts of a source distribution file name (`.tar.gz` or `.zip`)."""

    distribution: str
    version: str
    suffix: str

    @property
    def filename(self) -> str:
        return f"{self.distribution}-{self.version}{self.suffix}"

    def __str__(self) -> str:
        return self.filename


def _check(pattern: re.Pattern[str], text: str, what: str, filename: str) -> str:
    if not pattern.fullmatch(text):
        raise FilenameError(f"invalid {what} {text!r} in {filename!r}")
    return text


def parse_wheel_filename(filename: str) -> WheelName:
    """Split a wheel file name into its parts, validating each; raise `FilenameError`."""
    if not filename.endswith(WHEEL_SUFFIX):
        raise FilenameError(f"not a wheel file name (no {WHEEL_SUFFIX!r} suffix): {filename!r}")
    parts = filename[: -len(WHEEL_SUFFIX)].split("-")
    build_tag: str | None = None
    label: str | None = None
    if len(parts) == 5:
        distribution, version, python_tag, abi_tag, platform_tag = parts
    elif len(parts) == 6:
        if parts[2][:1].isdigit():
            distribution, version, build_tag, python_tag, abi_tag, platform_tag = parts
        else:
            distribution, version, python_tag, abi_tag, platform_tag, label = parts
    elif len(parts) == 7:
        distribution, version, build_tag, python_tag, abi_tag, platform_tag, label = parts
    else:
        raise FilenameError(
            f"invalid wheel file name {filename!r}: expected 5 to 7 '-'-separated parts, "
            f"found {len(parts)}"
        )
    _check(_DISTRIBUTION_RE, distribution, "distribution name", filename)
    _check(_VERSION_RE, version, "version", filename)
    if build_tag is not None:
        _check(_BUILD_TAG_RE, build_tag, "build tag", filename)
    if python_tag[:1].isdigit():
        raise FilenameError(
            f"invalid python tag {python_tag!r} in {filename!r}: must not start with a digit"
        )
    _check(_TAG_RE, python_tag, "python tag", filename)
    _check(_TAG_RE, abi_tag, "abi tag", filename)
    _check(_TAG_RE, platform_tag, "platform tag", filename)
    if label is not None:
        _check(_LABEL_RE, label, "variant label", filename)
    return WheelName(distribution, version, build_tag, python_tag, abi_tag, platform_tag, label)


def parse_sdist_filename(filename: str) -> SdistName:
    """Split `{name}-{version}.tar.gz` / `.zip`; legacy names may themselves contain '-'."""
    suffix = next((s for s in SDIST_SUFFIXES if filename.endswith(s)), None)
    if suffix is None:
        raise FilenameError(
            f"not a source distribution file name (expected .tar.gz or .zip): {filename!r}"
        )
    distribution, dash, version = filename[: -len(suffix)].rpartition("-")
    if not dash:
        raise FilenameError(f"invalid sdist file name {filename!r}: no '-' before the version")
    _check(_SDIST_DISTRIBUTION_RE, distribution, "distribution name", filename)
    _check(_VERSION_RE, version, "version", filename)
    return SdistName(distribution, version, suffix)


def parse_dist_filename(filename: str) -> WheelName | SdistName | None:
    """Parse a wheel or sdist name; None for any other file (eggs, installers, variants.json)."""
    if filename.endswith(WHEEL_SUFFIX):
        return parse_wheel_filename(filename)
    if filename.endswith(SDIST_SUFFIXES):
        return parse_sdist_filename(filename)
    return None


def normalize_distribution(name: str) -> str:
    """The wheel-file-name form of a project name: runs of `-_.` become `_`, lowercase."""
    return re.sub(r"[-_.]+", "_", name).lower()


def normalize_version(version: str) -> str:
    """The wheel-file-name form of a version: PEP 440 normal form, `-` replaced by `_`."""
    with contextlib.suppress(InvalidVersion):  # keep a non-PEP 440 version as written
        version = str(Version(version))
    return version.replace("-", "_")


def variants_json_filename(distribution: str, version: str) -> str:
    """The PEP 825 index-level metadata file name, `{name}-{version}-variants.json`."""
    return (
        f"{normalize_distribution(distribution)}-{normalize_version(version)}{VARIANTS_JSON_SUFFIX}"
    )


def may_be_variant_file(filename: str) -> bool:
    """Whether `filename` can be a variant wheel or a variants.json (a cheap test of the
    name: a variant wheel has a label, six or more dash-separated parts, or a build tag)."""
    return filename.endswith(VARIANTS_JSON_SUFFIX) or (
        filename.endswith(".whl") and filename.count("-") >= 5
    )


def parse_variants_json_filename(filename: str) -> tuple[str, str] | None:
    """Return (name, version) as written in a `{name}-{version}-variants.json`, else None."""
    if not filename.endswith(VARIANTS_JSON_SUFFIX):
        return None
    parts = filename[: -len(VARIANTS_JSON_SUFFIX)].split("-")
    if len(parts) != 2:
        return None
    name, version = parts
    if not _DISTRIBUTION_RE.fullmatch(name) or not _VERSION_RE.fullmatch(version):
        return None
    return name, version
