"""`variant-proxy yank | remove`: change a file of a running proxy's local index.

Both are thin clients of the proxy's authenticated admin routes under `/upload/` (the server
does the work under the project's lock and updates its pages at once), with the upload token
read from an environment variable (`--token-env`, default `VARIANT_PROXY_UPLOAD_TOKEN`).
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import quote

DEFAULT_TOKEN_ENV = "VARIANT_PROXY_UPLOAD_TOKEN"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    yank = commands.add_parser("yank", help="yank (or with --undo un-yank) a local index file")
    yank.add_argument("--reason", default="", help="why it is yanked (shown to installers)")
    yank.add_argument("--undo", action="store_true", help="un-yank the file")
    remove = commands.add_parser("remove", help="delete a file from the local index")
    for command in (yank, remove):
        command.add_argument("project")
        command.add_argument("filename")
        command.add_argument(
            "--proxy", default="http://127.0.0.1:8080", help="base URL of the running proxy"
        )
        command.add_argument(
            "--token-env",
            default=DEFAULT_TOKEN_ENV,
            help=f"environment variable holding the upload token (default {DEFAULT_TOKEN_ENV})",
        )


def run(args: argparse.Namespace) -> int:
    token = os.environ.get(args.token_env, "")
    if not token:
        print(f"variant-proxy: set {args.token_env} to the upload token", file=sys.stderr)
        return 2
    path = f"/upload/{quote(args.project)}/{quote(args.filename)}"
    if args.command == "yank":
        method = "DELETE" if args.undo else "POST"
        path += "/yank"
        body = b"" if args.undo else args.reason.encode()
    else:
        method, body = "DELETE", b""
    url = args.proxy.rstrip("/") + path
    request = urllib.request.Request(
        url,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            print(response.read().decode(errors="replace").strip())
    except urllib.error.HTTPError as exc:
        reason = exc.read().decode(errors="replace").strip()
        print(f"variant-proxy: {exc.code} {reason}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"variant-proxy: cannot reach {args.proxy}: {exc.reason}", file=sys.stderr)
        return 1
    return 0
