"""--max-cost: the spending cap shared through the database, a run that stops before it and resumes after it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.config import load_catalog
from pipeline.db import make_engine
from pipeline.document_runs import summarise_path
from pipeline.options import SummariseOptions
from pipeline.runtime import build_runtime
from pipeline.spending import SpendingCap, SpendingCapError
from tests.conftest import LIGHTHOUSE


def test_reservations_never_pass_the_cap_and_are_shared_by_scope(db_url: str) -> None:
    first = SpendingCap(make_engine(db_url), scope="batch-1", cap=1.0, currency="CNY")
    other_worker = SpendingCap(make_engine(db_url), scope="batch-1", cap=1.0, currency="CNY")
    first.reserve(0.4)
    other_worker.reserve(0.4)
    with pytest.raises(SpendingCapError) as info:
        first.reserve(0.3)  # 0.8 reserved + 0.3 > 1.0, whichever worker asks
    assert info.value.exit_code == 3 and "0.0000 CNY spent" in str(info.value)
    first.settle(0.4, 0.1)  # the call cost less than its worst case: room comes back
    other_worker.reserve(0.3)
    other_worker.settle(0.4, 0.35)
    assert first.spent() == pytest.approx(0.45)
    unrelated = SpendingCap(make_engine(db_url), scope="batch-2", cap=1.0, currency="CNY")
    unrelated.reserve(0.9)  # another scope has its own cap


async def test_a_run_stops_before_the_cap_and_resumes(moonshot_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    model = load_catalog().model("moonshot-v1-8k")
    options = SummariseOptions(backend="moonshot", base_url=moonshot_server.base_url, tier="unlimited")

    full = build_runtime(options, env={"MOONSHOT_API_KEY": moonshot_server.api_key})
    try:
        whole = await summarise_path(full, LIGHTHOUSE)
        full.store.cache_clear()
    finally:
        await full.aclose()
    assert whole.outcome.status == "done" and whole.outcome.calls >= 3
    cap = whole.outcome.cost * 0.6  # room for the first call's worst case (max_tokens is ~3x what it writes), not all

    moonshot_server.reset()
    capped = build_runtime(options.model_copy(update={"max_cost": cap}))
    try:
        stopped = await summarise_path(capped, LIGHTHOUSE)
    finally:
        await capped.aclose()
    stats = moonshot_server.stats()
    paid = model.cost(stats.prompt_tokens, stats.completion_tokens)
    assert stopped.outcome.status == "quota" and stopped.outcome.exit_code == 3
    assert 0 < paid <= cap  # stopped before exceeding it, after spending some
    assert "Spending cap reached" in stopped.outcome.error and "--max-cost" in stopped.outcome.error
    assert f"{paid:.4f} CNY spent" in stopped.outcome.error

    resumed = build_runtime(options)
    try:
        again = await summarise_path(resumed, LIGHTHOUSE)
    finally:
        await resumed.aclose()
    assert again.outcome.status == "done" and again.outcome.cached_calls >= stats.requests


def test_cli_max_cost_and_the_defaults_setting(moonshot_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    runner = CliRunner()
    args = ["summarise", "--no-prefect", "--no-progress", "--base-url", moonshot_server.base_url, "--tier", "unlimited"]
    result = runner.invoke(app, [*args, "--max-cost", "0.0005", str(LIGHTHOUSE)])
    assert result.exit_code == 3, result.output
    assert "Spending cap reached" in result.stderr and "Traceback" not in result.stderr

    config = tmp_path / "tome.toml"
    config.write_text("[defaults]\nmax_cost = 0.0005\n", encoding="utf-8")
    monkeypatch.setenv("TOME_CONFIG", str(config))
    moonshot_server.reset()
    from_defaults = runner.invoke(app, [*args, str(LIGHTHOUSE)])
    assert from_defaults.exit_code == 3 and "--max-cost 0.0005 CNY" in from_defaults.stderr
    lifted = runner.invoke(app, [*args, "--max-cost", "0", str(LIGHTHOUSE)])  # 0 = no cap, beats the setting
    assert lifted.exit_code == 0, lifted.output
