"""Reading a local directory of distributions: which files a project has, and their facts.

Two layouts, also mixed: every file in the directory itself (flat), or one folder per
project (any spelling of the name). Hidden names (a leading '.', such as uploads still being
written) are never listed. `{file}.yanked` beside a file yanks it (its text is the reason).

Hashing is the only costly part, so the facts of a file are cached by (path, size,
modification time, inode): a re-scan stats the files and hashes only new or changed ones.
Everything here blocks; the callers run it in a worker thread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cachetools

from proxy.local.page import LocalFile
from proxy.local.wheel_contents import WheelError, read_wheel
from proxy.simple.filenames import FilenameError, parse_dist_filename, parse_variants_json_filename
from proxy.simple.model import Yanked
from proxy.simple.names import normalize_name

log = logging.getLogger("variant_proxy")

YANKED_SUFFIX = ".yanked"
HASH_CHUNK = 1024 * 1024
MAX_YANK_REASON = 1024
FACT_CACHE_ENTRIES = 200_000
# A directory changed this recently may change again within its clock tick unseen: re-list it.
RACY_SECONDS = 2.0

# (absolute path, size, mtime_ns, inode)
_FactKey = tuple[str, int, int, int]


@dataclass(frozen=True)
class Layout:
    """Where each project's files are: its folders and the directory's own files."""

    folders: dict[str, list[str]] = field(default_factory=dict)
    flat: dict[str, list[str]] = field(default_factory=dict)
    yanked: set[str] = field(default_factory=set)  # flat files with a `.yanked` beside them

    @property
    def projects(self) -> list[str]:
        return sorted(set(self.folders) | set(self.flat))


def project_of(filename: str) -> str | None:
    """The normalised project a distribution or variants.json file name belongs to."""
    json_name = parse_variants_json_filename(filename)
    if json_name is not None:
        return normalize_name(json_name[0])
    try:
        parsed = parse_dist_filename(filename)
    except FilenameError:
        return None
    return normalize_name(parsed.distribution) if parsed is not None else None


def read_layout(root: Path) -> Layout:
    layout = Layout()
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.name.endswith(YANKED_SUFFIX):
                layout.yanked.add(entry.name.removesuffix(YANKED_SUFFIX))
            elif entry.is_dir():
                layout.folders.setdefault(normalize_name(entry.name), []).append(entry.name)
            elif entry.is_file() and (project := project_of(entry.name)) is not None:
                layout.flat.setdefault(project, []).append(entry.name)
    return layout


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _yank_reason(path: Path) -> Yanked:
    try:
        with path.open("rb") as handle:
            reason = handle.read(MAX_YANK_REASON).decode("utf-8", "replace").strip()
    except OSError:
        return False
    return reason or True


class DirectoryScanner:
    """The files of one directory, with their facts cached across scans."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._facts: cachetools.LRUCache[_FactKey, LocalFile] = cachetools.LRUCache(
            FACT_CACHE_ENTRIES
        )
        self._layout: tuple[tuple[int, int], Layout] | None = None
        self._reported: set[_FactKey] = set()

    def layout(self) -> Layout:
        """The directory's layout, listed again only when the directory itself changed."""
        stat = self.root.stat()
        stamp = (stat.st_mtime_ns, stat.st_ino)
        cached = self._layout
        racy = time.time() - stat.st_mtime_ns / 1e9 < RACY_SECONDS
        if cached is not None and cached[0] == stamp and not racy:
            return cached[1]
        layout = read_layout(self.root)
        self._layout = (stamp, layout)
        return layout

    def projects(self) -> list[str]:
        return self.layout().projects

    def project_files(self, project: str) -> list[LocalFile]:
        """Every file of the normalised `project` (hashing new or changed ones)."""
        layout = self.layout()
        candidates: list[str] = list(layout.flat.get(project, ()))
        yanked = set(layout.yanked)
        for folder in layout.folders.get(project, ()):
            self._folder_files(folder, project, candidates, yanked)
        files = []
        for relative in sorted(candidates):
            facts = self._facts_of(relative)
            if facts is None:
                continue
            if relative in yanked:
                facts = replace(facts, yanked=_yank_reason(self.root / (relative + YANKED_SUFFIX)))
            files.append(facts)
        return files

    def _folder_files(self, folder: str, project: str, found: list[str], yanked: set[str]) -> None:
        try:
            entries = list(os.scandir(self.root / folder))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if entry.name.endswith(YANKED_SUFFIX):
                yanked.add(f"{folder}/{entry.name.removesuffix(YANKED_SUFFIX)}")
            elif project_of(entry.name) == project:
                found.append(f"{folder}/{entry.name}")

    def _facts_of(self, relative: str) -> LocalFile | None:
        path = self.root / relative
        try:
            stat = path.stat()
        except OSError:
            return None  # removed meanwhile
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            known = self._facts.get(key)
        if known is not None:
            return known
        try:
            facts = self._read_facts(relative, path, stat.st_size, stat.st_mtime_ns)
        except (OSError, WheelError) as exc:
            if key not in self._reported:
                self._reported.add(key)
                log.warning("local index: leaving out %s: %s", relative, exc)
            return None
        with self._lock:
            self._facts[key] = facts
        return facts

    def remember(self, facts: LocalFile) -> None:
        """Record the facts of a file the caller has just written (so it is not hashed again)."""
        path = self.root / facts.path
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            self._facts[key] = replace(facts, size=stat.st_size, mtime_ns=stat.st_mtime_ns)

    def _read_facts(self, relative: str, path: Path, size: int, mtime_ns: int) -> LocalFile:
        facts = LocalFile(relative, size, mtime_ns, file_digest(path))
        if not relative.endswith(".whl"):
            return facts
        contents = read_wheel(str(path))
        _, _, requires_python = contents.metadata_fields
        return replace(
            facts,
            metadata_sha256=hashlib.sha256(contents.metadata).hexdigest(),
            requires_python=requires_python,
            variant_json=contents.variant_json,
        )

    def resolve(self, relative: str) -> Path:
        """The path of a listed file; a path that would leave the directory is refused."""
        parts = relative.split("/")
        if not relative or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            raise FileNotFoundError(relative)
        path = self.root.joinpath(*parts)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise FileNotFoundError(relative)
        return path
