"""Command line: `variant-proxy mirror | export | import` (parsers and dispatch)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from proxy.cli.options import cache_options
from proxy.config import ConfigError, Settings, load_settings


def add_mirror_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mirror = commands.add_parser(
        "mirror", help="resolve requirements for hardware/Python/platform targets and cache them"
    )
    mirror.add_argument("requirements", nargs="*", metavar="REQUIREMENT")
    mirror.add_argument("-r", "--requirement", action="append", default=[], metavar="FILE")
    mirror.add_argument("--profile", action="append", default=[], metavar="NAME")
    mirror.add_argument("--hw", action="append", default=[], metavar="SPEC")
    mirror.add_argument("--python", action="append", default=[], metavar="X.Y")
    mirror.add_argument("--platform", action="append", default=[], metavar="TAG")
    mirror.add_argument("--proxy", metavar="URL", help="a running proxy (default: in-process)")
    mirror.add_argument("--jobs", type=int, default=8, help="files fetched at once (default 8)")
    cache_options(mirror, upstream=True)

    export = commands.add_parser("export", help="write the cache (or part) as a bundle")
    export.add_argument("bundle", metavar="BUNDLE", help="a directory or a .tar file")
    export.add_argument("--project", action="append", default=[], metavar="NAME")
    export.add_argument("--since", metavar="DATE", help="only what was fetched since (ISO date)")
    export.add_argument(
        "--static", action="store_true", help="write a static PEP 503 tree instead of a bundle"
    )
    export.add_argument("--profile", action="append", default=[], metavar="NAME")
    cache_options(export, upstream=False)

    imported = commands.add_parser("import", help="check a bundle and merge it into the cache")
    imported.add_argument("bundle", metavar="BUNDLE")
    cache_options(imported, upstream=False)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        args.config, upstream_urls=getattr(args, "upstream", ()), cache_dir=args.cache_dir
    )


def _requirements_text(args: argparse.Namespace) -> str:
    lines = list(args.requirements)
    for path in args.requirement:
        resolved = Path(path).resolve()
        if not resolved.is_file():
            raise ConfigError(f"-r {path[:200]}: no such file")
        lines.append(f"-r {resolved}")
    if not lines:
        raise ConfigError("mirror: name at least one REQUIREMENT or -r FILE")
    return "\n".join(lines) + "\n"


def mirror_command(args: argparse.Namespace) -> int:
    from proxy.mirror.run import MirrorRequest, mirror
    from proxy.mirror.targets import TargetError, target_matrix

    try:
        settings = _settings(args)
        if args.proxy is None:
            unknown = [p for p in args.profile if p not in settings.profiles]
            if unknown:
                raise ConfigError(f"unknown profile {unknown[0]!r}")
        targets = target_matrix(
            args.profile,
            args.hw,
            args.python,
            args.platform,
            f"{sys.version_info.major}.{sys.version_info.minor}",
        )
        request = MirrorRequest(_requirements_text(args), targets, args.proxy, max(1, args.jobs))
    except (ConfigError, TargetError) as exc:
        print(f"variant-proxy: {exc}", file=sys.stderr)
        return 2
    # With --proxy, the record goes to the cache dir only when one was named.
    record = args.proxy is None or args.cache_dir is not None or args.config is not None
    return _guarded(lambda: mirror(request, settings, record=record))


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--since: not an ISO date {text[:40]!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def export_command(args: argparse.Namespace) -> int:
    from proxy.mirror.export import ExportRequest, export_bundle
    from proxy.simple.api import normalize_name

    try:
        settings = _settings(args)
        if args.static:
            return _static_export(args, settings)
        if args.profile:
            raise ConfigError("--profile goes with --static")
        request = ExportRequest(
            Path(args.bundle),
            frozenset(normalize_name(p) for p in args.project) if args.project else None,
            _since(args.since),
        )
    except ConfigError as exc:
        print(f"variant-proxy: {exc}", file=sys.stderr)
        return 2

    def run() -> int:
        manifest = asyncio.run(export_bundle(settings.cache_dir, request, settings.s3))
        size = sum(manifest.members().values())
        print(
            f"export: {len(manifest.pages)} pages, {len(manifest.files)} files, "
            f"{size} bytes -> {request.bundle}",
            file=sys.stderr,
        )
        return 0

    return _guarded(run)


def _static_export(args: argparse.Namespace, settings: Settings) -> int:
    from proxy.mirror.static import StaticExportError, export_static

    def run() -> int:
        try:
            written = asyncio.run(
                export_static(settings, Path(args.bundle), args.profile, args.project)
            )
        except (ConfigError, StaticExportError) as exc:
            print(f"variant-proxy: export --static: {exc}", file=sys.stderr)
            return 1
        print(f"export --static: {written} -> {args.bundle}", file=sys.stderr)
        return 0

    return _guarded(run)


def import_command(args: argparse.Namespace) -> int:
    from proxy.mirror.bundle import BundleError
    from proxy.mirror.importer import import_bundle

    try:
        settings = _settings(args)
    except ConfigError as exc:
        print(f"variant-proxy: {exc}", file=sys.stderr)
        return 2
    limit = settings.max_size if settings.max_size > 0 else None

    def run() -> int:
        try:
            summary = asyncio.run(import_bundle(Path(args.bundle), settings.cache_dir, limit))
        except BundleError as exc:
            print(f"variant-proxy: bundle refused, nothing imported: {exc}", file=sys.stderr)
            return 1
        print(
            f"import: {summary.files_added} files added ({summary.files_present} already "
            f"held), {summary.pages_added} pages added ({summary.pages_kept} newer kept)",
            file=sys.stderr,
        )
        return 0

    return _guarded(run)


def _guarded(run: Callable[[], int]) -> int:
    """Run a command; a known failure is one line on stderr and exit status 1."""
    from proxy.store.errors import StoreError

    try:
        return run()
    except StoreError as exc:
        print(f"variant-proxy: {exc} (is a proxy serving it? use --proxy URL)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"variant-proxy: {exc}", file=sys.stderr)
        return 1


MIRROR_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "mirror": mirror_command,
    "export": export_command,
    "import": import_command,
}
