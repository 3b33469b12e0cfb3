"""The test server's disobedient model, its off-calibration tokenizer, partial mode and prefix caching."""

from __future__ import annotations

import httpx
import pytest

from pipeline.testing import MoonshotTestServer, Obedience
from pipeline.testing.server import _parse_args
from pipeline.testing.summariser import _words
from tests.test_testserver import ENGLISH

PARAGRAPHS = "\n\n".join(
    f"Paragraph {i} opens with the keeper's note number {i}. It goes on about the weather at the light. "
    f"The third sentence of paragraph {i} tells of ships. A fourth adds the oil that was burnt."
    for i in range(40)
)


def chat(srv: MoonshotTestServer, messages: list[dict[str, object]], **kw: object) -> dict[str, object]:
    resp = httpx.post(
        f"{srv.base_url}/chat/completions",
        json={"model": "moonshot-v1-8k", "messages": messages, **kw},
        headers={"Authorization": f"Bearer {srv.api_key}"},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def ask(words: int, text: str = PARAGRAPHS) -> list[dict[str, object]]:
    return [
        {"role": "system", "content": "You summarise documents faithfully."},
        {"role": "user", "content": f"<text>\n{text}\n</text>\nWrite at most {words} words."},
    ]


def test_obedient_model_keeps_to_the_length(moonshot_server: MoonshotTestServer) -> None:
    answer = chat(moonshot_server, ask(60), max_tokens=2000)
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert _words(answer["choices"][0]["message"]["content"]) <= 60


def test_disobedient_model_writes_past_the_length_in_whole_sentences(moonshot_server: MoonshotTestServer) -> None:
    moonshot_server.configure(obedience=Obedience.disobedient())
    lengths = []
    for words in (40, 60, 80, 100):
        text = chat(moonshot_server, ask(words), max_tokens=4000)["choices"][0]["message"]["content"]
        assert text.rstrip().endswith(".")
        lengths.append(_words(text) / words)
    assert all(1.25 <= r <= 2.3 for r in lengths), lengths
    assert max(lengths) - min(lengths) > 0.05  # the overshoot differs from prompt to prompt


def test_disobedient_answer_is_cut_at_max_tokens_and_partial_mode_continues_it(
    moonshot_server: MoonshotTestServer,
) -> None:
    moonshot_server.configure(obedience=Obedience.disobedient())
    whole = chat(moonshot_server, ask(80), max_tokens=4000)["choices"][0]["message"]["content"]
    asked = moonshot_server.tokenizer.count(" ".join(whole.split()[:80]))
    cut = chat(moonshot_server, ask(80), max_tokens=asked)
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] <= asked
    head = cut["choices"][0]["message"]["content"]
    assert whole.startswith(head) and len(head) < len(whole)

    prefilled = [*ask(80), {"role": "assistant", "content": head, "partial": True}]
    more = chat(moonshot_server, prefilled, max_tokens=4000)
    rest = more["choices"][0]["message"]["content"]
    assert more["choices"][0]["finish_reason"] == "stop"
    assert head + rest == whole  # the prefix is not repeated; the two make the uncut answer
    assert more["usage"]["prompt_tokens"] > cut["usage"]["prompt_tokens"]  # the prefix is read as prompt


@pytest.mark.parametrize("scale", [0.85, 1.15])
def test_tokenizer_off_the_calibration_by_15_percent(
    moonshot_server: MoonshotTestServer, scale: float
) -> None:
    base = chat(moonshot_server, ask(60), max_tokens=2000)["usage"]["prompt_tokens"]
    moonshot_server.configure(token_scale=scale)
    scaled = chat(moonshot_server, ask(60), max_tokens=2000)["usage"]["prompt_tokens"]
    assert scaled / base == pytest.approx(scale, rel=0.01)


def test_prefix_cache_reports_leading_messages_seen_before(moonshot_server: MoonshotTestServer) -> None:
    first = chat(moonshot_server, ask(60, ENGLISH), max_tokens=500)["usage"]
    assert "cached_tokens" not in first  # off by default, like moonshot-v1
    moonshot_server.configure(prefix_cache=True)
    first = chat(moonshot_server, ask(60, ENGLISH), max_tokens=500)["usage"]
    again = chat(moonshot_server, ask(60, ENGLISH), max_tokens=500)["usage"]
    other = chat(moonshot_server, ask(50, ENGLISH), max_tokens=500)["usage"]
    assert first["cached_tokens"] == 0
    assert again["cached_tokens"] == again["prompt_tokens_details"]["cached_tokens"]
    system = moonshot_server.tokenizer.count("You summarise documents faithfully.")
    assert system < other["cached_tokens"] < other["prompt_tokens"]  # only the shared system message
    assert 0 < again["cached_tokens"] <= again["prompt_tokens"]
    assert moonshot_server.stats().cached_tokens == again["cached_tokens"] + other["cached_tokens"]


def test_server_command_takes_the_modes_from_options_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    args = _parse_args([])
    assert (args.disobedient, args.token_scale, args.prefix_cache) == (False, 1.0, False)
    args = _parse_args(["--disobedient", "--token-scale", "0.85", "--prefix-cache"])
    assert (args.disobedient, args.token_scale, args.prefix_cache) == (True, 0.85, True)
    monkeypatch.setenv("TOME_TEST_MODEL", "disobedient")
    monkeypatch.setenv("TOME_TEST_TOKEN_SCALE", "1.15")
    monkeypatch.setenv("TOME_TEST_PREFIX_CACHE", "1")
    args = _parse_args([])
    assert (args.disobedient, args.token_scale, args.prefix_cache) == (True, 1.15, True)
