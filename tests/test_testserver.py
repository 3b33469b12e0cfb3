"""The Moonshot-compatible test server behaves like the gateway: auth, bodies, limits, SSE, latency, faults."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline.config import RateLimits
from pipeline.lengths import measure
from pipeline.testing import FAULT_KINDS, TEST_API_KEY, Latency, MoonshotTestServer, ServerTokenizer
from pipeline.testing.summariser import summarise
from pipeline.tokens import TiktokenCounter
from tests.conftest import REPO, free_port
from tests.test_llm_errors import load_fixture

ENGLISH = (
    "The keeper climbed the tower at dusk. The lamp needed oil and a new wick. He trimmed it with care.\n\n"
    "A ship appeared on the horizon ⟦SHIP-7⟧. It flew no flag. The keeper watched it for an hour.\n\n"
    "At midnight the wind rose. Rain lashed the glass. The light never failed that night."
)
CHINESE = "守灯人黄昏时登上塔顶。灯需要添油和换芯。他仔细地修剪灯芯。\n\n远方出现一艘船⟦ZH-1⟧。船上没有旗帜。守灯人看了一个小时。"


@pytest.fixture
def http(moonshot_server: MoonshotTestServer) -> Iterator[httpx.Client]:
    """A plain HTTP client authenticated against the shared server."""
    with httpx.Client(
        base_url=moonshot_server.base_url, headers={"Authorization": f"Bearer {moonshot_server.api_key}"}
    ) as client:
        yield client


def body(text: str = ENGLISH, **kw: object) -> dict[str, object]:
    return {"model": "moonshot-v1-8k", "messages": [{"role": "user", "content": text}], **kw}


def error(resp: httpx.Response) -> tuple[int, str, str]:
    err = resp.json()["error"]
    assert set(resp.json()) == {"error"} and set(err) == {"message", "type"}  # no code/param, like Moonshot
    return resp.status_code, err["type"], err["message"]


# --- auth, models, validation -----------------------------------------------------------------------------


def test_auth_errors_use_the_real_bodies(moonshot_server: MoonshotTestServer) -> None:
    url = f"{moonshot_server.base_url}/chat/completions"
    assert error(httpx.post(url, json=body())) == (401, "invalid_authentication_error", "Invalid Authentication")
    wrong = httpx.post(url, json=body(), headers={"Authorization": "Bearer sk-nope"})
    assert error(wrong) == (401, "incorrect_api_key_error", "Incorrect API key provided")
    assert error(httpx.get(f"{moonshot_server.base_url}/models"))[0] == 401


def test_unknown_model_is_404(http: httpx.Client) -> None:
    resp = http.post("/chat/completions", json={**body(), "model": "moonshot-v1-9k"})
    assert error(resp) == (404, "resource_not_found_error", "Not found the model moonshot-v1-9k or Permission denied")


def test_models_list_2026_form(http: httpx.Client) -> None:
    data = http.get("/models").json()
    assert data["object"] == "list"
    entry = next(m for m in data["data"] if m["id"] == "moonshot-v1-32k")
    assert entry == {**entry, "object": "model", "owned_by": "moonshot", "context_length": 32768}


def test_empty_message_is_400(http: httpx.Client) -> None:
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]
    resp = http.post("/chat/completions", json={"model": "moonshot-v1-8k", "messages": messages})
    assert error(resp) == (
        400,
        "invalid_request_error",
        "Invalid request: the message at position 1 with role 'assistant' must not be empty",
    )


def test_temperature_over_one_is_400(http: httpx.Client) -> None:
    assert http.post("/chat/completions", json=body(temperature=1.5)).status_code == 400


def test_context_checks_count_prompt_plus_max_tokens(moonshot_server: MoonshotTestServer, http: httpx.Client) -> None:
    prompt = moonshot_server.tokenizer.prompt_tokens(body()["messages"])  # type: ignore[arg-type]
    resp = http.post("/chat/completions", json=body(max_tokens=8192 - prompt + 1))
    assert error(resp) == (
        400,
        "invalid_request_error",
        f"Invalid request: Your request exceeded model token limit: 8192 (requested: {8192 + 1})",
    )
    assert http.post("/chat/completions", json=body(max_tokens=8192 - prompt)).status_code == 200
    huge = "word " * 30000
    assert error(http.post("/chat/completions", json=body(huge, max_tokens=10)))[2] == "Input token length too long"


def test_moonshot_auto_picks_the_smallest_fitting_model(http: httpx.Client) -> None:
    auto = {**body(max_tokens=10), "model": "moonshot-v1-auto"}
    assert http.post("/chat/completions", json=auto).json()["model"] == "moonshot-v1-8k"
    assert http.post("/chat/completions", json={**auto, "max_tokens": 20000}).json()["model"] == "moonshot-v1-32k"


def test_headers(moonshot_server_factory) -> None:
    srv = moonshot_server_factory(gid_tier=3, limits=RateLimits(concurrency=0, rpm=1))
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    ok = httpx.post(f"{srv.base_url}/chat/completions", json=body(), headers=headers)
    assert uuid.UUID(ok.headers["Msh-Request-Id"]) and ok.headers["Msh-Gid"] == "enterprise-tier-3"
    limited = httpx.post(f"{srv.base_url}/chat/completions", json=body(), headers=headers)
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers and not any(h.startswith("x-ratelimit") for h in limited.headers)


# --- answers ----------------------------------------------------------------------------------------------


def test_json_answer_and_usage(moonshot_server: MoonshotTestServer, http: httpx.Client) -> None:
    data = http.post("/chat/completions", json=body(max_tokens=300)).json()
    assert data["object"] == "chat.completion" and data["id"].startswith("chatcmpl-")
    [choice] = data["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].startswith("⟦SHIP-7⟧ The keeper climbed the tower at dusk.")
    prompt = moonshot_server.tokenizer.prompt_tokens(body()["messages"])  # type: ignore[arg-type]
    completion = moonshot_server.tokenizer.count(choice["message"]["content"])
    assert data["usage"] == {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(resp: httpx.Response) -> list[str]:
    lines = resp.text.split("\n\n")
    assert lines[-1] == "" and all(part.startswith("data: ") for part in lines[:-1])
    return [part[len("data: ") :] for part in lines[:-1]]


def test_sse_usage_inside_the_last_choice_then_done(http: httpx.Client) -> None:
    resp = http.post("/chat/completions", json=body(stream=True))
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = _sse(resp)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop" and last["delta"] == {} and "usage" not in chunks[-1]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == http.post("/chat/completions", json=body()).json()["choices"][0]["message"]["content"]
    assert last["usage"]["completion_tokens"] > 0


def test_sse_include_usage_adds_a_final_chunk(http: httpx.Client) -> None:
    events = _sse(http.post("/chat/completions", json=body(stream=True, stream_options={"include_usage": True})))
    final = json.loads(events[-2])
    assert final["choices"] == [] and final["usage"] == json.loads(events[-3])["choices"][0]["usage"]


def test_estimate_endpoint_real_envelope(moonshot_server: MoonshotTestServer, http: httpx.Client) -> None:
    data = http.post("/tokenizers/estimate-token-count", json=body()).json()
    prompt = moonshot_server.tokenizer.prompt_tokens(body()["messages"])  # type: ignore[arg-type]
    assert data == {"code": 0, "data": {"total_tokens": prompt - 3}, "scode": "0x0", "status": True}


def test_files_upload_content_delete(http: httpx.Client) -> None:
    up = http.post("/files", files={"file": ("a.txt", "灯塔 lighthouse".encode(), "text/plain")}, data={"purpose": "file-extract"})
    file_id = up.json()["id"]
    assert up.json()["purpose"] == "file-extract" and up.json()["filename"] == "a.txt"
    content = json.loads(http.get(f"/files/{file_id}/content").text)
    assert content == {"content": "灯塔 lighthouse", "file_type": "text/plain", "filename": "a.txt", "title": "", "type": "file"}
    assert http.delete(f"/files/{file_id}").json()["deleted"] is True
    assert http.get(f"/files/{file_id}/content").status_code == 404
    bad = http.post("/files", files={"file": ("x.bin", bytes(range(256)), "application/octet-stream")}, data={"purpose": "file-extract"})
    assert error(bad)[0:2] == (500, "server_error") and error(bad)[2].startswith("Failed to extract file:")


# --- the summariser -----------------------------------------------------------------------------------------


def _summary(text: str, max_tokens: int = 1000, scale: float = 1.0) -> tuple[str, str]:
    s = summarise([{"role": "user", "content": text}], max_tokens=max_tokens, tokenizer=ServerTokenizer(scale))
    return s.text, s.finish_reason


def test_summary_keeps_markers_first_and_skips_context() -> None:
    text, finish = _summary(f"<context>Earlier: ⟦OLD-1⟧ happened.</context>\n<text>{ENGLISH}</text>\nWrite at most 40 words.")
    assert text.startswith("⟦SHIP-7⟧ ") and "⟦OLD-1⟧" not in text and "Earlier" not in text
    assert finish == "stop" and measure(text, "words") <= 40  # words as --length counts them (" ." is none)
    assert "at most" not in text  # instructions are not summarised


@pytest.mark.parametrize(("words", "limit"), [(12, 12), (25, 25), (1000, None)])
def test_summary_length_follows_the_instruction(words: int, limit: int | None) -> None:
    text, _ = _summary(f"{ENGLISH}\nSummarise in at most {words} words.")
    if limit is not None:
        assert limit - 3 <= measure(text, "words") <= limit
    else:  # longer than the input allows: every sentence, no more
        assert text.count(".") == ENGLISH.count(".")


def test_summary_token_instruction_and_default_share() -> None:
    tok = ServerTokenizer()
    text, _ = _summary(f"{ENGLISH}\nUse at most 20 tokens.")
    assert 14 <= tok.count(text) <= 20
    long_text = "\n\n".join(ENGLISH for _ in range(10))
    default, _ = _summary(long_text)
    assert 0.12 * tok.count(long_text) <= tok.count(default) <= 0.25 * tok.count(long_text)


def test_chinese_in_chinese_out_with_char_limit() -> None:
    text, _ = _summary(CHINESE + "\n请用不超过30字概括。")
    assert text.startswith("⟦ZH-1⟧ 守灯人黄昏时登上塔顶。") and len(re.findall(r"[^\W_]", text)) <= 30
    assert "概括" not in text and not re.search("[A-Za-z]{2,}", text.replace("⟦ZH-1⟧", ""))
    text, _ = _summary(CHINESE + "\n30字以内")
    assert text.startswith("⟦ZH-1⟧ 守灯人") and len(re.findall(r"[^\W_]", text)) <= 30


def test_max_tokens_cuts_with_finish_length() -> None:
    tok = ServerTokenizer()
    text, finish = _summary(ENGLISH + "\nat most 200 words", max_tokens=15)
    assert finish == "length" and tok.count(text) <= 15 and text.startswith("⟦SHIP-7⟧")


def test_summary_is_deterministic() -> None:
    assert _summary(ENGLISH) == _summary(ENGLISH)


# --- the tokenizer --------------------------------------------------------------------------------------------


def test_tokenizer_is_close_to_cl100k_for_english_and_scales(corpus: Path) -> None:
    text = (corpus / "books" / "en_alice_in_wonderland_pg11.txt").read_text(encoding="utf-8")[10000:60000]
    local = TiktokenCounter().count(text)
    assert 0.9 <= ServerTokenizer().count(text) / local <= 1.1
    assert ServerTokenizer(1.15).count(text) == pytest.approx(1.15 * ServerTokenizer().count(text), rel=0.001)


def test_tokenizer_rule() -> None:
    tok = ServerTokenizer()
    assert tok.count("") == 0
    assert tok.count("灯塔看守人") == 4  # 5 CJK chars / 1.5
    assert tok.count("abcdefghijklm   ") == 4  # 13 non-space chars / 3.25; spaces are free
    assert tok.truncate("one two three four five six", 3) == "one two"


# --- limits -----------------------------------------------------------------------------------------------


def _post(srv: MoonshotTestServer, **kw: object) -> httpx.Response:
    return httpx.post(f"{srv.base_url}/chat/completions", json=body(**kw), headers={"Authorization": f"Bearer {srv.api_key}"})


def test_rpm_window_slides_with_the_clock(moonshot_server: MoonshotTestServer) -> None:
    moonshot_server.configure(limits=RateLimits(concurrency=0, rpm=2))
    assert [_post(moonshot_server).status_code for _ in range(2)] == [200, 200]
    moonshot_server.advance(30)
    status, etype, message = error(_post(moonshot_server))
    assert (status, etype) == (429, "rate_limit_reached_error")
    assert re.fullmatch(r"Your account \S+<ak-\w+> request reached max request: 2, please try again after 30 seconds", message)
    moonshot_server.advance(31)
    assert _post(moonshot_server).status_code == 200
    assert moonshot_server.stats().rate_limited == {"rpm": 1}


def test_tpm_counts_prompt_plus_max_tokens_default_1024(moonshot_server: MoonshotTestServer) -> None:
    prompt = moonshot_server.tokenizer.prompt_tokens(body()["messages"])  # type: ignore[arg-type]
    moonshot_server.configure(limits=RateLimits(concurrency=0, tpm=2 * (prompt + 1024)))
    assert _post(moonshot_server).status_code == 200  # max_tokens omitted: 1024 counted
    assert _post(moonshot_server).status_code == 200
    status, _t, message = error(_post(moonshot_server, max_tokens=1))
    assert status == 429 and message.endswith(f"request reached TPM rate limit, current:{3 * prompt + 2049}, limit:{2 * (prompt + 1024)}")
    assert moonshot_server.stats().tokens_admitted == 2 * (prompt + 1024)
    moonshot_server.advance(60)
    assert _post(moonshot_server, max_tokens=1).status_code == 200


def test_tpd_resets_at_utc_midnight(moonshot_server: MoonshotTestServer) -> None:
    moonshot_server.configure(limits=RateLimits(concurrency=0, tpd=1500))
    assert _post(moonshot_server, max_tokens=1000).status_code == 200
    status, _t, message = error(_post(moonshot_server, max_tokens=1000))
    assert status == 429 and "request reached TPD rate limit,current:" in message and message.endswith("limit:1500")
    moonshot_server.advance_to_next_day()
    assert _post(moonshot_server, max_tokens=1000).status_code == 200
    assert _post(moonshot_server, max_tokens=1000).status_code == 429
    moonshot_server.reset_day()
    assert _post(moonshot_server, max_tokens=1000).status_code == 200


def test_concurrency_limit_with_latency(moonshot_server_factory) -> None:
    srv = moonshot_server_factory(limits=RateLimits(concurrency=2), latency=Latency(0.3, 0.0))
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = sorted(r.status_code for r in pool.map(lambda _i: _post(srv), range(4)))
    assert statuses == [200, 200, 429, 429]
    stats = srv.stats()
    assert stats.max_concurrency == 2 and stats.rate_limited == {"concurrency": 2} and stats.in_flight == 0
    rejected = [r for r in stats.log if r.status == 429]
    assert all(r.limit_kind == "concurrency" for r in rejected)


def test_latency_model_json_and_sse(moonshot_server_factory) -> None:
    srv = moonshot_server_factory(latency=Latency(0.15, 0.002))
    started = time.monotonic()
    resp = _post(srv, max_tokens=300)
    elapsed = time.monotonic() - started
    completion = resp.json()["usage"]["completion_tokens"]
    assert 0.15 + 0.002 * completion <= elapsed < 0.15 + 0.002 * completion + 0.5
    headers = {"Authorization": f"Bearer {srv.api_key}"}
    started = time.monotonic()
    times = []
    with httpx.stream("POST", f"{srv.base_url}/chat/completions", json=body(stream=True), headers=headers) as r:
        for line in r.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                times.append(time.monotonic() - started)
    assert len(times) >= 5
    assert times[0] >= 0.15 and times[-1] >= 0.15 + 0.002 * (completion - 5)


# --- faults and stats -------------------------------------------------------------------------------------

FAULT_FIXTURES = {
    "overload": "429_engine_overloaded",
    "rate_limit_concurrency": "429_max_concurrency",
    "rate_limit_rpm": "429_max_rpm",
    "rate_limit_tpm": "429_tpm",
    "rate_limit_tpd": "429_tpd",
    "quota": "429_token_quota",
    "suspended": "429_suspended",
    "inactive": "403_not_active",
    "auth": "401_incorrect_api_key",
    "content_filter": "400_content_filter",
    "context_length": "400_token_limit",
    "input_too_long": "400_input_too_long",
    "500": "500_unexpected_output",
    "504_html": "504_gateway_timeout_html",
}


def _shape(text: str) -> str:
    """A message with account ids and numbers blanked, to compare the server's wording with a recording."""
    return re.sub(r"-?\d+(\.\d+)?", "N", re.sub(r"\S+<[^>]+>", "ACCOUNT", text))


@pytest.mark.parametrize(("fault", "fixture"), sorted(FAULT_FIXTURES.items()))
def test_fault_answers_match_the_recorded_bodies(moonshot_server: MoonshotTestServer, http: httpx.Client, fault: str, fixture: str) -> None:
    status, _ctype, recorded = load_fixture(fixture)
    moonshot_server.inject(fault)
    resp = http.post("/chat/completions", json=body())
    assert resp.status_code == status
    if recorded.startswith("<"):
        assert resp.text == recorded and resp.headers["content-type"].startswith("text/html")
        return
    want, got = json.loads(recorded)["error"], resp.json()["error"]
    assert got["type"] == want["type"] and _shape(got["message"]) == _shape(want["message"])


def test_faults_are_consumed_in_order_and_unknown_ones_refused(moonshot_server: MoonshotTestServer, http: httpx.Client) -> None:
    moonshot_server.inject("overload", times=2)
    moonshot_server.inject("500")
    assert [http.post("/chat/completions", json=body()).status_code for _ in range(4)] == [429, 429, 500, 200]
    with pytest.raises(ValueError, match="unknown fault"):
        moonshot_server.inject("meteor")
    assert {"drop_stream", "stall", "overload", "504_html"} <= FAULT_KINDS


def test_drop_stream_ends_without_done(moonshot_server: MoonshotTestServer) -> None:
    moonshot_server.inject("drop_stream")
    headers = {"Authorization": f"Bearer {moonshot_server.api_key}"}
    lines: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):  # noqa: SIM117 - the error comes from reading the body
        with httpx.stream("POST", f"{moonshot_server.base_url}/chat/completions", json=body(stream=True), headers=headers) as r:
            lines.extend(r.iter_lines())
    assert lines and "[DONE]" not in "".join(lines)
    assert moonshot_server.stats().in_flight == 0


def test_stats_counters_and_endpoint(moonshot_server: MoonshotTestServer, http: httpx.Client) -> None:
    http.post("/chat/completions", json=body(max_tokens=50))
    moonshot_server.inject("overload")
    http.post("/chat/completions", json=body(max_tokens=50))
    http.post("/chat/completions", json={**body(), "model": "nope"})
    stats = moonshot_server.stats()
    assert stats.requests == 3 and stats.by_status == {200: 1, 429: 1, 404: 1}
    assert stats.rate_limited == {"overload": 1} and stats.max_concurrency == 1
    ok = stats.log[0]
    assert ok.admission_tokens == ok.prompt_tokens + 50 and ok.completion_tokens == stats.completion_tokens > 0
    assert ok.messages_hash == stats.log[1].messages_hash and len(ok.messages_hash or "") == 16
    remote = httpx.get(moonshot_server.base_url.removesuffix("/v1") + "/_stats").json()
    assert remote["requests"] == 3 and remote["by_status"] == {"200": 1, "429": 1, "404": 1}
    assert remote["window"]["rpm"] == 1


def test_reset_restores_the_initial_state(moonshot_server: MoonshotTestServer, http: httpx.Client) -> None:
    moonshot_server.configure(limits=RateLimits(concurrency=0, rpm=1), token_scale=2.0)
    moonshot_server.inject("500")
    moonshot_server.reset()
    assert [http.post("/chat/completions", json=body()).status_code for _ in range(3)] == [200, 200, 200]
    assert moonshot_server.tokenizer.token_scale == 1.0


def test_command_line_server() -> None:
    port = free_port()
    command = [sys.executable, "-W", "error", "-m", "pipeline.testing.server", "--port", str(port), "--rpm", "1"]
    with subprocess.Popen([*command, "--ttft", "0", "--per-token", "0"], cwd=REPO, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            assert f"http://127.0.0.1:{port}/v1" in banner
            headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            assert httpx.post(url, json=body(), headers=headers).status_code == 200
            assert httpx.post(url, json=body(), headers=headers).status_code == 429
        finally:
            proc.terminate()
            proc.wait(timeout=10)
