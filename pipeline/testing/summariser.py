"""The test server's deterministic "model": extractive summaries whose length follows the request.

Rules (tests and benchmarks rely on them):
- source = the last user message without ``<context>…</context>`` blocks; when the rest holds tagged
  blocks (``<text>…</text>``, ``<summaries>…</summaries>``, …) only their contents, else the whole message
  minus sentences that state a length instruction;
- length = N from "at most N words" / "at most N tokens" / "at most N characters" / "不超过N字" / "N字以内"
  (words and characters counted as ``--length`` counts them, pipeline.lengths; last user message,
  then system messages), else ~20 % of the source's tokens;
- output = every ``⟦marker⟧`` of the source first, then the first sentences of each paragraph (then the
  second ones, …) in document order, cut to the length; Chinese sources give Chinese output;
- a merge prompt that asks for citations ("... in square brackets, e.g. [2]", "用方括号注明") gets each sentence's
  ``<summary n="k">`` as " [k]" before its final punctuation;
- output over ``max_tokens`` is cut there with finish_reason "length";
- a *disobedient* model (``Obedience(overshoot=(lo, hi))``) writes lo..hi times the length asked (the factor
  is fixed per prompt by its hash), whole sentences, as chat models that "see fit" do;
- Moonshot's partial mode (a last assistant message with ``"partial": true``): the answer continues that
  prefix (the prefix itself is not repeated), as the model would have written it without the prefill.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipeline.lengths import measure as length_of
from pipeline.testing.tokenizer import CJK, ServerTokenizer

MARKER = re.compile(r"⟦[A-Za-z0-9_-]+⟧")
CONTEXT_BLOCK = re.compile(r"<context\b[^>]*>.*?</context>", re.DOTALL | re.IGNORECASE)
TAGGED_BLOCK = re.compile(r"<([A-Za-z_][\w-]*)\b[^>]*>(.*?)</\1>", re.DOTALL)
TAG = re.compile(r"</?[A-Za-z_][\w-]*\b[^<>]*>")
LENGTH_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"at most (\d+) words", re.IGNORECASE), "words"),
    (re.compile(r"at most (\d+) tokens", re.IGNORECASE), "tokens"),
    (re.compile(r"at most (\d+) characters", re.IGNORECASE), "chars"),
    (re.compile(r"不超过\s*(\d+)\s*字"), "chars"),
    (re.compile(r"at most (\d+) characters", re.IGNORECASE), "chars"),
    (re.compile(r"(\d+)\s*字以内"), "chars"),
)
CITE_ASKED = re.compile(r"in square brackets, e\.g\. \[2\]|用方括号注明")
NUMBERED_SUMMARY = re.compile(r'<summary n="(\d+)"[^>]*>(.*?)</summary>', re.DOTALL)
_SENTENCE_END = re.compile(r"([.!?。！？]+[\"'”’」』）)]*)$")
SENTENCE = re.compile(r"[^.!?。！？]+(?:[.!?。！？]+[\"'”’」』）)]*)?")
DEFAULT_SHARE = 0.20
MIN_TOKENS = 8  # a default-length answer is never shorter than this


@dataclass(frozen=True)
class Obedience:
    """How the test model treats the length a prompt asks for: obeys (default) or overshoots it."""

    overshoot: tuple[float, float] | None = None  # (lo, hi): writes lo..hi x the asked length

    @classmethod
    def disobedient(cls) -> Obedience:
        """Writes 1.3-2x what it is asked for, like models seen behind third-party gateways."""
        return cls(overshoot=(1.3, 2.0))

    def factor(self, messages: Sequence[Mapping[str, object]]) -> float:
        """The overshoot for this prompt (1.0 when obedient): deterministic, spread over [lo, hi]."""
        if self.overshoot is None:
            return 1.0
        lo, hi = self.overshoot
        digest = hashlib.sha256(
            json.dumps(list(messages), sort_keys=True, ensure_ascii=False).encode()
        ).digest()
        return lo + (hi - lo) * int.from_bytes(digest[:4], "big") / 2**32


OBEDIENT = Obedience()


@dataclass(frozen=True)
class Summary:
    """What the server answers."""

    text: str
    finish_reason: str  # "stop" | "length"
    completion_tokens: int


def _words(text: str) -> int:
    return length_of(text, "words")


def _chars(text: str) -> int:
    return length_of(text, "chars")


def length_instruction(messages: Sequence[Mapping[str, object]]) -> tuple[int, str] | None:
    """(N, unit) of the first length instruction in the last user message, else in system messages."""
    users = [m for m in messages if m.get("role") == "user"]
    ordered = users[-1:] + [m for m in messages if m.get("role") == "system"]
    for message in ordered:
        text = CONTEXT_BLOCK.sub("", str(message.get("content") or ""))
        for pattern, unit in LENGTH_RULES:
            found = pattern.findall(text)
            if found:
                return int(found[-1]), unit
    return None


def source_text(messages: Sequence[Mapping[str, object]]) -> str:
    """The text a summary is drawn from (see the module rules)."""
    users = [m for m in messages if m.get("role") == "user"] or list(messages[-1:])
    text = CONTEXT_BLOCK.sub("", str(users[-1].get("content") or "")) if users else ""
    blocks = [body for _tag, body in TAGGED_BLOCK.findall(text)]
    if blocks:
        return "\n\n".join(TAG.sub(" ", b) for b in blocks)
    text = TAG.sub(" ", text)
    return "\n".join(
        line for line in text.splitlines() if not any(p.search(line) for p, _unit in LENGTH_RULES)
    )


def is_chinese(text: str) -> bool:
    dense = "".join(text.split())
    return bool(dense) and len(CJK.findall(dense)) / len(dense) > 0.3


def _citations(messages: Sequence[Mapping[str, object]], chinese: bool) -> Callable[[str], str]:
    """How a sentence is written: as it is, or (when the prompt asks for citations) with its summary's [n]."""
    users = [m for m in messages if m.get("role") == "user"]
    prompt = str(users[-1].get("content") or "") if users else ""
    if not CITE_ASKED.search(prompt):
        return str

    def squash(text: str) -> str:
        return "".join(text.split()) if chinese else " ".join(text.split())

    blocks = [
        (n, squash(TAG.sub(" ", body))) for n, body in NUMBERED_SUMMARY.findall(CONTEXT_BLOCK.sub("", prompt))
    ]

    def cite(sentence: str) -> str:
        n = next((n for n, body in blocks if squash(sentence) in body), None)
        return (
            sentence if n is None else _SENTENCE_END.sub(lambda m: f" [{n}]{m.group(1)}", sentence, count=1)
        )

    return cite


def _paragraphs(text: str, chinese: bool) -> list[list[str]]:
    parts = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(parts) < 2:
        parts = [p for p in text.splitlines() if p.strip()]
    joiner = "" if chinese else " "
    paragraphs = []
    for part in parts:
        flat = joiner.join(part.split()) if chinese else " ".join(part.split())
        sentences = [s.strip() for s in SENTENCE.findall(flat) if s.strip(" \"'”’」』）)")]
        if sentences:
            paragraphs.append(sentences)
    return paragraphs


def _fit(text: str, measure: Callable[[str], int], budget: int) -> str:
    """The longest prefix of ``text`` whose measure is at most ``budget``, not ending inside a word."""
    if measure(text) <= budget:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    cut = text[:lo]
    if lo < len(text) and not text[lo].isspace() and not CJK.match(text[lo]) and " " in cut:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip()


def partial_prefix(messages: Sequence[Mapping[str, object]]) -> str | None:
    """The prefilled answer of a partial-mode request (last message: assistant with partial true), else None."""
    last = messages[-1] if messages else None
    if last is not None and last.get("role") == "assistant" and last.get("partial") is True:
        return str(last.get("content") or "")
    return None


def summarise(
    messages: Sequence[Mapping[str, object]],
    *,
    max_tokens: int,
    tokenizer: ServerTokenizer,
    obedience: Obedience = OBEDIENT,
) -> Summary:
    """The deterministic extractive answer to a chat request (a continuation in partial mode)."""
    prefix = partial_prefix(messages)
    if prefix is not None:
        whole = _answer(messages[:-1], tokenizer, obedience)
        # It goes on from where the prefix leaves its own answer (for a prefix it would not have written:
        # from where the two part).
        rest = whole[len(os.path.commonprefix([whole, prefix.rstrip()])) :]
        return _cut(rest, max_tokens, tokenizer)
    return _cut(_answer(messages, tokenizer, obedience), max_tokens, tokenizer)


def _cut(output: str, max_tokens: int, tokenizer: ServerTokenizer) -> Summary:
    finish = "stop"
    if tokenizer.count(output) > max_tokens:
        output, finish = tokenizer.truncate(output, max_tokens), "length"
    return Summary(output, finish, tokenizer.count(output))


def _answer(
    messages: Sequence[Mapping[str, object]], tokenizer: ServerTokenizer, obedience: Obedience
) -> str:
    """What the model writes for ``messages`` when nothing stops it."""
    source = source_text(messages)
    markers = list(dict.fromkeys(MARKER.findall(source)))
    body = MARKER.sub("", source)
    chinese = is_chinese(body)
    joiner = "" if chinese else " "
    instruction = length_instruction(messages)
    if instruction is None:
        budget, measure = max(MIN_TOKENS, round(DEFAULT_SHARE * tokenizer.count(body))), tokenizer.count
    else:
        n, unit = instruction
        measure = {"words": _words, "tokens": tokenizer.count, "chars": _chars}[unit]
        budget = n
    disobeys = obedience.overshoot is not None
    budget = round(budget * obedience.factor(messages))
    head = " ".join(markers)
    room = max(budget - measure(head), 0)

    # Round-robin by sentence rank: every paragraph's first sentence, then every second one, ...
    paragraphs = _paragraphs(body, chinese)
    chosen: list[tuple[int, int]] = []
    used = 0
    rank = 0
    while used < room and any(rank < len(p) for p in paragraphs):
        for pi, sentences in enumerate(paragraphs):
            if rank < len(sentences) and used < room:
                chosen.append((pi, rank))
                used += measure(sentences[rank])
        rank += 1
    cite = _citations(messages, chinese)
    text = joiner.join(cite(paragraphs[pi][si]) for pi, si in sorted(chosen))
    if not disobeys:  # an obedient model stops at the length; a disobedient one finishes its sentence
        text = _fit(text, measure, room)
    output = " ".join(x for x in (head, text) if x)
    if not output:
        output = "（无内容）" if chinese else "Nothing to summarise."
    return output
