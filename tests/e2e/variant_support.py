"""Shared parts of the variant e2e tests: the `vpkg` variant wheelhouse, how an upstream
publishes it, a header-injecting HTTP forward proxy for pip, and page readers.

`vpkg` 1.0 has a plain `py3-none-any` wheel, x86-64 level variants, two CUDA variants, a null
variant, an sdist and a PEP 825 (v0.1.1 form) `vpkg-1.0-variants.json`; `vpkg` 0.9 has only a
plain wheel. Every wheel's `BUILD` marker is its variant label (or `plain` / `old`), so a test
reads back which file an installer picked.

pip cannot send custom request headers, so `HeaderInjectingProxy` is a real forward proxy on
loopback (aiohttp, own thread and event loop) that adds `Variant-Properties` or
`Variant-Hardware` to every request it forwards; pip is pointed at it with `--proxy`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiohttp import web
from variantlib.models.variant import VariantDescription
from variantlib.models.variant import VariantProperty as OracleProperty
from variantlib.resolver.lib import sort_and_filter_supported_variants
from yarl import URL

from .builders import BuiltDist, build_sdist, build_wheel, merged_variants_json
from .clients import (
    JSON_ACCEPT,
    TOOL_TIMEOUT_S,
    HttpResponse,
    ToolFailed,
    ToolResult,
    http_get,
    pip_environment,
)
from .upstream_server import UpstreamServer

PROJECT = "vpkg"
VERSION = "1.0"
# The PEP 825 schema URL (format v0.1.1: only `default-priorities.namespace` is read).
PEP825_SCHEMA_URL = "https://variants-schema.wheelnext.dev/peps/825/v0.1.1.json"
# A GPU build outranks a CPU-level build: nvidia is the first namespace.
NAMESPACE_PRIORITIES = ("nvidia", "x86_64")
PLAIN = "plain"
OLD = "old"
NULL = "null"

# label -> properties of every variant wheel of vpkg 1.0 (the null variant has none).
VARIANT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "x86_64_v2": ("x86_64 :: level :: v2",),
    "x86_64_v3": ("x86_64 :: level :: v3",),
    "x86_64_v4": ("x86_64 :: level :: v4",),
    "cu126": (
        "nvidia :: cuda_version_lower_bound :: 12.6",
        "nvidia :: sm_arch :: 80_real",
        "nvidia :: sm_arch :: 90_real",
    ),
    "cu128": (
        "nvidia :: cuda_version_lower_bound :: 12.8",
        "nvidia :: sm_arch :: 90_real",
        "nvidia :: sm_arch :: 100_real",
    ),
    NULL: (),
}

# Hardware specs and the build each one must be given (checked by hand against
# `expand_hardware_spec`: `sm=9.0` supports `90_real`, `sm=10.0` `100_real`, `sm=8.0`
# `80_real`; a CUDA driver version supports every lower bound at or below it).
SPEC_WINNERS: dict[str, str] = {
    "cpu=x86_64_v3,cuda=12.8,sm=9.0": "cu128",
    "cpu=x86_64_v4,cuda=12.6,sm=8.0": "cu126",
    "cuda=12.8,sm=10.0": "cu128",
    "cpu=x86_64_v4": "x86_64_v4",
    "cpu=x86_64_v3": "x86_64_v3",
    "cpu=x86_64_v2": "x86_64_v2",
    # aarch64 and x86_64 v1 satisfy no variant: only the null variant fits.
    "cpu=aarch64": NULL,
    "cpu=x86_64_v1": NULL,
    "none": NULL,
}


@dataclass(frozen=True)
class VariantWheelhouse:
    """The files of `vpkg`: plain, old, sdist, variant wheels by label, the variants.json."""

    plain: BuiltDist
    old: BuiltDist
    sdist: BuiltDist
    variants: dict[str, BuiltDist]
    variants_json: BuiltDist

    @property
    def variant_filenames(self) -> set[str]:
        return {dist.filename for dist in self.variants.values()}


def variants_json_document(wheels: Sequence[BuiltDist]) -> dict[str, Any]:
    """The index-level variants.json of `wheels` in the PEP 825 v0.1.1 form."""
    merged = merged_variants_json(wheels)
    return {
        "$schema": PEP825_SCHEMA_URL,
        "default-priorities": {"namespace": list(NAMESPACE_PRIORITIES)},
        "variants": merged["variants"],
    }


# Stated by every variant wheel (and so by the page) but not by the plain wheel, so a test
# can tell whose facts a renamed file carries.
VARIANT_REQUIRES_PYTHON = ">=3.8"


def build_variant_wheelhouse(root: Path, *, variant_payload: int = 0) -> VariantWheelhouse:
    """Build every `vpkg` file under `root`; `variant_payload` pads each variant wheel with
    that many bytes (so reading its variant.json with ranges differs from reading it all)."""
    variants = {
        label: build_wheel(
            root,
            PROJECT,
            VERSION,
            variant_label=label,
            variant_properties=list(properties),
            namespace_priorities=NAMESPACE_PRIORITIES,
            requires_python=VARIANT_REQUIRES_PYTHON,
            payload_size=variant_payload,
        )
        for label, properties in VARIANT_PROPERTIES.items()
    }
    variants_json_path = root / f"{PROJECT}-{VERSION}-variants.json"
    document = variants_json_document(list(variants.values()))
    variants_json_path.write_text(json.dumps(document, indent=2))
    return VariantWheelhouse(
        plain=build_wheel(root, PROJECT, VERSION),
        old=build_wheel(root, PROJECT, "0.9", build_marker=OLD),
        sdist=build_sdist(root, PROJECT, VERSION),
        variants=variants,
        variants_json=BuiltDist(PROJECT, VERSION, variants_json_path, "other"),
    )


def publish_variants(
    upstream: UpstreamServer, house: VariantWheelhouse, *, with_variants_json: bool = True
) -> UpstreamServer:
    """Host every `vpkg` file (the variants.json only when `with_variants_json`)."""
    for dist in (house.old, house.plain, house.sdist, *house.variants.values()):
        upstream.add_dist(dist)
    if with_variants_json:
        upstream.add_dist(house.variants_json)
    return upstream


# ---- the reference ordering ----------------------------------------------------------------


def variantlib_order(document: Mapping[str, Any], supported: Sequence[str]) -> list[str]:
    """variantlib's order of the document's compatible labels for `supported` (`ns :: f :: v`
    items, most preferred first), best first; `null` only when the document has it."""
    namespaces: list[str] = list(document["default-priorities"]["namespace"])
    oracle_supported = []
    for item in supported:
        namespace, feature, value = (part.strip() for part in item.split("::"))
        if namespace in namespaces:  # variantlib refuses namespaces the file does not rank
            oracle_supported.append(OracleProperty(namespace, feature, value))
    ordered = sort_and_filter_supported_variants(
        [
            VariantDescription.from_dict(desc, label)
            for label, desc in document["variants"].items()
            if label != NULL
        ],
        oracle_supported,
        namespace_priorities=namespaces,
    )
    # variantlib always appends the null variant.
    return [vdesc.label for vdesc in ordered if vdesc.label in document["variants"]]


# ---- pages -------------------------------------------------------------------------------


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[dict[str, str], str]] = []
        self._open: dict[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = {k: v or "" for k, v in attrs}, ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.found.append((self._open, self._text.strip()))
            self._open = None


@dataclass(frozen=True)
class ListedFile:
    """One file of a served page: its shown name, absolute URL and sha256."""

    filename: str
    url: str
    sha256: str


def listed_files(response: HttpResponse) -> list[ListedFile]:
    """The files of a project page answer, HTML (PEP 503) or JSON (PEP 691)."""
    assert response.status == 200, f"{response.url} -> {response.status}: {response.text}"
    content_type = response.header("Content-Type") or ""
    if "json" in content_type:
        return [
            ListedFile(
                entry["filename"],
                urljoin(response.url, entry["url"]),
                entry["hashes"].get("sha256", ""),
            )
            for entry in response.json()["files"]
        ]
    parser = _Anchors()
    parser.feed(response.text)
    files = []
    for attributes, text in parser.found:
        url, _, fragment = urljoin(response.url, attributes["href"]).partition("#")
        algorithm, _, digest = fragment.partition("=")
        files.append(ListedFile(text, url, digest if algorithm == "sha256" else ""))
    return files


def get_page(
    url: str, *, headers: Mapping[str, str] | None = None, accept: str = JSON_ACCEPT
) -> HttpResponse:
    return http_get(url, headers={"Accept": accept, **(headers or {})})


def page_files(
    url: str, *, headers: Mapping[str, str] | None = None, accept: str = JSON_ACCEPT
) -> dict[str, ListedFile]:
    """Shown file name -> listed file, checking that no two listed files share a name."""
    files = listed_files(get_page(url, headers=headers, accept=accept))
    names = [f.filename for f in files]
    assert len(names) == len(set(names)), f"duplicate names on {url}: {names}"
    return {f.filename: f for f in files}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- pip through a forward proxy ---------------------------------------------------------


def _environment_without_proxy_bypass() -> dict[str, str]:
    # A no_proxy list naming loopback would make pip skip the forward proxy.
    env = pip_environment()
    for key in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(key, None)
    return env


def pip_install_via(
    forward_proxy_url: str, index_url: str, requirements: Sequence[str], target: Path
) -> ToolResult:
    """`pip install --target` with every request sent through the forward proxy."""
    args = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--proxy",
        forward_proxy_url,
        "--index-url",
        index_url,
        "--target",
        str(target),
        "--no-compile",
        "--retries",
        "0",
        *requirements,
    ]
    completed = subprocess.run(
        args,
        env=_environment_without_proxy_bypass(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )
    result = ToolResult(tuple(args), completed.returncode, completed.stdout, completed.stderr)
    if result.returncode != 0:
        raise ToolFailed(result.describe())
    return result


# Hop-by-hop headers (RFC 9110 7.6.1) and the ones aiohttp recomputes.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "host",
    }
)


class HeaderInjectingProxy:
    """An HTTP forward proxy on 127.0.0.1 that adds `headers` to every request it forwards.

    Only absolute-form requests for `http://127.0.0.1:...` are forwarded (the tests never
    leave loopback); anything else is answered 403. `forwarded` lists the target URLs.
    """

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = dict(headers)
        self.forwarded: list[str] = []
        self.port = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="header-proxy", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HeaderInjectingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def forwarded_paths(self) -> list[str]:
        with self._lock:
            return [URL(url).path for url in self.forwarded]

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False, trust_env=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(runner.addresses[0][1])
        self._runner = runner

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        # An absolute-form request target (`GET http://host:port/path`) is the request's URL.
        target = request.url
        if target.host != "127.0.0.1":
            return web.Response(status=403, text=f"not forwarding to {target.host}\n")
        with self._lock:
            self.forwarded.append(str(target))
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() not in _NOT_FORWARDED
        }
        headers.update(self.headers)
        assert self._session is not None
        async with self._session.request(
            request.method,
            target,
            headers=headers,
            data=await request.read() or None,
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            kept = {
                name: value
                for name, value in answer.headers.items()
                if name.lower() not in _NOT_FORWARDED
            }
            return web.Response(status=answer.status, body=body, headers=kept)
