"""Command line: `variant-proxy mirror | export | import` (parsers and dispatch)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

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
    _cache_options(mirror, upstream=True)

    export = commands.add_parser("export", help="write the cache (or part) as a bundle")
    export.add_argument("bundle", metavar="BUNDLE", help="a directory or a .tar file")
    export.add_argument("--project", action="append", default=[], metavar="NAME")
    export.add_argument("--since", metavar="DATE", help="only what was fetched since (ISO date)")
    export.add_argument(
        "--static", action="store_true", help="write a static PEP 503 tree instead of a bundle"
    )
    export.add_argument("--profile", action="append", default=[], metavar="NAME")
    _cache_options(export, upstream=False)

    imported = commands.add_parser("import", help="check a bundle and merge it into the cache")
    imported.add_argument("bundle", metavar="BUNDLE")
    _cache_options(imported, upstream=False)


def _cache_options(parser: argparse.ArgumentParser, *, upstream: bool) -> None:
    parser.add_argument("--config", help="TOML configuration file")
    parser.add_argument("--cache-dir", help="cache directory")
    if upstream:
        parser.add_argument("--upstream", action="append", default=[], metavar="URL")


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
    return _guarded(lambda: mirror(request, settings))


def export_command(args: argparse.Namespace) -> int:
    print("variant-proxy: export is not available yet", file=sys.stderr)
    return 2


def import_command(args: argparse.Namespace) -> int:
    print("variant-proxy: import is not available yet", file=sys.stderr)
    return 2


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
