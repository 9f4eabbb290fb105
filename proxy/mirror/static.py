"""`variant-proxy export --static DIR --profile NAME...`: a plain PEP 503 tree that any
static web server, or `pip --index-url file:///DIR/p/NAME/simple/`, serves with no proxy.

    DIR/p/NAME/simple/index.html               the mirrored projects
    DIR/p/NAME/simple/PROJECT/index.html       the legacy view for profile NAME
    DIR/native/simple/PROJECT/index.html       the PEP 825 native view (no fingerprint)
    DIR/files/PROJECT/FILE-ID/NAME             the files (and NAME.metadata, PEP 658)
    DIR/variants-json/...                      the native view's variants.json files

The pages are the ones an offline proxy over the cache serves (an in-process one), so the
selection is the server's; their links are relative already. Files are hard links to the
store's files where the file system allows, copies otherwise.
"""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Sequence
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import aiohttp

from proxy.config import ConfigError, Settings
from proxy.mirror.local_proxy import LocalProxy, local_proxy
from proxy.pages.cache import split_cache_key
from proxy.simple.api import normalize_name
from proxy.urls.links import FILE_ID_RE


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, bool]] = []  # (href, advertises PEP 658 metadata)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        found = dict(attrs)
        href = found.get("href")
        if href:
            metadata = found.get("data-core-metadata") or found.get("data-dist-info-metadata")
            self.links.append((href, bool(metadata) and metadata != "false"))


class StaticExportError(Exception):
    """A page of the offline proxy could not be written."""


def _local_path(root: Path, url: str) -> Path:
    """Where the proxy URL `url` lives under `root` (never outside it)."""
    parts = PurePosixPath(unquote(urlsplit(url).path)).parts[1:]
    if not parts or any(part in ("..", ".", "") for part in parts):
        raise StaticExportError(f"link {url[:200]!r} does not map into the tree")
    return root.joinpath(*parts)


def _place(stored: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.unlink(missing_ok=True)
    try:
        os.link(stored, destination)
    except OSError:
        shutil.copyfile(stored, destination)


class _Writer:
    def __init__(self, root: Path, local: LocalProxy, session: aiohttp.ClientSession) -> None:
        self.root = root
        self.local = local
        self.session = session
        self.files = 0

    async def _get(self, url: str) -> bytes:
        async with self.session.get(url, headers={"Accept": "text/html"}) as response:
            if response.status != 200:
                reason = (await response.text()).strip()[:200]
                raise StaticExportError(f"{urlsplit(url).path}: {response.status} {reason}")
            return await response.read()

    async def page(self, path: str) -> None:
        """Write the page at `path` (and everything it links to) as `.../index.html`."""
        url = self.local.url + path
        body = await self._get(url)
        target = _local_path(self.root, url) / "index.html"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        parser = _Links()
        parser.feed(body.decode("utf-8", errors="replace"))
        for href, has_metadata in parser.links:
            link = urldefrag(urljoin(url, href)).url
            await self._linked(link)
            if has_metadata:
                await self._copy(link + ".metadata")

    async def _linked(self, link: str) -> None:
        parts = urlsplit(link).path.split("/")
        if len(parts) == 5 and parts[1] == "files" and FILE_ID_RE.match(parts[3]):
            stored = await self.local.state.store.lookup(parts[3])
            local_file = stored.blob.local_file if stored is not None else None
            if local_file is not None:
                _place(local_file, _local_path(self.root, link))
                self.files += 1
                return
        await self._copy(link)

    async def _copy(self, link: str) -> None:
        destination = _local_path(self.root, link)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(await self._get(link))
        self.files += 1


def _root_page(projects: Sequence[str]) -> bytes:
    links = "\n".join(f'<a href="{html.escape(p)}/">{html.escape(p)}</a><br/>' for p in projects)
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.0">'
        f"<title>Simple index</title></head><body>\n{links}\n</body></html>\n"
    ).encode()


def _mirrored_projects(local: LocalProxy, wanted: Sequence[str]) -> list[str]:
    if wanted:
        return sorted({normalize_name(p) for p in wanted})
    names = set()
    for key in local.state.page_cache.all_keys():
        parts = split_cache_key(key)
        if parts is not None and parts[0] == "project":
            cached = local.state.page_cache.get(key)
            if cached is not None and not cached.missing:
                names.add(parts[2])
    return sorted(names)


async def export_static(
    settings: Settings, root: Path, profiles: Sequence[str], projects: Sequence[str]
) -> str:
    """Write the static tree under `root`; a summary line."""
    if not profiles:
        raise ConfigError("export --static needs at least one --profile NAME")
    unknown = [name for name in profiles if name not in settings.profiles]
    if unknown:
        raise ConfigError(f"unknown profile {unknown[0]!r}")
    async with local_proxy(replace(settings, offline=True)) as local:
        names = _mirrored_projects(local, projects)
        async with aiohttp.ClientSession(trust_env=False) as session:
            writer = _Writer(root, local, session)
            for prefix in [f"/p/{name}/simple/" for name in profiles] + ["/native/simple/"]:
                (_local_path(root, local.url + prefix)).mkdir(parents=True, exist_ok=True)
                (_local_path(root, local.url + prefix) / "index.html").write_bytes(
                    _root_page(names)
                )
                for project in names:
                    await writer.page(f"{prefix}{project}/")
    return f"{len(names)} projects x {len(profiles)} profiles + native view, {writer.files} files"
