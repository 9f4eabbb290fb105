"""Run inside a network namespace with no route out (`unshare -n`), as a plain script.

Brings up `lo`, checks that the upstream's address cannot be reached, starts
`variant-proxy serve --offline` on the namespace's loopback, runs each pip job against it
and GETs each path, then prints one JSON object with every outcome on stdout.

Input (argv[1], JSON): {"python": str, "config": str, "upstream_port": int,
"pip_jobs": {name: [pip args with "{url}" for the proxy's base URL]}, "gets": [paths]}.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

OFFLINE = ("--offline", "--port", "0")
READY = re.compile(r"serving on (http://[^\s\"/]+)")  # a JSON or a text start-up line


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _get(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return {"status": response.status, "body": response.read().decode(errors="replace")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "body": exc.read().decode(errors="replace")}


def main() -> int:
    spec = json.loads(sys.argv[1])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    result: dict[str, Any] = {"upstream_reachable": _reachable(spec["upstream_port"])}
    proxy = subprocess.Popen(
        [*(spec["python"], "-m", "proxy", "serve", "--config", spec["config"]), *OFFLINE],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proxy.stderr is not None
    url = ""
    for line in proxy.stderr:
        if match := READY.search(line):
            url = match.group(1).rstrip("/")
            break
    # Keep reading its log, so a full pipe never stalls it.
    threading.Thread(target=proxy.stderr.read, daemon=True).start()
    try:
        result["pip"] = {
            name: _pip(spec["python"], [arg.replace("{url}", url) for arg in args])
            for name, args in spec["pip_jobs"].items()
        }
        result["gets"] = {path: _get(url + path) for path in spec["gets"]}
    finally:
        proxy.terminate()
        proxy.wait(timeout=30)
    print(json.dumps(result))
    return 0


def _pip(python: str, args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [python, "-m", "pip", *args], capture_output=True, text=True, timeout=300, check=False
    )
    return {"rc": done.returncode, "output": (done.stdout + done.stderr)[-3000:]}


if __name__ == "__main__":
    sys.exit(main())
