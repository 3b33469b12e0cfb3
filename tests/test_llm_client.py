"""The HTTP client against the local Moonshot-compatible server: answers, errors, retries, budget, secrecy."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pipeline import errors as E
from pipeline.config import RateLimits
from pipeline.llm.client import MoonshotClient, OpenAICompatibleClient, client_for
from pipeline.llm.retry import RetryPolicy
from pipeline.llm.types import ChatRequest, Message, Usage
from pipeline.testing import Latency, MoonshotTestServer
from tests.conftest import MOONSHOT_FIXTURES, free_port, record_sleep
from tests.test_llm_errors import EXPECTED, load_fixture
from tests.test_llm_sse import EXPECTED_TEXT

TEXT = (
    "The lighthouse keeper woke before dawn. He climbed the stairs and lit the lamp.\n\n"
    "Ships passed in the night ⟦LK-1⟧. None of them stopped. The keeper wrote each one in his log.\n\n"
    "In spring a storm broke the glass. He repaired it alone, over three long days."
)
NO_RETRY = RetryPolicy(max_retries=0)


def chat(*, stream: bool = False, max_tokens: int = 200, temperature: float = 0.3, text: str = TEXT) -> ChatRequest:
    return ChatRequest(
        model="moonshot-v1-8k",
        messages=(Message("system", "You summarise documents."), Message("user", text)),
        max_tokens=max_tokens,
        temperature=temperature,
        estimated_prompt_tokens=60,
        stream=stream,
    )


def client(srv: MoonshotTestServer, waits: list[float] | None = None, **kw: object) -> MoonshotClient:
    kw.setdefault("rand", lambda: 0.0)
    return MoonshotClient(
        base_url=srv.base_url, api_key=srv.api_key, sleep=record_sleep(waits if waits is not None else []), **kw
    )


# --- answers ---------------------------------------------------------------------------------------------------


async def test_json_completion(moonshot_server: MoonshotTestServer, moonshot_client: MoonshotClient) -> None:
    c = await moonshot_client.complete(chat())
    assert "⟦LK-1⟧" in c.content and "lighthouse keeper woke" in c.content
    assert c.finish_reason == "stop"
    [record] = moonshot_server.chat_log()
    assert c.usage == Usage(prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens)
    assert re.fullmatch(r"[0-9a-f-]{36}", c.request_id or "")
    assert c.attempts == 1 and c.latency_s > 0 and c.model == "moonshot-v1-8k"


async def test_stream_equals_json(moonshot_client: MoonshotClient) -> None:
    plain = await moonshot_client.complete(chat())
    streamed = await moonshot_client.complete(chat(stream=True))
    assert (streamed.content, streamed.usage, streamed.finish_reason) == (plain.content, plain.usage, "stop")


async def test_openai_provider_streams_with_include_usage(moonshot_server: MoonshotTestServer) -> None:
    # provider "openai" asks for stream_options.include_usage; the usage then also arrives in a final chunk.
    async with OpenAICompatibleClient(
        "openai", base_url=moonshot_server.base_url, api_key=moonshot_server.api_key
    ) as c:
        streamed = await c.complete(chat(stream=True, temperature=0.9))
        plain = await c.complete(chat())
    assert streamed.usage == plain.usage and streamed.usage.completion_tokens > 0


async def test_recorded_moonshot_transcript_replayed(
    moonshot_server: MoonshotTestServer, moonshot_client: MoonshotClient
) -> None:
    for name in ("stream_usage_in_choice.sse", "stream_include_usage.sse"):
        moonshot_server.inject_sse((MOONSHOT_FIXTURES / name).read_text(encoding="utf-8"))
        c = await moonshot_client.complete(chat(stream=True))
        assert c.content == EXPECTED_TEXT
        assert (c.usage.prompt_tokens, c.usage.completion_tokens) == (39, 211)
        assert c.finish_reason == "stop"


async def test_length_finish_reason(moonshot_client: MoonshotClient) -> None:
    c = await moonshot_client.complete(chat(max_tokens=5, stream=True))
    assert c.finish_reason == "length" and c.usage.completion_tokens <= 5


async def test_temperature_is_clamped_to_the_providers_range(moonshot_client: MoonshotClient) -> None:
    # The server, like Moonshot, rejects temperature > 1 with a 400; the client clamps 1.7 to 1.0.
    c = await moonshot_client.complete(chat(temperature=1.7))
    assert c.finish_reason == "stop"


# --- errors over HTTP -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_recorded_error_bodies_replayed_map_to_types(moonshot_server: MoonshotTestServer, name: str) -> None:
    status, ctype, body = load_fixture(name)
    moonshot_server.inject_response(status, body, content_type=ctype)
    cls, attrs = EXPECTED[name]
    async with client(moonshot_server, retry=NO_RETRY) as c:
        with pytest.raises(cls) as info:
            await c.complete(chat())
    for attr, value in attrs.items():
        if attr != "resets_at":
            assert getattr(info.value, attr) == value
    assert moonshot_server.stats().requests == 1


@pytest.mark.parametrize(
    ("fault", "cls"),
    [
        ("content_filter", E.ContentFilterError),
        ("context_length", E.ContextLengthError),
        ("input_too_long", E.ContextLengthError),
        ("auth", E.AuthenticationError),
        ("inactive", E.QuotaExhaustedError),
        ("quota", E.QuotaExhaustedError),
        ("suspended", E.QuotaExhaustedError),
        ("rate_limit_tpd", E.QuotaExhaustedError),
    ],
)
async def test_non_retryable_errors_make_exactly_one_request(
    moonshot_server: MoonshotTestServer, recorded_sleeps: list[float], fault: str, cls: type[E.TomeError]
) -> None:
    moonshot_server.inject(fault, times=5)
    async with client(moonshot_server, recorded_sleeps) as c:
        with pytest.raises(cls):
            await c.complete(chat())
    assert moonshot_server.stats().requests == 1
    assert recorded_sleeps == []


async def test_real_400s_401_404_are_not_retried(moonshot_server: MoonshotTestServer) -> None:
    async with client(moonshot_server) as c:
        with pytest.raises(E.ContextLengthError) as info:
            await c.complete(chat(max_tokens=9000))
        assert info.value.limit == 8192 and info.value.requested and info.value.requested > 9000
        with pytest.raises(E.InvalidRequestError, match="must not be empty"):
            await c.complete(chat(text="   "))
        with pytest.raises(E.ModelNotFoundError):
            await c.complete(ChatRequest(model="moonshot-v1-9k", messages=(Message("user", "hi"),), max_tokens=10))
    async with MoonshotClient(base_url=moonshot_server.base_url, api_key="sk-wrong") as c:
        with pytest.raises(E.AuthenticationError, match="MOONSHOT_API_KEY"):
            await c.complete(chat())
    assert moonshot_server.stats().requests == 4


async def test_quota_from_real_tpd_limit_stops_at_once(moonshot_server_factory, recorded_sleeps) -> None:
    srv = moonshot_server_factory(limits=RateLimits(concurrency=0, tpd=700))
    async with client(srv, recorded_sleeps) as c:
        await c.complete(chat(max_tokens=400))
        with pytest.raises(E.QuotaExhaustedError) as info:
            await c.complete(chat(max_tokens=400))
    assert info.value.quota == "tpd" and info.value.resets_at is not None
    assert srv.stats().requests == 2 and recorded_sleeps == []


# --- retries ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["drop_stream", "truncate_stream"])
async def test_interrupted_stream_is_retried(moonshot_server: MoonshotTestServer, fault: str) -> None:
    moonshot_server.inject(fault)
    async with client(moonshot_server) as c:
        c1 = await c.complete(chat(stream=True))
    assert c1.attempts == 2 and "⟦LK-1⟧" in c1.content
    assert moonshot_server.stats().requests == 2


@pytest.mark.parametrize("fault", ["drop_stream", "truncate_stream"])
async def test_interrupted_stream_never_returns_a_short_answer(moonshot_server: MoonshotTestServer, fault: str) -> None:
    moonshot_server.inject(fault)
    async with client(moonshot_server, retry=NO_RETRY) as c:
        with pytest.raises(E.StreamInterruptedError):
            await c.complete(chat(stream=True))


async def test_dropped_json_body_is_a_connection_error_and_retried(moonshot_server: MoonshotTestServer) -> None:
    moonshot_server.inject("drop_stream")
    async with client(moonshot_server, retry=NO_RETRY) as c:
        with pytest.raises(E.LLMConnectionError):
            await c.complete(chat())
        moonshot_server.inject("drop_stream")
    async with client(moonshot_server) as c:
        assert (await c.complete(chat())).attempts == 2


async def test_overload_retried_with_growing_waits(moonshot_server: MoonshotTestServer, recorded_sleeps) -> None:
    moonshot_server.inject("overload", times=3)
    async with client(moonshot_server, recorded_sleeps) as c:
        c1 = await c.complete(chat())
    assert c1.attempts == 4
    assert recorded_sleeps == [2.0, 4.0, 8.0]
    assert moonshot_server.stats().rate_limited == {"overload": 3}


async def test_persistent_overload_fails_clearly_after_bounded_attempts(
    moonshot_server: MoonshotTestServer, recorded_sleeps: list[float]
) -> None:
    moonshot_server.inject("overload", times=100)
    async with client(moonshot_server, recorded_sleeps) as c:
        with pytest.raises(E.OverloadedError, match="a later|again later") as info:
            await c.complete(chat())
    assert "Gave up after 7 attempts" in str(info.value)
    assert moonshot_server.stats().requests == 7
    assert recorded_sleeps == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0]


@pytest.mark.parametrize(("fault", "wait"), [("rate_limit_rpm", 20), ("rate_limit_concurrency", 3)])
async def test_try_again_after_hint_is_honoured(
    moonshot_server: MoonshotTestServer, recorded_sleeps: list[float], fault: str, wait: int
) -> None:
    moonshot_server.inject(fault, wait=wait)
    async with client(moonshot_server, recorded_sleeps) as c:
        assert (await c.complete(chat())).attempts == 2
    assert recorded_sleeps == [float(wait)]


@pytest.mark.parametrize("fault", ["500", "502", "503", "504_html"])
async def test_server_errors_are_retried(moonshot_server: MoonshotTestServer, fault: str) -> None:
    moonshot_server.inject(fault, times=2)
    async with client(moonshot_server) as c:
        assert (await c.complete(chat())).attempts == 3


async def test_real_rpm_limit_waits_the_hinted_time(moonshot_server_factory) -> None:
    srv = moonshot_server_factory(limits=RateLimits(concurrency=0, rpm=2))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # waiting moves the server's clock instead of real time
        waits.append(seconds)
        srv.advance(seconds)

    async with MoonshotClient(base_url=srv.base_url, api_key=srv.api_key, sleep=sleep, rand=lambda: 0.0) as c:
        for _ in range(3):
            await c.complete(chat())
    assert srv.stats().rate_limited == {"rpm": 1}
    assert len(waits) == 1 and 55 <= waits[0] <= 60


async def test_real_tpm_limit_backs_off_until_the_window_slides(moonshot_server_factory) -> None:
    srv = moonshot_server_factory(limits=RateLimits(concurrency=0, tpm=1000))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        srv.advance(seconds)

    async with MoonshotClient(base_url=srv.base_url, api_key=srv.api_key, sleep=sleep, rand=lambda: 0.0) as c:
        await c.complete(chat(max_tokens=600))
        second = await c.complete(chat(max_tokens=600))
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0]  # 62 s of backoff > the 60 s window
    assert second.attempts == 6 and srv.stats().rate_limited == {"tpm": 5}


async def test_read_timeout_maps_and_is_retried(moonshot_server: MoonshotTestServer) -> None:
    moonshot_server.inject("stall", seconds=0.6)
    async with client(moonshot_server, read_timeout_s=0.2, retry=NO_RETRY) as c:
        with pytest.raises(E.LLMTimeoutError):
            await c.complete(chat())
    moonshot_server.inject("stall", seconds=0.6)
    async with client(moonshot_server, read_timeout_s=0.2) as c:
        assert (await c.complete(chat(stream=True))).attempts == 2


def configured(**defaults: object):
    """The catalog with these [defaults] (as a user's tome.toml would set them)."""
    from dataclasses import replace

    from pipeline.config import load_catalog

    catalog = load_catalog()
    return replace(catalog, defaults=replace(catalog.defaults, **defaults))


async def test_configured_max_retries_bound_the_retry_loop(moonshot_server: MoonshotTestServer) -> None:
    moonshot_server.inject("503", times=2)
    async with client(moonshot_server, catalog=configured(max_retries=1)) as c:
        with pytest.raises(E.ServerError):
            await c.complete(chat())
    assert moonshot_server.stats().by_status == {503: 2}  # one attempt and one retry, as configured
    moonshot_server.inject("503", times=2)
    async with client(moonshot_server, catalog=configured(max_retries=2)) as c:
        assert (await c.complete(chat())).attempts == 3


async def test_configured_timeouts_reach_the_http_client(moonshot_server: MoonshotTestServer) -> None:
    moonshot_server.inject("stall", seconds=0.6)
    async with client(moonshot_server, catalog=configured(read_timeout_s=0.2, max_retries=0)) as c:
        with pytest.raises(E.LLMTimeoutError):
            await c.complete(chat())
    async with client(moonshot_server, catalog=configured(connect_timeout_s=3.5)) as c:
        assert (await c.complete(chat())).content
    for bad in ({"connect_timeout_s": 0.0}, {"read_timeout_s": 301.0}, {"max_retries": -1}):
        with pytest.raises(E.ConfigError):
            client(moonshot_server, catalog=configured(**bad))


async def test_connection_refused_is_a_connection_error() -> None:
    async with MoonshotClient(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="sk-x", retry=NO_RETRY) as c:
        with pytest.raises(E.LLMConnectionError, match="127.0.0.1"):
            await c.complete(chat())


# --- rate budget hook ------------------------------------------------------------------------------------------


@dataclass
class RecordingBudget:
    """A RateBudget that admits everything and remembers what it was told."""

    admitted: list[int] = field(default_factory=list)
    recorded: list[Usage] = field(default_factory=list)
    limited: list[tuple[str | None, float | None]] = field(default_factory=list)
    stated: list[int | None] = field(default_factory=list)
    tiers: list[str | None] = field(default_factory=list)

    @asynccontextmanager
    async def admit(self, tokens: int) -> AsyncIterator[RecordingBudget]:
        self.admitted.append(tokens)
        yield self

    def record(self, usage: Usage, *, charged_tokens: int | None = None) -> None:
        self.recorded.append(usage)

    def on_rate_limited(
        self, *, limit_kind: str | None, retry_after: float | None, limit_value: int | None = None
    ) -> None:
        self.limited.append((limit_kind, retry_after))
        self.stated.append(limit_value)

    def estimated_wait(self, tokens: int, calls: int) -> float:
        return 0.0

    def observe_tier(self, gid: str | None) -> None:
        self.tiers.append(gid)


async def test_every_attempt_goes_through_the_budget(moonshot_server: MoonshotTestServer) -> None:
    budget = RecordingBudget()
    moonshot_server.inject("rate_limit_concurrency", wait=1)
    moonshot_server.inject("overload")
    moonshot_server.inject("500")
    async with client(moonshot_server, budget=budget) as c:
        c1 = await c.complete(chat(max_tokens=200))
    assert budget.admitted == [260] * 4  # estimated_prompt_tokens + max_tokens, for every attempt
    assert budget.recorded == [Usage(), Usage(), c1.usage]  # the 429s were refused: their admission given back
    assert budget.limited == [("concurrency", 1.0), ("overloaded", None)]
    assert budget.stated[0] is not None  # "reached max concurrency: N" names the account's real limit


async def test_quota_from_the_budget_itself_is_not_retried(moonshot_server: MoonshotTestServer) -> None:
    class Exhausted(RecordingBudget):
        @asynccontextmanager
        async def admit(self, tokens: int) -> AsyncIterator[RecordingBudget]:
            raise E.QuotaExhaustedError("TPD used up", quota="tpd")
            yield self  # pragma: no cover

    async with client(moonshot_server, budget=Exhausted()) as c:
        with pytest.raises(E.QuotaExhaustedError):
            await c.complete(chat())
    assert moonshot_server.stats().requests == 0


async def test_pool_is_sized_to_the_concurrency(moonshot_server_factory) -> None:
    srv = moonshot_server_factory(latency=Latency(0.05, 0.0))
    async with client(srv, concurrency=3) as c:
        await asyncio.gather(*(c.complete(chat()) for _ in range(9)))
    assert srv.stats().max_concurrency == 3


# --- other endpoints ---------------------------------------------------------------------------------------


async def test_list_models(moonshot_client: MoonshotClient) -> None:
    models = {m.id: m for m in await moonshot_client.list_models()}
    assert models["moonshot-v1-8k"].context_length == 8192
    assert models["moonshot-v1-128k"].owned_by == "moonshot"


async def test_estimate_tokens_is_three_below_the_chat_count(moonshot_client: MoonshotClient) -> None:
    request = chat()
    estimate = await moonshot_client.estimate_tokens(request.messages)
    completion = await moonshot_client.complete(request)
    assert completion.usage.prompt_tokens == estimate + 3


@pytest.mark.parametrize(
    "envelope",
    [{"data": {"total_tokens": 42}}, {"code": 0, "data": {"total_tokens": 42}, "scode": "0x0", "status": True}],
)
async def test_estimate_tokens_reads_both_envelopes(envelope: dict) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/tokenizers/estimate-token-count"
        assert json.loads(request.content)["model"] == "moonshot-v1-32k"
        return httpx.Response(200, json=envelope)

    async with MoonshotClient(api_key="sk-x", model="moonshot-v1-32k", transport=httpx.MockTransport(handler)) as c:
        assert await c.estimate_tokens([Message("user", "hi")]) == 42


async def test_extract_file_round_trip(
    moonshot_server: MoonshotTestServer, moonshot_client: MoonshotClient, tmp_path: Path
) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("第一章 灯塔。\nThe keeper's log.", encoding="utf-8")
    assert await moonshot_client.extract_file(doc) == "第一章 灯塔。\nThe keeper's log."
    assert moonshot_server.gateway.files == {}  # deleted after reading
    assert moonshot_server.stats().endpoints == {"files": 1, "file_content": 1, "files_delete": 1}


async def test_extract_pdf_from_the_corpus(moonshot_client: MoonshotClient, corpus: Path) -> None:
    text = await moonshot_client.extract_file(corpus / "pdfs" / "cjk_zh_elegantbook_manual_15p.pdf")
    assert len(text) > 1000


async def test_extract_file_errors(moonshot_client: MoonshotClient, tmp_path: Path) -> None:
    with pytest.raises(E.DocumentNotFoundError):
        await moonshot_client.extract_file(tmp_path / "missing.pdf")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(E.CorruptDocumentError, match="could not extract"):
        await moonshot_client.extract_file(junk)


# --- configuration ------------------------------------------------------------------------------------------


def test_missing_key_is_a_config_error() -> None:
    with pytest.raises(E.ConfigError, match="Set MOONSHOT_API_KEY"):
        MoonshotClient()
    with pytest.raises(E.ConfigError, match="Set OPENAI_API_KEY"):
        client_for("openai")


async def test_key_from_the_environment_and_provider_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-from-env")
    async with client_for("moonshot-ai") as ai, client_for("moonshot") as cn, client_for("deepseek", api_key="k") as ds:
        assert isinstance(ai, MoonshotClient) and ai.base_url == "https://api.moonshot.ai/v1"
        assert cn.base_url == "https://api.moonshot.cn/v1"
        assert type(ds) is OpenAICompatibleClient and ds.name == "deepseek"


@pytest.mark.parametrize("seconds", [0, -1, 301])
def test_read_timeout_range(seconds: float) -> None:
    with pytest.raises(E.ConfigError, match="read timeout"):
        MoonshotClient(api_key="sk-x", read_timeout_s=seconds)


async def test_injected_http_client_is_used_and_not_closed(moonshot_server: MoonshotTestServer) -> None:
    async with httpx.AsyncClient() as http:
        async with MoonshotClient(base_url=moonshot_server.base_url, api_key=moonshot_server.api_key, http_client=http) as c:
            await c.complete(chat())
        assert not http.is_closed


# --- logging and secrecy ------------------------------------------------------------------------------------


async def test_one_info_line_per_call(moonshot_client: MoonshotClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tome.llm")
    c = await moonshot_client.complete(chat())
    lines = [r.getMessage() for r in caplog.records if r.name == "tome.llm" and r.levelno == logging.INFO]
    assert len(lines) == 1
    assert "moonshot-v1-8k" in lines[0] and f"prompt={c.usage.prompt_tokens}" in lines[0]
    assert "latency=" in lines[0] and str(c.request_id) in lines[0]


async def test_key_never_appears_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture, moonshot_server_factory) -> None:
    key = "sk-tome-secret-7f3a9c1e5b"
    srv = moonshot_server_factory(keys=(key,))
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with MoonshotClient(base_url=srv.base_url, api_key=key, sleep=record_sleep([])) as c:
        texts.append(repr(c))
        texts.append(str(vars(c)))
        await c.complete(chat(stream=True))
        srv.inject("overload")
        srv.inject("drop_stream")
        await c.complete(chat(stream=True))
        srv.inject_response(401, {"error": {"message": f"Incorrect API key provided: {key}", "type": "x"}})
        srv.inject_response(500, f"<html>{key}</html>", content_type="text/html", times=7)
        for _ in range(2):
            with pytest.raises(E.LLMError) as info:
                await c.complete(chat())
            texts += [str(info.value), repr(info.value), str(info.value.__cause__)]
    async with MoonshotClient(base_url=srv.base_url, api_key=key[:-1], retry=NO_RETRY) as wrong:
        with pytest.raises(E.AuthenticationError) as info:
            await wrong.complete(chat())
        texts.append(str(info.value))
    texts.append(caplog.text)
    assert "tome.llm" in caplog.text  # the logs were really captured
    assert all(key not in t for t in texts)
    assert any("sk-***" in t for t in texts)  # the echoed key was redacted, not dropped silently


async def test_msh_gid_tier_lower_than_configured_is_warned_once(
    moonshot_server_factory, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline.budget import InProcessBudget
    from pipeline.config import load_catalog

    srv = moonshot_server_factory(gid_tier=0)
    budget = InProcessBudget(load_catalog().tier("tier1"), tier="tier1")
    caplog.set_level(logging.WARNING, logger="tome.budget")
    async with client(srv, budget=budget) as c:
        await c.complete(chat())
        await c.complete(chat())
    warnings = [r for r in caplog.records if r.name == "tome.budget" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "tier0" in warnings[0].getMessage()
