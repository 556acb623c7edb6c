"""The layering of DESIGN.md, read off the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports(package: str) -> dict[str, set[str]]:
    """Top-level modules each file of ``package`` imports, by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path} imports {name}"
        for path, names in imports(package).items()
        for name in sorted(names)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("models", ("streams", "monitor", "alerts")),
        ("alerts", ("streams", "monitor", "models")),
        ("streams", ("monitor",)),
        ("streams/core", ("faust", "aiokafka", "kafka", "streams.worker", "streams.batch", "streams.cluster")),
        ("streams/batch", ("faust", "streams.worker")),
        ("streams/cluster", ("faust", "streams.worker", "streams.batch")),
    ],
)
def test_imports_run_only_downward(package: str, forbidden: tuple[str, ...]) -> None:
    assert offenders(package, forbidden) == []


def test_the_runtime_never_imports_torch() -> None:
    packages = ("models", "streams", "alerts", "monitor")
    found = [o for p in packages for o in offenders(p, ("torch", "transformers")) if "/training/" not in o]
    assert found == []


def test_the_check_sees_an_import() -> None:
    assert "streams.core.records" in imports("streams/core")["streams/core/scoring.py"]
