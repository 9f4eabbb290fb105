"""What the commands share: the options that name a proxy's settings, and the one-line
failure every command reports on stderr."""

from __future__ import annotations

import argparse
import sys


def cache_options(parser: argparse.ArgumentParser, *, upstream: bool) -> None:
    """`--config`, `--cache-dir` and (where upstreams are read) `--upstream`."""
    parser.add_argument("--config", help="TOML configuration file")
    parser.add_argument("--cache-dir", help="cache directory")
    if upstream:
        parser.add_argument("--upstream", action="append", default=[], metavar="URL")


def fail(message: str, status: int = 1) -> int:
    """Report a failure as one line on stderr; the exit status to return."""
    print(f"variant-proxy: {message}", file=sys.stderr)
    return status
