"""The code's shape limits (the project's standards): every function in `proxy/` has a
cyclomatic complexity of at most 15, and every module at most 400 lines.

Complexity is radon's (a test-only dependency: `radon` in the `test` extra), measured on the
source as it is on disk; a method is named `Class.method`, a nested function
`outer.inner`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from radon.visitors import Class, ComplexityVisitor

PROXY = Path(__file__).resolve().parents[2] / "proxy"
MAX_COMPLEXITY = 15
MAX_LINES = 400

MODULES = sorted(PROXY.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(PROXY).as_posix()


def functions(blocks: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, complexity) of every function, method and nested function."""
    for block in blocks:
        if isinstance(block, Class):
            yield from functions(block.methods, f"{prefix}{block.name}.")
            yield from functions(block.inner_classes, f"{prefix}{block.name}.")
        else:
            yield f"{prefix}{block.name}", block.complexity
            yield from functions(block.closures, f"{prefix}{block.name}.")


def measured(source: str) -> dict[str, int]:
    """Complexity of every function in `source`, by qualified name."""
    visitor = ComplexityVisitor.from_code(source)
    return dict(functions([*visitor.functions, *visitor.classes]))


def complexities(path: Path) -> dict[str, int]:
    return measured(path.read_text(encoding="utf-8"))


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_package_is_found() -> None:
    assert len(MODULES) > 100
    assert complexities(PROXY / "config.py")["settings_from_mapping"] >= 1


def test_a_nested_function_is_measured_on_its_own() -> None:
    branches = "".join(
        f"            if x == {n}:\n                return {n}\n" for n in range(MAX_COMPLEXITY)
    )
    source = f"class A:\n    def f(self, x):\n        def g():\n{branches}        return g\n"
    assert measured(source) == {"A.f": 1, "A.f.g": MAX_COMPLEXITY + 1}


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_no_function_is_over_the_complexity_limit(path: Path) -> None:
    module = relative(path)
    too_complex = [
        f"{name} (complexity {complexity})"
        for name, complexity in complexities(path).items()
        if complexity > MAX_COMPLEXITY
    ]
    assert too_complex == [], f"{module}: split into named steps: {too_complex}"


@pytest.mark.parametrize("path", MODULES, ids=relative)
def test_no_module_is_over_the_line_limit(path: Path) -> None:
    module = relative(path)
    assert line_count(path) <= MAX_LINES, f"{module}: split it by concept"


# Where pages and files come from never depends on what consumes them: the file store, the
# server, the command line, the mirror and cluster mode are downstream of upstreams/.
DOWNSTREAM_OF_UPSTREAMS = ("proxy.store", "proxy.server", "proxy.cli", "proxy.mirror")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted((PROXY / "upstreams").glob("*.py")), ids=relative)
def test_upstreams_import_nothing_downstream(path: Path) -> None:
    downstream = {
        name for name in imported_modules(path) if name.startswith(DOWNSTREAM_OF_UPSTREAMS)
    }
    assert downstream == set()


def test_variant_metadata_does_not_import_its_consumer_the_rewriter() -> None:
    imported = imported_modules(PROXY / "upstreams" / "variant_metadata.py")
    assert "proxy.variants.rewrite" not in imported
    assert "proxy.variants.legacy" not in imported
