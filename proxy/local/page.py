"""A project page built from the files of a local directory (pure: no I/O).

Every file gets its sha256, size and upload time (PEP 700, from its modification time);
every readable wheel advertises its own METADATA as PEP 658 metadata. A version with variant
wheels and no `{name}-{version}-variants.json` of its own gets one built from the wheels'
`*.dist-info/variant.json` by PEP 825 merging; a version whose wheels cannot be merged gets
none (its variants are then incompatible) and the reason is reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from packaging.version import InvalidVersion, Version

from proxy.simple.filenames import (
    FilenameError,
    WheelName,
    normalize_version,
    parse_dist_filename,
    parse_variants_json_filename,
    variants_json_filename,
)
from proxy.simple.model import DistFile, ProjectPage, Yanked
from proxy.simple.names import normalize_name
from proxy.variants.metadata import (
    VariantsConflictError,
    VariantsJsonError,
    merge_variants_docs,
    parse_variants_json,
    render_variants_json,
)

# Answers PEP 700 fields (size, upload-time, versions).
API_VERSION = "1.1"


@dataclass(frozen=True, slots=True)
class LocalFile:
    """One file of the directory and what reading it taught (hashes are of its bytes)."""

    path: str  # relative to the directory, '/'-separated
    size: int
    mtime_ns: int
    sha256: str
    metadata_sha256: str | None = None  # of the wheel's own METADATA
    requires_python: str | None = None
    variant_json: bytes | None = None  # the wheel's own *.dist-info/variant.json
    yanked: Yanked = False

    @property
    def filename(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def folder(self) -> str:
        return self.path.rpartition("/")[0]


@dataclass(frozen=True)
class DirectoryPage:
    page: ProjectPage
    # variants.json files this page lists that are not on disk: relative path -> bytes.
    built: Mapping[str, bytes] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def upload_time(mtime_ns: int) -> str:
    """PEP 700 `upload-time`: ISO 8601 in UTC with microseconds and a `Z`."""
    moment = datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def _dist(local: LocalFile, url_for: Callable[[str], str]) -> DistFile:
    return DistFile(
        filename=local.filename,
        url=url_for(local.path),
        hashes={"sha256": local.sha256},
        requires_python=local.requires_python,
        yanked=local.yanked,
        core_metadata={"sha256": local.metadata_sha256} if local.metadata_sha256 else False,
        size=local.size,
        upload_time=upload_time(local.mtime_ns),
    )


def _project_version(local: LocalFile, project: str) -> tuple[str, WheelName | None] | None:
    """(normalised version, wheel name or None for an sdist) of a file of `project`."""
    try:
        parsed = parse_dist_filename(local.filename)
    except FilenameError:
        return None
    if parsed is None or normalize_name(parsed.distribution) != project:
        return None
    wheel = parsed if isinstance(parsed, WheelName) else None
    return normalize_version(parsed.version), wheel


def built_variants_json(
    distribution: str, version: str, wheels: Sequence[LocalFile]
) -> tuple[str, bytes | None, str | None]:
    """(file name, merged variants.json or None, problem) from variant wheels' own files."""
    filename = variants_json_filename(distribution, version)
    docs = []
    for wheel in wheels:
        if wheel.variant_json is None:
            return filename, None, f"{wheel.filename} has no *.dist-info/variant.json"
        try:
            docs.append(parse_variants_json(wheel.variant_json))
        except VariantsJsonError as exc:
            return filename, None, f"invalid variant.json in {wheel.filename}: {exc}"
    try:
        return filename, render_variants_json(merge_variants_docs(docs)), None
    except (VariantsJsonError, VariantsConflictError) as exc:
        return filename, None, f"variant.json files of {filename} conflict: {exc}"


@dataclass
class _Sorted:
    """A project's files sorted by role."""

    listed: list[LocalFile] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    variant_wheels: dict[str, list[tuple[LocalFile, WheelName]]] = field(default_factory=dict)
    json_versions: set[str] = field(default_factory=set)


def _sort_files(project: str, files: Sequence[LocalFile]) -> _Sorted:
    result = _Sorted()
    for local in sorted(files, key=lambda f: f.filename):
        json_name = parse_variants_json_filename(local.filename)
        if json_name is not None:
            if normalize_name(json_name[0]) == project:
                result.json_versions.add(normalize_version(json_name[1]))
                result.listed.append(local)
            continue
        facts = _project_version(local, project)
        if facts is None:
            continue
        version, wheel = facts
        result.listed.append(local)
        result.versions.add(version)
        if wheel is not None and wheel.is_variant:
            result.variant_wheels.setdefault(version, []).append((local, wheel))
    return result


def _built_entry(
    version: str, wheels: list[tuple[LocalFile, WheelName]], url_for: Callable[[str], str]
) -> tuple[str, bytes, DistFile] | str:
    """(relative path, bytes, page entry) of a version's built variants.json, or a problem."""
    filename, body, problem = built_variants_json(
        wheels[0][1].distribution, version, [local for local, _ in wheels]
    )
    if body is None:
        return problem or filename
    path = f"{wheels[0][0].folder}/{filename}".lstrip("/")
    entry = DistFile(
        filename=filename,
        url=url_for(path),
        hashes={"sha256": hashlib.sha256(body).hexdigest()},
        size=len(body),
        upload_time=upload_time(max(local.mtime_ns for local, _ in wheels)),
    )
    return path, body, entry


def build_directory_page(
    project: str, files: Sequence[LocalFile], url_for: Callable[[str], str]
) -> DirectoryPage:
    """The page of a normalised project name from its files (others are ignored)."""
    sorted_files = _sort_files(project, files)
    dists = [_dist(local, url_for) for local in sorted_files.listed]
    built: dict[str, bytes] = {}
    problems: list[str] = []
    for version, wheels in sorted_files.variant_wheels.items():
        if version in sorted_files.json_versions:
            continue
        entry = _built_entry(version, wheels, url_for)
        if isinstance(entry, str):
            problems.append(entry)
            continue
        path, body, dist = entry
        built[path] = body
        dists.append(dist)
    page = ProjectPage(
        name=project,
        files=tuple(dists),
        versions=tuple(sorted(sorted_files.versions, key=_version_key)),
        api_version=API_VERSION,
    )
    return DirectoryPage(page, built, tuple(problems))
