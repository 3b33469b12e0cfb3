"""Backend choice (auto / extractive / provider) and a quota stop raised by the client-side rate budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.backends import make_backend
from pipeline.budget.factory import make_budget
from pipeline.config import RateLimits
from pipeline.engine import SummaryEngine
from pipeline.errors import ConfigError, QuotaExhaustedError
from pipeline.extractive import ExtractiveBackend
from pipeline.llm.client import MoonshotClient, OpenAICompatibleClient
from pipeline.settings import model_and_limits, resolve_settings
from pipeline.store import Store
from tests.test_engine import generated_document


def test_auto_without_key_is_extractive_and_says_so():
    backend, notice = make_backend("auto", resolve_settings(), env={})
    assert isinstance(backend, ExtractiveBackend) and backend.name == "extractive"
    assert "MOONSHOT_API_KEY is not set" in notice and "extractive" in notice


async def test_auto_with_key_is_moonshot_and_the_notice_hides_the_key():
    key = "sk-secret-value-123"
    backend, notice = make_backend("auto", resolve_settings(), env={"MOONSHOT_API_KEY": key})
    assert isinstance(backend, MoonshotClient) and backend.name == "moonshot"
    assert key not in notice and key not in repr(backend) and "moonshot" in notice
    await backend.aclose()


async def test_named_provider_and_base_url():
    backend, notice = make_backend(
        "openai", resolve_settings(), base_url="http://127.0.0.1:9/v1", api_key="sk-x", env={}
    )
    assert isinstance(backend, OpenAICompatibleClient) and backend.name == "openai"
    assert "http://127.0.0.1:9/v1" in notice
    await backend.aclose()
    extractive, _ = make_backend("extractive", resolve_settings(), env={"MOONSHOT_API_KEY": "sk-x"})
    assert isinstance(extractive, ExtractiveBackend)


def test_unknown_backend_and_missing_key_are_config_errors():
    with pytest.raises(ConfigError, match="Known backends"):
        make_backend("nope", resolve_settings(), env={})
    with pytest.raises(ConfigError, match="DEEPSEEK_API_KEY"):
        make_backend("deepseek", resolve_settings(), env={})


async def test_budget_quota_stops_the_run_before_sending(moonshot_server, tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'tome.db'}")
    settings = resolve_settings()
    model, _ = model_and_limits(settings)
    budget = make_budget(RateLimits(concurrency=4, tpd=30_000), account="test")
    client = MoonshotClient(base_url=moonshot_server.base_url, api_key=moonshot_server.api_key, budget=budget)
    engine = SummaryEngine(backend=client, store=store, settings=settings, model=model, max_in_flight=4)
    with pytest.raises(QuotaExhaustedError):
        await engine.summarise(generated_document(chapters=30))
    await client.aclose()
    stats = moonshot_server.gateway.stats()
    assert stats.requests > 0 and set(stats.by_status) == {200}  # the budget stopped it, not the server
    assert store.cache_stats().entries == stats.requests
    run = store.list_runs()[0]
    assert run.status == "quota" and "TPD" in (run.error or "")
    assert run.calls == stats.requests


async def test_every_backend_has_every_member_the_chat_backend_contract_declares(tmp_path: Path):
    from pipeline.db import make_engine
    from pipeline.errors import NoTextLayerError
    from pipeline.llm.types import ChatBackend
    from pipeline.spending import CappedBackend, SpendingCap

    members = {n for n in vars(ChatBackend) if not n.startswith("_")} | set(ChatBackend.__annotations__)
    assert {"name", "cache_namespace", "billable", "calibration", "reads_prompts", "on_retry"} <= members
    settings = resolve_settings()
    model, _ = model_and_limits(settings)
    moonshot = MoonshotClient(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    openai = OpenAICompatibleClient("openai", api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    cap = SpendingCap(make_engine(f"sqlite:///{tmp_path / 'cap.db'}"), scope="t", cap=1.0, currency="CNY")
    backends = [ExtractiveBackend(), moonshot, openai, CappedBackend(moonshot, cap, model)]
    for backend in backends:
        assert sorted(m for m in members if not hasattr(backend, m)) == [], backend
    assert [b.extracts_files for b in backends] == [False, True, False, True]
    assert [b.reads_prompts for b in backends] == [False, True, True, True]
    assert [b.base_url for b in backends] == [None, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"]
    assert [b.cache_namespace for b in backends] == [ExtractiveBackend.cache_namespace, "moonshot", "openai", "moonshot"]
    for backend in (backends[0], openai):
        with pytest.raises(NoTextLayerError):
            await backend.extract_file(tmp_path / "scan.pdf")
    await moonshot.aclose()
    await openai.aclose()
