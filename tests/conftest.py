"""Fixtures shared by the whole suite. Keep each fixture a small, named function."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"

# Unit tests must never reach a Prefect API by accident, nor phone home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_HOME", str(REPO / ".prefect"))


@pytest.fixture(autouse=True)
def _isolated_tome_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tome's state directory (cache DB, ledger) at a per-test folder; no real keys leak in."""
    home = tmp_path / "tome-home"
    monkeypatch.setenv("TOME_HOME", str(home))
    monkeypatch.delenv("TOME_DATABASE_URL", raising=False)
    for var in ("MOONSHOT_API_KEY", "OPENAI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def corpus() -> Path:
    """The shared real-document corpus; tests using it skip when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    return CORPUS
