"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.store.file_store import FileStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStore]:
    """An open file store in a fresh cache folder (the store tests' own)."""
    file_store = FileStore(tmp_path / "cache", None)
    await file_store.open()
    yield file_store
    await file_store.close()
