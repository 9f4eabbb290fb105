"""The documents a newcomer follows name what exists: the e2e README's module table, the
README's set-up commands, its module map and its on-disk layout."""

from __future__ import annotations

import re
from pathlib import Path

from proxy.mirror.importer import IMPORT_LOCK, STAGING
from proxy.mirror.record import record_path
from proxy.pages.cache import PAGE_CACHE_DIR
from proxy.store.local_disk import FILES_FORMAT

REPO = Path(__file__).resolve().parents[2]
E2E = REPO / "tests" / "e2e"


def test_e2e_readme_names_only_existing_modules_and_every_helper() -> None:
    named = set(re.findall(r"`([\w/]+\.py)`", (E2E / "README.md").read_text()))
    existing = {path.name for path in E2E.glob("*.py")}
    assert named <= existing, sorted(named - existing)
    helpers = {name for name in existing if not name.startswith(("test_", "__"))}
    assert helpers <= named, sorted(helpers - named)


def test_readme_set_up_commands_are_separate_and_say_serve_blocks() -> None:
    readme = (REPO / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.strip() for line in quick_start.splitlines() if line.startswith("    ")]
    assert "python3 -m venv .venv && .venv/bin/pip install ." in commands
    assert ".venv/bin/variant-proxy serve" in commands
    assert ".venv/bin/python -m pytest" in commands
    # Serving is its own command, never chained after an install or before the tests.
    assert not any("serve" in command and "&&" in command for command in commands)
    assert "keeps the terminal" in quick_start


def test_readme_on_disk_layout_matches_the_code() -> None:
    readme = (REPO / "README.md").read_text()
    layout = readme.split("## On-disk cache layout", 1)[1].split("\n## ", 1)[0]
    state = (REPO / "proxy" / "server" / "state.py").read_text()
    for folder in re.findall(r'cache_dir / "([\w-]+)"', state):
        assert f"  {folder}/" in layout, folder
    assert f"files/{FILES_FORMAT}/<shard>/<key>" in layout
    for name in ("lock", "index.sqlite3", "tmp/"):
        assert name in layout


def readme_section(title: str) -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_readme_module_map_names_every_folder_of_proxy_and_nothing_else() -> None:
    module_map = readme_section("Development").split("tests/unit/", 1)[0]
    named = set(re.findall(r"^      (\w+)/ ", module_map, re.MULTILINE))
    proxy = REPO / "proxy"
    folders = {path.name for path in proxy.iterdir() if (path / "__init__.py").exists()}
    assert named == folders


def test_readme_module_map_names_only_existing_modules() -> None:
    module_map = readme_section("Development").split("tests/unit/", 1)[0]
    named = set(re.findall(r"\b([\w/]+\.py)\b", module_map))
    assert named, "the module map names modules"
    proxy = REPO / "proxy"
    missing = {name for name in named if not list(proxy.rglob(name.rsplit("/", 1)[-1]))}
    assert missing == set()


def test_readme_on_disk_layout_names_every_cache_folder_the_code_writes(tmp_path: Path) -> None:
    layout = readme_section("On-disk cache layout")
    mirror_record = record_path(tmp_path).relative_to(tmp_path).as_posix()
    for name in (f"{PAGE_CACHE_DIR}/", "store/", f"{STAGING}/", IMPORT_LOCK, mirror_record):
        assert f"\n      {name}" in layout, name
