"""`variant-proxy explain`: the server's own page decisions, told per version (the formatting
is pure, in proxy/variants/explanation.py). Its flags are a request in the server's terms
(`--properties` the header, `--hw` and `--profile` the URL), resolved by the server's
source order, and the page goes through the server's `Pipeline`."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from proxy.cli.options import cache_options, fail
from proxy.config import ConfigError, load_settings
from proxy.variants.fingerprint import PROPERTIES_HEADER, Fingerprint, FingerprintError

if TYPE_CHECKING:
    from proxy.server.state import ProxyState

__all__ = ["add_explain_command", "explain", "explain_command"]

# How explain names the fingerprint's source (its flags stand for the request's parts).
_SOURCE_NAMES = {
    "header": "--properties",
    "url": "--hw",
    "default": "the default profile",
    "none": "none (no --profile, --hw or --properties)",
}


def add_explain_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    explain_parser = commands.add_parser(
        "explain", help="show, per version, which file a legacy client gets and why"
    )
    explain_parser.add_argument("project")
    which = explain_parser.add_mutually_exclusive_group()
    which.add_argument("--profile", help="a [profiles.NAME] of the config")
    which.add_argument("--hw", help="a hardware spec, e.g. cpu=x86_64_v3,cuda=12.8,sm=9.0")
    which.add_argument(
        "--properties",
        nargs="+",
        metavar="PROPERTY",
        help="'namespace :: feature :: value' items, most preferred first",
    )
    cache_options(explain_parser, upstream=True)
    explain_parser.add_argument(
        "--all",
        action="store_true",
        dest="show_all",
        help="list every version and file (a large project is summarised by default)",
    )


def resolve_flags(state: ProxyState, args: argparse.Namespace) -> tuple[Fingerprint | None, str]:
    """The fingerprint the flags name, by the server's source order, and its source in the
    flags' words (raises FingerprintError)."""
    headers = {PROPERTIES_HEADER: ", ".join(args.properties)} if args.properties else {}
    try:
        resolved = state.fingerprints.resolve(headers, profile=args.profile, spec=args.hw)
    except FingerprintError as exc:
        # The header stands for --properties here: name the flag the user typed.
        raise FingerprintError(
            str(exc).replace(f"{PROPERTIES_HEADER} header:", "--properties:", 1)
        ) from None
    if args.profile is not None:
        return resolved.fingerprint, f"profile {args.profile}"
    return resolved.fingerprint, _SOURCE_NAMES.get(resolved.source, resolved.source)


def explain_command(args: argparse.Namespace) -> int:
    # The server's state only for this command: the others start without it.
    from proxy.server.state import ProxyState
    from proxy.upstreams.projects import ProjectNotFound
    from proxy.upstreams.source import UpstreamError

    try:
        settings = load_settings(args.config, upstream_urls=args.upstream, cache_dir=args.cache_dir)
        state = ProxyState(settings)
        fingerprint, source = resolve_flags(state, args)
    except (ConfigError, FingerprintError) as exc:
        return fail(str(exc), 2)

    async def run() -> str:
        await state.start(open_store=False)
        try:
            return await explain(state, args.project, fingerprint, source, show_all=args.show_all)
        finally:
            await state.close()

    try:
        print(asyncio.run(run()), end="")
    except ProjectNotFound:
        return fail(f"no upstream has project {args.project!r}")
    except UpstreamError as exc:
        return fail(str(exc))
    return 0


async def explain(
    state: ProxyState,
    project: str,
    fingerprint: Fingerprint | None,
    source: str,
    *,
    show_all: bool = False,
) -> str:
    """The legacy view of `project` for `fingerprint`, as the server makes it, explained."""
    from proxy.cli.explain_backends import format_backend_section
    from proxy.simple.names import normalize_name
    from proxy.variants.explanation import format_view

    name = normalize_name(project)
    pipeline = state.pipeline
    data = await pipeline.project(name, fingerprint)
    view = pipeline.view(data, fingerprint, native=False)
    if data.backends is not None:
        shown = format_view(name, view, fingerprint, source, show_all=show_all)
        return shown + format_backend_section(data.backends)
    return format_view(name, view, fingerprint, source, upstream=data.page, show_all=show_all)
