"""Command line: `variant-proxy serve | detect | explain | invalidate | mirror | export |
import | yank | remove`."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Sequence

from proxy.backend_config import BackendSettings
from proxy.cli import local_index
from proxy.cli.explain import add_explain_command, explain_command
from proxy.cli.mirror_commands import MIRROR_COMMANDS, add_mirror_commands
from proxy.cli.options import fail
from proxy.config import ConfigError, load_settings


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variant-proxy",
        description="Caching proxy for Python package indexes that serves each client the "
        "best wheel variant for its hardware.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", help="TOML configuration file")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080; 0 = any)")
    serve.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="URL",
        help="upstream simple index URL (repeatable; replaces [[upstreams]])",
    )
    serve.add_argument("--cache-dir", help="cache directory")
    serve.add_argument(
        "--offline",
        action="store_true",
        help="serve only what the cache holds; never connect to an upstream",
    )

    detect = commands.add_parser("detect", help="print this machine's variant fingerprint")
    detect.add_argument(
        "--proxy",
        default="http://127.0.0.1:8080",
        help="base URL of the proxy, for the ready --index-url line",
    )
    detect.add_argument(
        "--full",
        action="store_true",
        help="keep every detected CPU flag in the spec (a long URL); default: the compact spec",
    )
    detect.add_argument(
        "--format",
        choices=("text", "pip-conf", "uv-toml"),
        default="text",
        help="text (default), or a ready pip.conf or uv.toml snippet",
    )
    detect.add_argument("--config", help="TOML configuration file (for its [[backends]])")

    add_explain_command(commands)

    invalidate = commands.add_parser(
        "invalidate", help="forget one project's cached page in a running proxy"
    )
    invalidate.add_argument("project")
    invalidate.add_argument(
        "--proxy", default="http://127.0.0.1:8080", help="base URL of the running proxy"
    )
    add_mirror_commands(commands)
    local_index.add_commands(commands)
    return parser


def _serve_command(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(
            args.config,
            host=args.host,
            port=args.port,
            upstream_urls=args.upstream,
            cache_dir=args.cache_dir,
            offline=args.offline,
        )
    except ConfigError as exc:
        return fail(f"config error: {exc}", 2)
    from proxy.server.run import serve

    return serve(settings)


def _invalidate_command(args: argparse.Namespace) -> int:
    url = f"{args.proxy.rstrip('/')}/admin/invalidate/{args.project}"
    request = urllib.request.Request(url, method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return fail(f"{url}: {exc.code} {exc.read().decode(errors='replace').strip()}")
    except urllib.error.URLError as exc:
        return fail(f"cannot reach {args.proxy}: {exc.reason}")
    print(f"invalidated {answer['invalidated']}")
    return 0


def _detect_command(args: argparse.Namespace) -> int:
    from proxy.cli.detect_output import config_snippet, detect_report
    from proxy.cli.explain_backends import detect_backend_line
    from proxy.detect import detect_hardware, detected_fingerprint

    try:
        backends = _detect_backends(args)
    except ConfigError as exc:
        return fail(f"config error: {exc}", 2)
    detection = detect_hardware()
    if args.format == "text":
        print(detect_report(detection, args.proxy, full=args.full), end="")
        print(detect_backend_line(detected_fingerprint(detection), backends), end="")
    else:
        print(config_snippet(detection, args.proxy, args.format, full=args.full), end="")
    return 0


def _detect_backends(args: argparse.Namespace) -> tuple[BackendSettings, ...]:
    """The `[[backends]]` of `--config`, if given (detect needs no upstream)."""
    if args.config is None:
        return ()
    return load_settings(args.config, upstream_urls=["http://127.0.0.1/"]).backends


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve_command(args)
    if args.command == "detect":
        return _detect_command(args)
    if args.command == "explain":
        return explain_command(args)
    if args.command == "invalidate":
        return _invalidate_command(args)
    if args.command in MIRROR_COMMANDS:
        return MIRROR_COMMANDS[args.command](args)
    if args.command in ("yank", "remove"):
        return local_index.run(args)
    raise AssertionError(args.command)
