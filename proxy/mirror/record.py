"""What was mirrored for which targets: `<cache dir>/mirror/targets.json` (format 1).

    {"format": 1,
     "targets": {"<target label>": {"requirements": [...], "files": ["name", ...],
                                    "mirrored_at": "2026-01-01T00:00:00+00:00"}}}

A rerun replaces the entries of the targets it mirrored; export copies the record into the
bundle's manifest and import merges it into the far side's record.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RECORD_FORMAT = 1


def record_path(cache_dir: Path) -> Path:
    return cache_dir / "mirror" / "targets.json"


def read_record(cache_dir: Path) -> dict[str, Any]:
    """The targets recorded in `cache_dir` (empty when none or unreadable)."""
    try:
        data = json.loads(record_path(cache_dir).read_text())
    except (OSError, ValueError):
        return {}
    targets = data.get("targets") if isinstance(data, dict) else None
    return dict(targets) if isinstance(targets, dict) else {}


def merge_record(cache_dir: Path, targets: Mapping[str, Any]) -> None:
    """Add (or replace) `targets` in the record, written atomically."""
    merged = read_record(cache_dir)
    merged.update(targets)
    path = record_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"format": RECORD_FORMAT, "targets": merged}, indent=1, sort_keys=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, path)


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
