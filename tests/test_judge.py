"""LLM-judged coherence (pipeline.evaluation.judge): parsing, prompts, and the real HTTP path with the cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.errors import ConfigError, JudgeFormatError
from pipeline.evaluation.judge import (
    BATCH_SENTENCES,
    JUDGE_MARKER,
    Coherence,
    judge_coherence,
    judge_messages,
    parse_judgement,
)
from pipeline.extractive import ExtractiveBackend
from pipeline.llm.client import MoonshotClient
from pipeline.store import Store
from pipeline.testing import MoonshotTestServer

MODEL = "moonshot-v1-8k"
DUPLICATED = (
    "The keeper climbed the tower at dusk. A ship appeared on the horizon without a flag. "
    "The keeper climbed the tall tower at dusk. At midnight the wind rose and rain lashed the glass."
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'tome.db'}")


async def judge(text: str, client: MoonshotClient, store: Store, language: str = "en") -> Coherence:
    return await judge_coherence(
        text, backend=client, store=store, provider=client.name, model=MODEL, language=language
    )


# --- parsing ----------------------------------------------------------------------------------------------


def test_parses_a_well_formed_answer() -> None:
    answer = "1: OK\n2: DUPLICATION: repeats sentence 1\n3: ENTITY_OMISSION: who is Mara?\n4: OK"
    assert parse_judgement(answer, 4) == [
        (None, ""),
        ("duplication", "repeats sentence 1"),
        ("entity_omission", "who is Mara?"),
        (None, ""),
    ]


def test_parses_messy_markdown_and_prose() -> None:
    answer = (
        "Here is my assessment:\n\n"
        "**1: OK**\n"
        "- 2. **Causal omission** - why did she leave?\n"
        "* Sentence 3: `DISCONTINUITY`: jumps to another city\n"
        "[4] Contradiction (says he died in sentence 1)\n"
        "5) Vague wording that hides the point\n"
        "6: No issues.\n"
        "Overall the summary is fairly coherent."
    )
    assert parse_judgement(answer, 6) == [
        (None, ""),
        ("causal_omission", "why did she leave?"),
        ("discontinuity", "jumps to another city"),
        ("inconsistency", "says he died in sentence 1)"),
        ("other", "Vague wording that hides the point"),
        (None, ""),
    ]


def test_missing_lines_are_unanswered_and_numbers_out_of_range_ignored() -> None:
    answer = "1: OK\n3: SALIENCE: lists every dish at the dinner\n9: DUPLICATION: x\n3: OK"
    assert parse_judgement(answer, 4) == [
        (None, ""),
        None,
        ("salience", "lists every dish at the dinner"),
        None,
    ]


def test_batch_numbers_are_read_from_first() -> None:
    answer = "41: OK\n42: LANGUAGE: garbled grammar\n1: DUPLICATION: not in this batch"
    assert parse_judgement(answer, 2, first=41) == [(None, ""), ("language", "garbled grammar")]


def test_parses_chinese_answers() -> None:
    answer = "1：OK\n第2句：重复：与第1句相同\n3、无问题\n4: 因果缺失：没有说明他为什么离开"
    assert parse_judgement(answer, 4) == [
        (None, ""),
        ("duplication", "与第1句相同"),
        (None, ""),
        ("causal_omission", "没有说明他为什么离开"),
    ]


def test_unnumbered_answer_is_read_by_position_only_when_it_fits() -> None:
    assert parse_judgement("OK\nDUPLICATION: again\nOK", 3) == [
        (None, ""),
        ("duplication", "again"),
        (None, ""),
    ]
    with pytest.raises(JudgeFormatError):
        parse_judgement("OK\nDUPLICATION: again", 3)


@pytest.mark.parametrize(
    "answer", ["", "I'm sorry, I cannot help with that.", "The summary reads well overall."]
)
def test_unreadable_answer_raises(answer: str) -> None:
    with pytest.raises(JudgeFormatError, match="N: OK"):
        parse_judgement(answer, 3)


# --- prompts ----------------------------------------------------------------------------------------------


def test_english_prompt_numbers_every_sentence_and_asks_for_the_batch() -> None:
    system, user = judge_messages(["He left.", "Rain\nfell."], language="en")
    assert system.role == "system" and system.content.startswith(JUDGE_MARKER)
    assert "DUPLICATION" in system.content and "ENTITY_OMISSION" in system.content
    assert "<summary>\n[1] He left.\n[2] Rain fell.\n</summary>" in user.content
    assert "Judge sentences 1-2." in user.content
    _system, batch = judge_messages(["A.", "B.", "C."], language="en", first=2, last=3)
    assert "[1] A.\n[2] B.\n[3] C." in batch.content and "Judge sentences 2-3." in batch.content


@pytest.mark.parametrize("language", ["zh", "zh-CN", "zh_Hans"])
def test_chinese_prompt_for_zh(language: str) -> None:
    system, user = judge_messages(["他走了。", "下雨了。"], language=language)
    assert system.content.startswith(JUDGE_MARKER) and "连贯性" in system.content
    assert "[1] 他走了。\n[2] 下雨了。" in user.content and "请评判第 1-2 句" in user.content
    assert "连贯性" not in judge_messages(["He left."], language="en")[0].content


# --- the real HTTP path, cache and budget -----------------------------------------------------------------


async def test_duplicated_sentence_lowers_the_score(
    moonshot_client: MoonshotClient, moonshot_server: MoonshotTestServer, store: Store
) -> None:
    result = await judge(DUPLICATED, moonshot_client, store)
    assert (result.sentences, result.flagged, result.answered) == (4, 1, 4)
    assert result.score == pytest.approx(0.75)
    assert result.errors == {"duplication": 1}
    flagged = [j for j in result.judgements if j.error]
    assert [(j.index, j.reason) for j in flagged] == [(3, "repeats sentence 1")]
    assert flagged[0].sentence == "The keeper climbed the tall tower at dusk."
    assert result.calls == 1 and result.cached_calls == 0
    assert result.prompt_tokens > 0 and result.completion_tokens > 0
    assert moonshot_server.stats().requests == 1


async def test_rerun_is_served_from_the_cache(
    moonshot_client: MoonshotClient, moonshot_server: MoonshotTestServer, store: Store
) -> None:
    first = await judge(DUPLICATED, moonshot_client, store)
    requests = moonshot_server.stats().requests
    again = await judge(DUPLICATED, moonshot_client, store)
    assert moonshot_server.stats().requests == requests == 1
    assert (again.calls, again.cached_calls, again.prompt_tokens) == (0, 1, 0)
    assert again.judgements == first.judgements and again.score == first.score
    assert store.cache_stats().by_model == {MODEL: 1}


async def test_opening_pronoun_is_an_entity_omission(moonshot_client: MoonshotClient, store: Store) -> None:
    result = await judge("She opened the gate. The garden was overgrown.", moonshot_client, store)
    assert result.errors == {"entity_omission": 1} and result.judgements[0].error == "entity_omission"
    assert result.score == pytest.approx(0.5)


async def test_chinese_summary(moonshot_client: MoonshotClient, store: Store) -> None:
    text = "他黄昏时登上了灯塔。远方出现一艘没有旗帜的船。他黄昏时登上了灯塔顶。半夜起了大风。"
    result = await judge(text, moonshot_client, store, language="zh")
    assert result.sentences == 4
    assert [(j.index, j.error) for j in result.judgements if j.error] == [
        (1, "entity_omission"),
        (3, "duplication"),
    ]


async def test_long_summaries_are_judged_in_batches(
    moonshot_client: MoonshotClient, moonshot_server: MoonshotTestServer, store: Store
) -> None:
    sentences = [f"Alpha{i} beta{i} gamma{i} delta{i}." for i in range(1, 2 * BATCH_SENTENCES + 6)]
    sentences[BATCH_SENTENCES + 9] = sentences[9]  # sentence 50 repeats sentence 10, in the second batch
    result = await judge(" ".join(sentences), moonshot_client, store)
    assert result.sentences == len(sentences) == result.answered
    assert [(j.index, j.reason) for j in result.judgements if j.error] == [
        (BATCH_SENTENCES + 10, "repeats sentence 10")
    ]
    assert result.calls == moonshot_server.stats().requests == 3
    assert [j.index for j in result.judgements] == list(range(1, len(sentences) + 1))


def _canned(content: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-canned",
        "object": "chat.completion",
        "created": 1715000000,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59},
    }


async def test_unreadable_answer_is_asked_again_with_a_reminder(
    moonshot_client: MoonshotClient, moonshot_server: MoonshotTestServer, store: Store
) -> None:
    moonshot_server.inject_response(200, _canned("The summary is mostly fine, I think."))
    result = await judge(DUPLICATED, moonshot_client, store)
    assert result.calls == 2 and result.flagged == 1
    assert result.prompt_tokens > 50  # both calls' usage is counted
    again = await judge(DUPLICATED, moonshot_client, store)  # the unreadable answer is cached too
    assert (again.calls, again.cached_calls, again.flagged) == (0, 2, 1)
    assert moonshot_server.stats().requests == 2


async def test_twice_unreadable_raises(
    moonshot_client: MoonshotClient, moonshot_server: MoonshotTestServer, store: Store
) -> None:
    moonshot_server.inject_response(200, _canned("No comment."), times=2)
    with pytest.raises(JudgeFormatError, match=r"sentences 1-4.*another --judge model"):
        await judge(DUPLICATED, moonshot_client, store)


async def test_empty_summary_scores_nan_without_calls(
    moonshot_client: MoonshotClient, moonshot_server: MoonshotTestServer, store: Store
) -> None:
    result = await judge("  \n", moonshot_client, store)
    assert result.sentences == 0 and math.isnan(result.score)
    assert moonshot_server.stats().requests == 0


async def test_extractive_backend_cannot_judge(store: Store) -> None:
    with pytest.raises(ConfigError, match="--judge needs an LLM backend") as caught:
        await judge_coherence(
            DUPLICATED,
            backend=ExtractiveBackend(),
            store=store,
            provider="extractive",
            model=MODEL,
            language="en",
        )
    assert caught.value.exit_code == 2
    assert store.cache_stats().entries == 0
