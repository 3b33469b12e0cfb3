"""The test server's deterministic coherence judge, answering requests built by pipeline.evaluation.judge.

Rules (tests rely on them): a request is a judge request when a system message contains ``JUDGE_MARKER``.
The sentences are the ``[N] text`` lines of the last user message's ``<summary>`` block; the batch is the first
``A-B`` range after it (every sentence when there is none). Each sentence of the batch gets one line:
- ``N: DUPLICATION: repeats sentence M`` when >= 70 % of its words (CJK: characters) occur in an earlier
  sentence M (the first such M);
- else ``1: ENTITY_OMISSION: ...`` when sentence 1 starts with a pronoun (he/she/they/it/他/她/它/他们...);
- else ``N: OK``.
Output over ``max_tokens`` is cut there with finish_reason "length", as for summaries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pipeline.evaluation.judge import JUDGE_MARKER
from pipeline.scripts import HAN_CHAR
from pipeline.testing.summariser import Summary, is_chinese
from pipeline.testing.tokenizer import ServerTokenizer

DUPLICATE_SHARE = 0.7
_SUMMARY = re.compile(r"<summary>\n(.*?)\n</summary>", re.DOTALL)
_NUMBERED = re.compile(r"^\[(\d+)\]\s?(.*)$", re.MULTILINE)
_RANGE = re.compile(r"(\d+)\s*-\s*(\d+)")
_WORD = re.compile(r"\w+", re.UNICODE)
_HAN = HAN_CHAR
_PRONOUN = re.compile(
    r"^(?:(?:he|she|they|it|him|her|them|his|its|their)\b|他们|她们|它们|他|她|它)", re.IGNORECASE
)


def is_judge_request(messages: Sequence[Mapping[str, object]]) -> bool:
    """Whether a system message carries the judge's marker."""
    return any(m.get("role") == "system" and JUDGE_MARKER in str(m.get("content") or "") for m in messages)


def _units(sentence: str, chinese: bool) -> set[str]:
    if chinese:
        return set(_HAN.findall(sentence)) | {w.lower() for w in _WORD.findall(_HAN.sub(" ", sentence))}
    return {w.lower() for w in _WORD.findall(sentence)}


def verdicts(sentences: Sequence[str], first: int, last: int) -> list[str]:
    """The answer lines for sentences ``first``..``last`` (1-based) by the module's rules."""
    chinese = is_chinese(" ".join(sentences))
    units = [_units(s, chinese) for s in sentences]
    lines = []
    for n in range(first, last + 1):
        mine = units[n - 1]
        earlier = next(
            (m for m in range(1, n) if mine and len(mine & units[m - 1]) / len(mine) >= DUPLICATE_SHARE), None
        )
        if earlier is not None:
            lines.append(f"{n}: DUPLICATION: repeats sentence {earlier}")
        elif n == 1 and _PRONOUN.match(sentences[0].lstrip(" \"'“‘「")):
            lines.append(f"{n}: ENTITY_OMISSION: opens with a pronoun; who is meant is never said")
        else:
            lines.append(f"{n}: OK")
    return lines


def judge(
    messages: Sequence[Mapping[str, object]], *, max_tokens: int, tokenizer: ServerTokenizer
) -> Summary:
    """The deterministic answer to a judge request."""
    users = [m for m in messages if m.get("role") == "user"]
    # A retry after an unreadable answer ends with a reminder; the summary is in the first user message.
    prompt = next(
        (str(m.get("content") or "") for m in users if _SUMMARY.search(str(m.get("content") or ""))), ""
    )
    block = _SUMMARY.search(prompt)
    sentences = [text for _n, text in _NUMBERED.findall(block.group(1))] if block else []
    after = prompt[block.end() :] if block else prompt
    found = _RANGE.search(after)
    first, last = (int(found.group(1)), int(found.group(2))) if found else (1, len(sentences))
    first, last = max(1, first), min(last, len(sentences))
    output = "\n".join(verdicts(sentences, first, last)) or "OK"
    finish = "stop"
    if tokenizer.count(output) > max_tokens:
        output, finish = tokenizer.truncate(output, max_tokens), "length"
    return Summary(output, finish, tokenizer.count(output))
