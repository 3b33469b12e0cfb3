"""The size guide: no module in pipeline/ or flows/ over 450 lines, no class over 250 (split along real seams)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 250
SOURCES = sorted(p for package in ("pipeline", "flows") for p in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_the_packages_are_found() -> None:
    assert len(SOURCES) > 50 and any(p.name == "chunking.py" for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_module_and_class_sizes(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines (guide: {MAX_MODULE_LINES}); split it"
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= MAX_CLASS_LINES, (
                f"class {node.name} in {_name(path)} has {size} lines (guide: {MAX_CLASS_LINES}); split it"
            )
