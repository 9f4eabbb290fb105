"""Writing into the local index: uploads, yanks and removals, atomically, one project at a time.

A file is received into a hidden temporary file (`.{name}.{random}.part`, never listed) that
is hashed while written, fsync-ed, checked, and only then linked under its name, so no reader
ever sees part of a file and a crash leaves only hidden files (removed at the next start).
Changes to one project are serialised by an asyncio lock, so two uploads to one version both
land and their variants.json merge sees both. A variant wheel's variant.json is merged into
its version's `{name}-{version}-variants.json` (PEP 825) before the wheel appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Protocol

from proxy.local.checks import CheckedUpload, UploadRejected
from proxy.local.page import LocalFile
from proxy.local.scan import YANKED_SUFFIX, DirectoryScanner, project_of
from proxy.local.wheel_contents import WheelContents
from proxy.simple.filenames import (
    normalize_version,
    parse_variants_json_filename,
    parse_wheel_filename,
    variants_json_filename,
)
from proxy.variants import metadata as variants_json

PART_SUFFIX = ".part"


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


class NotInIndex(LookupError):
    """The project has no such file in the local index."""


def fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def temporary_path(folder: Path, filename: str) -> Path:
    return folder / f".{filename}.{secrets.token_hex(8)}{PART_SUFFIX}"


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temporary file, fsync, rename, fsync of the folder."""
    temporary = temporary_path(path.parent, path.name)
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    fsync_directory(path.parent)


def remove_partials(root: Path) -> int:
    """Delete the hidden temporary files an interrupted upload left behind."""
    removed = 0
    folders = [root, *(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]
    for folder in folders:
        for stale in folder.glob(f".*{PART_SUFFIX}"):
            with contextlib.suppress(OSError):
                stale.unlink()
                removed += 1
    return removed


class IncomingFile:
    """An upload being received: a hidden temporary file, hashed as it is written."""

    def __init__(self, folder: Path, filename: str, limit: int) -> None:
        self.path = temporary_path(folder, filename)
        self.size = 0
        self._limit = limit
        self._hashes: dict[str, _Digest] = {
            "sha256": hashlib.sha256(),
            "blake2_256": hashlib.blake2b(digest_size=32),
            "md5": hashlib.md5(usedforsecurity=False),
        }
        self._handle: BinaryIO | None = self.path.open("xb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._limit:
            raise UploadRejected(
                413, f"the upload is larger than the local index's limit of {self._limit} bytes"
            )
        assert self._handle is not None
        self._handle.write(chunk)
        for digest in self._hashes.values():
            digest.update(chunk)

    def finish(self) -> None:
        """Flush and fsync (blocking: run in a worker thread)."""
        assert self._handle is not None
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None

    @property
    def digests(self) -> dict[str, str]:
        return {name: digest.hexdigest() for name, digest in self._hashes.items()}

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Published:
    project: str
    filename: str
    created: bool  # False: the same bytes were there already; nothing changed


class LocalIndex:
    """The writable directory of one `[[upstreams]] path = ...` with `upload = true`."""

    def __init__(
        self,
        scanner: DirectoryScanner,
        max_upload_size: int,
        token_env: str | None,
        on_change: Callable[[str], None] = lambda project: None,
    ) -> None:
        self.scanner = scanner
        self.token_env = token_env
        self.root = scanner.root
        self.max_upload_size = max_upload_size
        self.on_change = on_change
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, project: str) -> asyncio.Lock:
        return self._locks.setdefault(project, asyncio.Lock())

    def project_folder(self, project: str) -> Path:
        """Where new files of the project go: its existing folder, else `{root}/{project}`."""
        folders = self.scanner.layout().folders.get(project)
        return self.root / (folders[0] if folders else project)

    def receive(self, filename: str) -> IncomingFile:
        """A temporary file for an upload of a checked file name (`check_filename`), in the
        folder of the project the name belongs to: the name, not a form field, picks it."""
        project = project_of(filename)
        if project is None:
            raise UploadRejected(400, f"not a wheel or sdist file name: {filename[:200]!r}")
        folder = self.project_folder(project)
        folder.mkdir(exist_ok=True)
        return IncomingFile(folder, filename, self.max_upload_size)

    async def publish(
        self, incoming: IncomingFile, checked: CheckedUpload, contents: WheelContents | None
    ) -> Published:
        async with self._lock(checked.project):
            try:
                result = await asyncio.to_thread(self._publish, incoming, checked, contents)
            finally:
                incoming.discard()
        if result.created:
            self.on_change(checked.project)
        return result

    def _publish(
        self, incoming: IncomingFile, checked: CheckedUpload, contents: WheelContents | None
    ) -> Published:
        files = self.scanner.project_files(checked.project)
        existing = next((f for f in files if f.filename == checked.filename), None)
        if existing is not None:
            if existing.sha256 != incoming.digests["sha256"]:
                raise UploadRejected(409, f"{checked.filename} already exists with other content")
            return Published(checked.project, checked.filename, created=False)
        folder = self.project_folder(checked.project)
        folder.mkdir(exist_ok=True)
        if checked.variant is not None and checked.wheel is not None:
            self._merge_variants_json(files, checked, folder)
        target = folder / checked.filename
        try:
            os.link(incoming.path, target)  # never replaces a file that appeared meanwhile
        except FileExistsError:
            raise UploadRejected(409, f"{checked.filename} already exists") from None
        except OSError:  # a file system without hard links: the lock makes the check hold
            if target.exists():
                raise UploadRejected(409, f"{checked.filename} already exists") from None
            os.rename(incoming.path, target)
        fsync_directory(folder)
        self._remember(target, incoming, contents)
        return Published(checked.project, checked.filename, created=True)

    def _remember(
        self, target: Path, incoming: IncomingFile, contents: WheelContents | None
    ) -> None:
        """Tell the scanner what it would learn by hashing the new file again."""
        facts = LocalFile(
            target.relative_to(self.root).as_posix(), incoming.size, 0, incoming.digests["sha256"]
        )
        if contents is not None:
            facts = replace(
                facts,
                metadata_sha256=hashlib.sha256(contents.metadata).hexdigest(),
                requires_python=contents.metadata_fields[2],
                variant_json=contents.variant_json,
            )
        self.scanner.remember(facts)

    def _merge_variants_json(
        self, files: list[LocalFile], checked: CheckedUpload, folder: Path
    ) -> None:
        assert checked.variant is not None and checked.wheel is not None
        listed, docs = _version_metadata(self.root, files, checked.version)
        try:
            merged = variants_json.merge_variants_docs([*docs, checked.variant])
        except (variants_json.VariantsConflictError, ValueError) as exc:
            raise UploadRejected(
                409, f"{checked.filename} conflicts with the variants of its version: {exc}"
            ) from None
        body = variants_json.render_variants_json(merged)
        if listed is not None:
            path = self.root / listed.path
            if path.read_bytes() == body:
                return
        else:
            path = folder / variants_json_filename(checked.wheel.distribution, checked.version)
        write_atomically(path, body)

    # -- yank and remove -----------------------------------------------------------------------

    def _find(self, project: str, filename: str) -> Path:
        for local in self.scanner.project_files(project):
            if local.filename == filename:
                return self.root / local.path
        raise NotInIndex(f"no file {filename} in project {project} of the local index")

    async def yank(self, project: str, filename: str, reason: str | None, undo: bool) -> None:
        async with self._lock(project):
            await asyncio.to_thread(self._yank, project, filename, reason, undo)
        self.on_change(project)

    def _yank(self, project: str, filename: str, reason: str | None, undo: bool) -> None:
        sidecar = self._find(project, filename).with_name(filename + YANKED_SUFFIX)
        if undo:
            sidecar.unlink(missing_ok=True)
            fsync_directory(sidecar.parent)
        else:
            write_atomically(sidecar, (reason or "").encode())

    async def remove(self, project: str, filename: str) -> None:
        async with self._lock(project):
            await asyncio.to_thread(self._remove, project, filename)
        self.on_change(project)

    def _remove(self, project: str, filename: str) -> None:
        path = self._find(project, filename)
        path.unlink()
        path.with_name(filename + YANKED_SUFFIX).unlink(missing_ok=True)
        fsync_directory(path.parent)


def _version_metadata(
    root: Path, files: list[LocalFile], version: str
) -> tuple[LocalFile | None, list[variants_json.VariantsDoc]]:
    """The version's variants.json on disk (with its document), or else the documents of its
    variant wheels already there. A file that does not parse is a conflict (409)."""
    for local in files:
        named = parse_variants_json_filename(local.filename)
        if named is not None and normalize_version(named[1]) == version:
            return local, [_parsed(local, (root / local.path).read_bytes())]
    docs = []
    for local in files:
        if local.variant_json is None or not local.filename.endswith(".whl"):
            continue
        if normalize_version(parse_wheel_filename(local.filename).version) == version:
            docs.append(_parsed(local, local.variant_json))
    return None, docs


def _parsed(local: LocalFile, body: bytes | None) -> variants_json.VariantsDoc:
    try:
        return variants_json.parse_variants_json(body or b"")
    except variants_json.VariantsJsonError as exc:
        raise UploadRejected(409, f"the index's {local.filename} is invalid: {exc}") from None
