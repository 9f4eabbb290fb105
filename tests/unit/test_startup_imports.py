"""Start-up imports only what the configuration uses: no S3 or Redis client without
`[cache.s3]` or `[cluster]` (those imports were a large part of the proxy's start-up)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("aiobotocore", "botocore", "redis")


def test_serving_without_a_cluster_imports_no_s3_or_redis_client() -> None:
    code = (
        "import sys\n"
        "import proxy.cli.main, proxy.server.run, proxy.server.app\n"
        f"print(' '.join(name for name in {OPTIONAL!r} if name in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert completed.stdout.strip() == ""
