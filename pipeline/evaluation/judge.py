"""LLM-judged coherence in the spirit of BooookScore (Chang et al. 2023): the share of summary sentences
that would not confuse a reader who has never seen the source.

The judge reads the summary alone, its sentences numbered, and answers one line per sentence: ``3: OK`` or
``3: DUPLICATION: repeats sentence 1``. Error types follow BooookScore (entity/event/causal omission,
discontinuity, salience, language, inconsistency, duplication); any other label counts as ``other``.
Long summaries are judged in batches of :data:`BATCH_SENTENCES`, every call showing the whole summary.
Calls go through the same backend (rate budget included) and the same cache as summaries, at temperature 0,
so a rerun makes no calls.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass

from pipeline.errors import ConfigError, JudgeFormatError
from pipeline.llm.types import ChatBackend, ChatRequest, Completion, Message
from pipeline.sentences import split_sentences
from pipeline.store import Store, cache_key
from pipeline.tokens import TiktokenCounter

JUDGE_PROMPT_VERSION = "judge-v1"
# Opens both system prompts; the test server (pipeline.testing.judge_answers) recognises judge requests by it.
JUDGE_MARKER = "[tome coherence judge]"
BATCH_SENTENCES = 40  # sentences asked about per call; every call still shows the whole summary
ERROR_TYPES = (
    "entity_omission",
    "event_omission",
    "causal_omission",
    "discontinuity",
    "salience",
    "language",
    "inconsistency",
    "duplication",
)
OTHER = "other"
_TEMPERATURE = 0.0
_ESTIMATE_MARGIN = 1.15  # local cl100k count -> admission estimate; the budget must not under-count
_MESSAGE_TOKENS = 4

_SYSTEM_EN = f"""{JUDGE_MARKER}
You check summaries for coherence. You read a summary WITHOUT its source, as a reader who has never seen the
original would, and decide for each sentence whether it would confuse that reader, and why.
Error types:
- ENTITY_OMISSION: a person, place or object appears without the introduction a reader needs to know who or what it is.
- EVENT_OMISSION: an event is referred to as if known, but the summary never describes it.
- CAUSAL_OMISSION: the reason or motivation for what happens is missing, so the sentence does not make sense.
- DISCONTINUITY: an abrupt jump in time, place, topic or viewpoint with no transition from the previous sentence.
- SALIENCE: the sentence dwells on details too minor to matter in a summary.
- LANGUAGE: grammar, wording or formatting makes the sentence hard to understand.
- INCONSISTENCY: the sentence contradicts another sentence of the summary.
- DUPLICATION: the sentence repeats what an earlier sentence already said.
Judge only what the summary says; do not use outside knowledge of the work. Answer in the exact format asked
for, with no preamble and no closing remarks."""

_SYSTEM_ZH = f"""{JUDGE_MARKER}
你负责检查摘要的连贯性。你在看不到原文的情况下阅读摘要，就像一位从未读过原作的读者那样，逐句判断这句话是否会让读者困惑，以及原因。
错误类型（回答时使用英文标签）：
- ENTITY_OMISSION（实体缺失）：人物、地点或事物出现时缺少读者理解其身份所需的介绍。
- EVENT_OMISSION（事件缺失）：提到某个事件时仿佛读者已经知道，但摘要从未交代过。
- CAUSAL_OMISSION（因果缺失）：缺少事情发生的原因或动机，句子因此难以理解。
- DISCONTINUITY（不连贯）：时间、地点、话题或视角突然跳转，与上一句之间没有过渡。
- SALIENCE（主次不当）：句子纠缠于对摘要无关紧要的细节。
- LANGUAGE（语言问题）：语法、措辞或格式使句子难以理解。
- INCONSISTENCY（前后矛盾）：句子与摘要中的其他句子相矛盾。
- DUPLICATION（重复）：句子重复了前文已经说过的内容。
只根据摘要本身判断，不要使用对原作的背景知识。严格按要求的格式回答，不要开场白，也不要总结。"""

_LABELS = ", ".join(t.upper() for t in ERROR_TYPES)
_ASK_EN = (
    "Judge sentences {first}-{last}. Write exactly one line per sentence, in order, and nothing else:\n"
    "N: OK\n"
    "N: LABEL: short reason\n"
    "where LABEL is one of " + _LABELS + ". Write OK when a reader would not be confused. Example:\n"
    "3: OK\n"
    "4: DUPLICATION: repeats sentence 1"
)
_ASK_ZH = (
    "请评判第 {first}-{last} 句。每句只写一行，按顺序，不要写其他内容：\n"
    "N: OK\n"
    "N: LABEL: 简短理由\n"
    "其中 LABEL 是以下之一：" + _LABELS + "。读者不会困惑时写 OK。示例：\n"
    "3: OK\n"
    "4: DUPLICATION: 重复了第1句"
)
_REMINDER_EN = (
    "Your answer could not be read. Answer again with ONLY lines of the form `N: OK` or `N: LABEL: reason`, "
    "one per sentence {first}-{last}, no other text."
)
_REMINDER_ZH = "无法读取你的回答。请重新回答，只写形如 `N: OK` 或 `N: LABEL: 理由` 的行，第 {first}-{last} 句每句一行，不要写其他内容。"

# One answer line: optional bullet, optional "Sentence"/"第", the number (maybe in brackets), a separator.
_LINE = re.compile(
    r"^\s*(?:[-*•>#]+\s*)?(?:sentence\s*|第\s*)?"
    r"(?:[\[(（](\d{1,5})[\])）]\s*句?\s*[:：.、\-–—]?|(\d{1,5})\s*句?\s*[:：.)、\-–—])\s*(.*)$",
    re.IGNORECASE,
)
_MARKUP = re.compile(r"\*\*|__|`")
_LABEL_END = re.compile(r"\s*(?:[:：(（,，;；.。]|\s[-–—]\s|\s[-–—]$|$)")
_OK = re.compile(
    r"^(?:ok(?:ay)?|none|no|no[ _]?errors?|no[ _]?issues?|no[ _]?problems?|no[ _]?confusion|fine"
    r"|无|没有|正常|通过|无问题|没有问题|无错误)\b",
    re.IGNORECASE,
)
_SYNONYMS = {
    "entity": "entity_omission",
    "event": "event_omission",
    "causal": "causal_omission",
    "cause": "causal_omission",
    "causality": "causal_omission",
    "discontinuous": "discontinuity",
    "discontinuity": "discontinuity",
    "abrupt_transition": "discontinuity",
    "irrelevant": "salience",
    "grammar": "language",
    "grammatical": "language",
    "contradiction": "inconsistency",
    "inconsistent": "inconsistency",
    "duplicate": "duplication",
    "repetition": "duplication",
    "redundancy": "duplication",
    "redundant": "duplication",
    "repeat": "duplication",
    "实体缺失": "entity_omission",
    "事件缺失": "event_omission",
    "因果缺失": "causal_omission",
    "不连贯": "discontinuity",
    "主次不当": "salience",
    "显著性": "salience",
    "语言问题": "language",
    "语言": "language",
    "前后矛盾": "inconsistency",
    "矛盾": "inconsistency",
    "不一致": "inconsistency",
    "重复": "duplication",
}


@dataclass(frozen=True)
class SentenceJudgement:
    """The judge's verdict on one sentence (``index`` from 1); ``error`` None = no confusion."""

    index: int
    sentence: str
    error: str | None
    reason: str
    answered: bool = True  # False: the judge gave no line for it (counted as not flagged)


@dataclass(frozen=True)
class Coherence:
    """BooookScore-style coherence of one summary, and what judging it took.

    ``calls``/``prompt_tokens``/``completion_tokens`` count calls actually sent; ``cached_calls`` those the
    cache answered (their tokens are not counted again, as in the engine's totals).
    """

    sentences: int
    flagged: int
    answered: int  # sentences the judge gave a line for
    errors: dict[str, int]  # flagged sentences per error type
    judgements: tuple[SentenceJudgement, ...]
    calls: int
    cached_calls: int
    prompt_tokens: int
    completion_tokens: int

    @property
    def score(self) -> float:
        """1 - flagged / sentences, in [0, 1]; NaN for a summary with no sentences (nothing to judge)."""
        return 1.0 - self.flagged / self.sentences if self.sentences else math.nan


def _is_chinese(language: str) -> bool:
    return language.strip().lower().startswith("zh")


def _flat(sentence: str) -> str:
    # One sentence per numbered line: inner line breaks would break the numbering.
    return re.sub(r"\s+", " ", sentence).strip()


def judge_messages(
    sentences: list[str], *, language: str, first: int = 1, last: int | None = None
) -> tuple[Message, ...]:
    """The judge prompt: every sentence numbered from 1, asking about sentences ``first``..``last`` (default all).

    English prompt, or Chinese when ``language`` is zh*.
    """
    last = len(sentences) if last is None else last
    zh = _is_chinese(language)
    numbered = "\n".join(f"[{i}] {_flat(s)}" for i, s in enumerate(sentences, start=1))
    intro = "摘要（句子已编号）：" if zh else "Summary (sentences numbered):"
    ask = (_ASK_ZH if zh else _ASK_EN).format(first=first, last=last)
    user = f"{intro}\n<summary>\n{numbered}\n</summary>\n\n{ask}"
    return (Message("system", _SYSTEM_ZH if zh else _SYSTEM_EN), Message("user", user))


def _reminder(language: str, first: int, last: int) -> Message:
    text = _REMINDER_ZH if _is_chinese(language) else _REMINDER_EN
    return Message("user", text.format(first=first, last=last))


def _label(text: str) -> tuple[str | None, str] | None:
    """(error type or None for OK, reason) of one answer's text after the number; None = not a verdict."""
    text = text.strip()
    if not text:
        return None
    if _OK.match(text):
        end = _LABEL_END.search(text)
        return None, text[end.end() :].strip() if end else ""
    end = _LABEL_END.search(text)
    head = text[: end.start()] if end else text
    reason = text[end.end() :].strip() if end else ""
    key = re.sub(r"[\s\-]+", "_", head.strip().lower()).strip("_")
    if key in ERROR_TYPES:
        return key, reason
    if key in _SYNONYMS:
        return _SYNONYMS[key], reason
    for part in re.split(r"[_/]", key):
        if part in _SYNONYMS:
            return _SYNONYMS[part], reason
    # A label written inside free text ("this is a DUPLICATION of sentence 1").
    flat = re.sub(r"[\s\-]+", "_", text.lower())
    for name in ERROR_TYPES:
        if name in flat:
            return name, text
    return OTHER, text


def parse_judgement(text: str, count: int, *, first: int = 1) -> list[tuple[str | None, str] | None]:
    """Per sentence ``first``..``first+count-1``: (error type or None, reason), or None when no line answered it.

    Tolerates markdown (bold, bullets, backticks), extra prose, Chinese labels and missing lines; a
    numbered answer's first line per sentence wins. Unnumbered answers are read by position only when
    they hold exactly ``count`` verdict lines.

    Raises:
        JudgeFormatError: no line of the answer could be read.
    """
    out: list[tuple[str | None, str] | None] = [None] * count
    unnumbered: list[tuple[str | None, str]] = []
    numbered = 0
    for raw in text.splitlines():
        line = _MARKUP.sub("", raw).strip()
        if not line:
            continue
        m = _LINE.match(line)
        if m:
            index = int(m.group(1) or m.group(2)) - first
            verdict = _label(m.group(3))
            if verdict is not None and 0 <= index < count and out[index] is None:
                out[index] = verdict
                numbered += 1
            continue
        verdict = _label(re.sub(r"^[-*•>]+\s*", "", line))
        if verdict is not None and verdict[0] != OTHER:
            unnumbered.append(verdict)
    if numbered == 0 and unnumbered and len(unnumbered) == count:
        return list(unnumbered)
    if numbered == 0:
        raise JudgeFormatError(
            "The judge model's answer gave no verdict in the form `N: OK` / `N: LABEL: reason`; "
            "try another --judge model."
        )
    return out


@dataclass(frozen=True)
class _Caller:
    """Sends judge calls through the cache (stored the moment they return), then the backend."""

    backend: ChatBackend
    store: Store
    provider: str
    model: str
    max_tokens: int
    counter: TiktokenCounter

    async def __call__(self, messages: tuple[Message, ...]) -> tuple[Completion, bool]:
        """(answer, whether the cache served it)."""
        params = {"max_tokens": self.max_tokens, "temperature": _TEMPERATURE}
        key = cache_key(
            provider=self.provider,
            model=self.model,
            prompt_version=JUDGE_PROMPT_VERSION,
            messages=messages,
            params=params,
        )
        hit = self.store.cache_get(key)
        if hit is not None:
            return hit.completion, True
        local = sum(self.counter.count(m.content) + _MESSAGE_TOKENS for m in messages)
        request = ChatRequest(
            model=self.model,
            messages=messages,
            max_tokens=self.max_tokens,
            temperature=_TEMPERATURE,
            estimated_prompt_tokens=math.ceil(local * _ESTIMATE_MARGIN),
        )
        completion = await self.backend.complete(request)
        self.store.cache_put(
            key,
            provider=self.provider,
            model=self.model,
            prompt_version=JUDGE_PROMPT_VERSION,
            completion=completion,
        )
        return completion, False


async def _judge_batch(
    call: _Caller, sentences: list[str], first: int, last: int, *, language: str
) -> tuple[list[tuple[str | None, str] | None], list[tuple[Completion, bool]]]:
    """Verdicts for sentences first..last (1-based), asking once more with a stricter reminder if unreadable."""
    count = last - first + 1
    messages = judge_messages(sentences, language=language, first=first, last=last)
    answers = [await call(messages)]
    try:
        return parse_judgement(answers[0][0].content, count, first=first), answers
    except JudgeFormatError:
        pass
    retry = (
        *messages,
        Message("assistant", answers[0][0].content.strip() or "-"),
        _reminder(language, first, last),
    )
    answers.append(await call(retry))
    try:
        return parse_judgement(answers[1][0].content, count, first=first), answers
    except JudgeFormatError as exc:
        raise JudgeFormatError(
            f"The judge model ({call.model}) twice answered sentences {first}-{last} in a form tome cannot read "
            "(expected lines like `3: OK` or `4: DUPLICATION: reason`); try another --judge model."
        ) from exc


def require_judge_backend(backend: ChatBackend) -> None:
    """Raise ConfigError (exit 2) for a backend that cannot judge: the offline extractive one."""
    if not backend.reads_prompts:
        raise ConfigError(
            "--judge needs an LLM backend; the offline extractive backend cannot judge coherence. "
            "Set MOONSHOT_API_KEY (or pass --backend with another provider), or drop --judge."
        )


async def judge_coherence(
    summary: str,
    *,
    backend: ChatBackend,
    store: Store,
    provider: str,
    model: str,
    language: str,
    max_tokens: int = 1500,
) -> Coherence:
    """Judge every sentence of ``summary`` (batches of :data:`BATCH_SENTENCES`, concurrently) and score it.

    Args:
        provider: the cache namespace of ``backend`` (part of every cache key, as for summaries).
        model: the judge model's name as the backend knows it.
        language: the summary's language code; zh* gets the Chinese prompt.

    Raises:
        ConfigError: ``backend`` is the offline extractive backend, which cannot judge.
        JudgeFormatError: a batch's answer could not be read, even after a stricter reminder.
        LLMError: the calls failed (as for summaries).
    """
    require_judge_backend(backend)
    sentences = [_flat(s) for s in split_sentences(summary)]
    call = _Caller(backend, store, provider, model, max_tokens, TiktokenCounter())
    batches = [
        (a, min(a + BATCH_SENTENCES - 1, len(sentences)))
        for a in range(1, len(sentences) + 1, BATCH_SENTENCES)
    ]
    results = await asyncio.gather(
        *(_judge_batch(call, sentences, a, b, language=language) for a, b in batches)
    )
    judgements: list[SentenceJudgement] = []
    errors: dict[str, int] = {}
    calls = cached = prompt = completion_tokens = 0
    for (a, _b), (verdicts, answers) in zip(batches, results, strict=True):
        for offset, verdict in enumerate(verdicts):
            index = a + offset
            if verdict is None:
                judgements.append(SentenceJudgement(index, sentences[index - 1], None, "", answered=False))
                continue
            error, reason = verdict
            judgements.append(SentenceJudgement(index, sentences[index - 1], error, reason))
            if error is not None:
                errors[error] = errors.get(error, 0) + 1
        for answer, was_cached in answers:
            if was_cached:
                cached += 1
            else:
                calls += 1
                prompt += answer.usage.prompt_tokens
                completion_tokens += answer.usage.completion_tokens
    return Coherence(
        sentences=len(sentences),
        flagged=sum(1 for j in judgements if j.error is not None),
        answered=sum(1 for j in judgements if j.answered),
        errors=dict(sorted(errors.items())),
        judgements=tuple(judgements),
        calls=calls,
        cached_calls=cached,
        prompt_tokens=prompt,
        completion_tokens=completion_tokens,
    )
