"""Benchmark data on disk: projects whose pages and files a bench upstream serves.

A data root holds, per project, the PEP 503 HTML page, the PEP 691 JSON page and the files:

    <root>/pages/<project>.html
    <root>/pages/<project>.json
    <root>/files/<project>/<filename>

Pages carry sha256 hashes, `requires-python`, PEP 658 metadata hashes (wheels) and, in
JSON, PEP 700 `size`, `upload-time` and `versions`, so the proxy and proxpi parse and render
pages of realistic weight. File contents are synthetic: the benchmarks measure pages and
bytes, not wheel validity. Large files are written sparse (`truncate`), so making a 1 GB
file costs no time and no disk until something copies it.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PEP 825 schema URL of the variants.json files written here (format 0.0.x draft family).
VARIANT_SCHEMA_URL = "https://variants-schema.example/v0.0.3.json"
UPLOAD_TIME = "2024-01-02T03:04:05.000000Z"
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
SDIST_REQUIRES_PYTHON = ">=3.9"


@dataclass(frozen=True)
class BenchFile:
    """One file of a project: its name, version and where its bytes are."""

    filename: str
    version: str
    path: Path
    sha256: str
    size: int
    metadata_sha256: str | None = None


def normalize(name: str) -> str:
    """PEP 503 project name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256_of(path: Path, chunk_size: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class DataRoot:
    """A folder of projects for `bench.upstream` to serve."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "pages").mkdir(parents=True, exist_ok=True)
        (root / "files").mkdir(parents=True, exist_ok=True)

    def file_path(self, project: str, filename: str) -> Path:
        return self.root / "files" / normalize(project) / filename

    def add_bytes(self, project: str, filename: str, version: str, data: bytes) -> BenchFile:
        path = self.file_path(project, filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return self._described(filename, version, path, hashlib.sha256(data).hexdigest())

    def add_sparse(self, project: str, filename: str, version: str, size: int) -> BenchFile:
        """A file of `size` zero bytes that takes no disk space until copied."""
        path = self.file_path(project, filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.truncate(size)
        return self._described(filename, version, path, sha256_of(path))

    def add_random(self, project: str, filename: str, version: str, size: int) -> BenchFile:
        """A file of `size` random bytes (incompressible, like a real wheel)."""
        path = self.file_path(project, filename)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with path.open("wb") as handle:
            left = size
            while left > 0:
                chunk = os.urandom(min(left, 1024 * 1024))
                handle.write(chunk)
                digest.update(chunk)
                left -= len(chunk)
        return self._described(filename, version, path, digest.hexdigest())

    def _described(self, filename: str, version: str, path: Path, sha256: str) -> BenchFile:
        metadata_sha256 = None
        if filename.endswith(".whl"):
            metadata = f"Metadata-Version: 2.1\nName: bench\nVersion: {version}\n\n".encode()
            path.with_name(filename + ".metadata").write_bytes(metadata)
            metadata_sha256 = hashlib.sha256(metadata).hexdigest()
        return BenchFile(filename, version, path, sha256, path.stat().st_size, metadata_sha256)

    def publish(self, project: str, files: Sequence[BenchFile]) -> None:
        """Write the project's HTML and JSON pages listing `files` in order."""
        name = normalize(project)
        pages = self.root / "pages"
        (pages / f"{name}.html").write_bytes(render_html(name, files))
        (pages / f"{name}.json").write_bytes(render_json(name, files))


def _href(project: str, bench_file: BenchFile) -> str:
    return f"../../files/{project}/{bench_file.filename}"


def _requires_python(bench_file: BenchFile) -> str | None:
    return SDIST_REQUIRES_PYTHON if bench_file.filename.endswith(".tar.gz") else None


def render_html(project: str, files: Iterable[BenchFile]) -> bytes:
    anchors = []
    for bench_file in files:
        attributes = [f'href="{_href(project, bench_file)}#sha256={bench_file.sha256}"']
        requires_python = _requires_python(bench_file)
        if requires_python is not None:
            attributes.append(f'data-requires-python="{html.escape(requires_python)}"')
        if bench_file.metadata_sha256 is not None:
            attributes.append(f'data-core-metadata="sha256={bench_file.metadata_sha256}"')
            attributes.append(f'data-dist-info-metadata="sha256={bench_file.metadata_sha256}"')
        anchors.append(f"<a {' '.join(attributes)}>{html.escape(bench_file.filename)}</a><br/>\n")
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.1">\n'
        f"<title>Links for {project}</title>\n</head>\n<body>\n"
        f"<h1>Links for {project}</h1>\n{''.join(anchors)}</body>\n</html>\n"
    ).encode()


def render_json(project: str, files: Sequence[BenchFile]) -> bytes:
    entries: list[dict[str, Any]] = []
    for bench_file in files:
        entry: dict[str, Any] = {
            "filename": bench_file.filename,
            "url": _href(project, bench_file),
            "hashes": {"sha256": bench_file.sha256},
            "size": bench_file.size,
            "upload-time": UPLOAD_TIME,
        }
        requires_python = _requires_python(bench_file)
        if requires_python is not None:
            entry["requires-python"] = requires_python
        if bench_file.metadata_sha256 is not None:
            digest = {"sha256": bench_file.metadata_sha256}
            entry["core-metadata"] = digest
            entry["dist-info-metadata"] = digest
        entries.append(entry)
    versions = list(dict.fromkeys(bench_file.version for bench_file in files))
    document = {
        "meta": {"api-version": "1.1"},
        "name": project,
        "versions": versions,
        "files": entries,
    }
    return json.dumps(document).encode()


def render_root_html(names: Iterable[str]) -> bytes:
    links = "".join(f'<a href="{name}/">{name}</a><br/>\n' for name in names)
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta name="pypi:repository-version" content="1.1">\n'
        f"<title>Simple index</title>\n</head>\n<body>\n{links}</body>\n</html>\n"
    ).encode()


def render_root_json(names: Iterable[str]) -> bytes:
    document = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}
    return json.dumps(document).encode()


# --- the projects the benchmarks use ------------------------------------------------------

# Ten files per version: five CPython versions on two platforms (with the sdist: 11).
_PLAIN_TAGS = tuple(
    f"cp3{minor}-cp3{minor}-{platform}"
    for minor in range(9, 14)
    for platform in ("manylinux_2_17_x86_64.manylinux2014_x86_64", "win_amd64")
)


def add_plain_project(data: DataRoot, project: str, n_files: int = 1000) -> list[BenchFile]:
    """A project of about `n_files` small files: per version ten wheels and one sdist."""
    dist = project.replace("-", "_")
    files: list[BenchFile] = []
    version_number = 0
    while len(files) < n_files:
        version_number += 1
        version = f"1.{version_number}.0"
        for tags in _PLAIN_TAGS:
            filename = f"{dist}-{version}-{tags}.whl"
            files.append(data.add_bytes(project, filename, version, filename.encode()))
        sdist = f"{dist}-{version}.tar.gz"
        files.append(data.add_bytes(project, sdist, version, sdist.encode()))
    data.publish(project, files)
    return files


# The variant matrix of one version: CPU level (or none) x (CUDA 12.8 + an SM arch, or none).
_CPU_LEVELS = (None, "v1", "v2", "v3", "v4")
_GPU_ARCHS = (None, "80", "86", "89", "90", "100")
VARIANT_TAGS = "cp312-cp312-manylinux_2_28_x86_64"


def variant_matrix() -> dict[str, dict[str, dict[str, list[str]]]]:
    """30 labels -> properties: 29 real variants plus the null variant."""
    matrix: dict[str, dict[str, dict[str, list[str]]]] = {}
    for level in _CPU_LEVELS:
        for arch in _GPU_ARCHS:
            properties: dict[str, dict[str, list[str]]] = {}
            label_parts = []
            if level is not None:
                properties["x86_64"] = {"level": [level]}
                label_parts.append(f"x86{level}")
            if arch is not None:
                properties["nvidia"] = {
                    "cuda_version_lower_bound": ["12.8"],
                    "sm_arch": [f"{arch}_real"],
                }
                label_parts.append(f"cu128sm{arch}")
            matrix["_".join(label_parts) or "null"] = properties
    return matrix


def variants_document() -> dict[str, Any]:
    return {
        "$schema": VARIANT_SCHEMA_URL,
        "default-priorities": {"namespace": ["nvidia", "x86_64"]},
        "variants": variant_matrix(),
    }


def add_variant_project(data: DataRoot, project: str, n_versions: int = 30) -> list[BenchFile]:
    """Per version: 30 variant wheels (one the null variant), one plain wheel of the same
    tags, one sdist and the variants.json: 33 files a version, 990 for 30 versions."""
    dist = project.replace("-", "_")
    document = json.dumps(variants_document(), indent=1).encode()
    files: list[BenchFile] = []
    for version_number in range(1, n_versions + 1):
        version = f"2.{version_number}.0"
        for label in variant_matrix():
            filename = f"{dist}-{version}-{VARIANT_TAGS}-{label}.whl"
            files.append(data.add_bytes(project, filename, version, filename.encode()))
        plain = f"{dist}-{version}-{VARIANT_TAGS}.whl"
        files.append(data.add_bytes(project, plain, version, plain.encode()))
        sdist = f"{dist}-{version}.tar.gz"
        files.append(data.add_bytes(project, sdist, version, sdist.encode()))
        variants_json = f"{dist}-{version}-variants.json"
        files.append(data.add_bytes(project, variants_json, version, document))
    data.publish(project, files)
    return files
