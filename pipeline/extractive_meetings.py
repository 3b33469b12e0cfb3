"""Meetings: the offline backend fills the length a transcript's summary is asked for, and says who speaks.

A meeting's sentences are whole speaker turns, often long run-ons, so the best ones that fit used to leave a
summary up to a tenth short of a stated length (and more when a few long turns crowd out the rest). The gap is
filled with the opening of the best sentence left out (not one that repeats a kept sentence), cut after a
clause when that loses little, else after a word, and marked "…" as cut.

A summary sentence that opens a turn keeps its speaker's label when the label names them ("Project Manager:",
"Kirsty Williams AM:", "王经理："), not when it only numbers them ("Speaker 2:", "说话人1："): a reader sees who
proposed what, and meeting minutes say it too (QMSum's references: "Project Manager introduced..."). Public dev
meetings, 2026-12-06 (bench/results/eval.md): QMSum new dev 27.42 / 4.92 / 16.10 -> 30.26 / 6.10 / 17.03, val
26.52 / 3.91 / 13.59 -> 25.05 / 2.50 / 12.40, train 27.02 / 4.07 / 14.57 -> 27.13 / 4.45 / 14.82; project dev
meetings EN 41.96 / 12.78 / 21.81 -> 42.30 / 12.80 / 21.74, ZH 45.51 / 22.12 / 23.60 -> 46.22 / 22.81 / 24.22.
Every sentence's label rejected: project dev EN 41.5 / 11.8 / 20.0 (labels crowd out content).

An English turn's recurring word pairs (``phrases``) are a feature of its learned score (pipeline.extractive_learned),
which replaced a hand-set half-and-half blend with its recurring words: 16 QMSum dev meetings (bench/results/eval.md,
"Meetings, phrases") 27.36 / 4.20 / 14.68 -> 28.07 / 5.49 / 16.13 (lead 24.75 / 4.54 / 13.30) for that blend.

English turns are then taken as a cover of the meeting's recurring word pairs (``covering``,
pipeline.extractive_coverage), each pair counted once and weighted up when the opening says it first: 43 English
dev meetings (the 16 QMSum, 22 fresh QMSum, the project's 5; bench/results/eval.md, "Meetings, covering the
opening's points") 29.86 / 6.03 / 16.50 -> 30.65 / 6.28 / 16.80 (lead 24.66 / 5.80 / 14.00); a plain cover
without the opening's weight (Gillick & Favre) 31.09 / 6.54 / 16.27 was rejected for its ROUGE-L.

A council's recording of one agenda item that opens with the clerk reading the item leads its summary with that
reading (pipeline.extractive_agenda): 32 MeetingBank dev items 38.69 / 22.92 / 31.68 -> 52.22 / 38.69 / 47.84 (lead
43.81 / 31.36 / 39.37; bench/results/eval.md, "MeetingBank: the item's reading first").

Tried on the public dev meetings and rejected (README, "Real transcripts"): topic segmentation with a length
quota per topic (TextTiling-like), a bonus for sentences that state decisions or action items, a prior for long
turns, and word pairs / character trigrams as features; each lost ROUGE on most sets. Also rejected
(2026-12-06): each part's best sentences as the pool the summary is chosen from (a map-reduce in one call), a
prior on a meeting's opening (weight 0.15-0.3) and length damping for English turns (0.3, 0.6).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from pipeline.extractive_agenda import item_reading
from pipeline.extractive_coverage import covering_order
from pipeline.extractive_hearings import chair_opening, formal_speech
from pipeline.language import SPEAKER_LABEL
from pipeline.lengths import measure
from pipeline.scripts import CJK_LETTER
from pipeline.tokens import TokenCounter

# A clause boundary ends the filler if it leaves at most this share of the gap unfilled.
CLAUSE_SLACK = 0.2
# A head shorter than this (words, or characters) is not worth reading: a gap this small stays.
MIN_TAIL = 3
# Best sentences left out tried for a head that ends at a clause; else the best one's head, cut after a word.
TAIL_POOL = 10
_CLAUSE_END = re.compile(r"[,;:，；：、]")
# Where a head may be cut: after one CJK character, a word of another script, or a number.
_CUT = re.compile(rf"{CJK_LETTER.pattern}|(?:(?!{CJK_LETTER.pattern})[^\W\d_])+|\d+")
ELLIPSIS = "…"


_PAIR_WORD = re.compile(r"[^\W\d_]+")


def phrases(sentences: Sequence[str], *, stopwords: frozenset[str], stem: Callable[[str], str]) -> list[float]:
    """Each turn's recurring content-word pairs (peak 1): a pair said in k turns is worth k - 1.

    A meeting's topics are phrases ("remote control", "speech recognition", "lighting adaptive"), and its
    summary names them: a turn that says the phrases other turns say is about the meeting's topics; one that
    only shares their single words ("think", "good", "thing") is not.
    """
    pairs = [_pairs(s, stopwords, stem) for s in sentences]
    spread = Counter(p for ps in pairs for p in ps)
    held = [sum(spread[p] - 1 for p in ps) for ps in pairs]
    top = max(held, default=0) or 1
    return [h / top for h in held]


def covering(
    sentences: Sequence[str],
    scores: Sequence[float],
    sizes: Sequence[int],
    *,
    budget: int,
    stopwords: frozenset[str],
    stem: Callable[[str], str],
) -> list[int]:
    """English turns best first, as a cover of the meeting's recurring word pairs takes them (within ``budget``).

    A segment that opens by reading its own item leads with that reading (pipeline.extractive_agenda); a reading
    that runs past its share of the length is all that is ranked, so the summary is the reading, its last sentence
    cut to the length as the backend cuts a sentence too long for it. Otherwise a formal hearing's summary opens
    with the chair's naming of it (pipeline.extractive_hearings).
    """
    words = [measure(s, "words") for s in sentences]
    reading, overrun = item_reading(sentences, words, sizes, budget=budget)
    if overrun:
        return reading
    pairs = [_pairs(s, stopwords, stem) for s in sentences]
    first = reading or chair_opening(sentences, pairs, words, sizes, budget=budget)
    return covering_order(pairs, scores, sizes, budget=budget, words=words, first=first)


def _pairs(sentence: str, stopwords: frozenset[str], stem: Callable[[str], str]) -> frozenset[str]:
    """Adjacent content words (stemmed), the speaker's label left out: "Project Manager:" is who, not what."""
    words = [w.lower() for w in _PAIR_WORD.findall(SPEAKER_LABEL.sub("", sentence, count=1))]
    return frozenset(
        f"{stem(a)} {stem(b)}"
        for a, b in zip(words, words[1:], strict=False)
        if len(a) > 1 and len(b) > 1 and a not in stopwords and b not in stopwords
    )


# Marks of talk written down: transcribers' annotations, fillers, spoken Chinese's discourse words.
_TALK = re.compile(
    r"\{(?:vocalsound|disfmarker|gap|comment|pause)\}|\b(?:um+|uh+|yeah|you know|i mean|gonna|wanna)\b|"
    r"其实|然后|就是|觉得|这个|那个",
    re.IGNORECASE,
)
TALK_SHARE = 0.3  # of its sentences (as the backend's transcript test counts them)
_TALK_SAMPLE = 200_000  # characters read to decide


def reads_as_talk(text: str) -> bool:
    """A transcript without speaker labels (its turns run together): talk in ``TALK_SHARE`` of its sentences.

    Such a text is cleaned like a labelled transcript (fillers, annotations, stutters, backchannels): measured on
    QMSum meetings given without labels, R-1 19.7 -> 26 (README, "Meetings in English and Chinese"). A public
    meeting's edited speech (few fillers) is talk too (pipeline.extractive_hearings.formal_speech): MeetingBank
    council segments 26.76 / 11.66 / 20.10 -> 35.63 / 19.49 / 29.92 (bench/results/eval.md, "Formal hearings").
    """
    pieces = [p for p in re.split(r"[.!?。！？\n]+", text[:_TALK_SAMPLE]) if p.strip()]
    talk = sum(bool(_TALK.search(p)) for p in pieces) >= TALK_SHARE * len(pieces)
    return len(pieces) >= 10 and (talk or formal_speech(pieces))


def fill_tail(
    sentences: Sequence[str],
    chosen: set[int],
    order: Sequence[int],
    feats: Sequence[frozenset[str]],
    *,
    max_units: int,
    unit: str,
    language: str,
    max_tokens: int,
    counter: TokenCounter,
    redundant: float,
) -> tuple[int, str] | None:
    """(index, head) of the best sentence left out, its head filling what ``chosen`` leaves of ``max_units``.

    ``unit``: "chars" (as pipeline.lengths counts them) or words; ``order``: best first. None when nothing is
    left to fill, or no head fits the gap and the token budget.
    """

    def size_of(text: str) -> int:
        return measure(text, "chars" if unit == "chars" else "words")

    gap = max_units - sum(size_of(sentences[i]) for i in chosen)
    if gap < MIN_TAIL:
        return None
    tokens_left = max_tokens - sum(counter.count(sentences[i]) for i in chosen)
    kept = [feats[i] for i in chosen]
    heads: list[tuple[int, str]] = []
    for i in order:
        mine = feats[i]
        if i in chosen or (mine and any(len(mine & k) >= redundant * len(mine) for k in kept)):
            continue
        head, whole = _head(sentences[i], gap, size_of)
        if head and counter.count(head) <= tokens_left:
            heads.append((i, head))
            if whole:  # one of the next best that ends at a clause reads better than a head cut mid-clause
                return i, head
            if len(heads) >= TAIL_POOL:
                break
    return heads[0] if heads else None


def _head(sentence: str, budget: int, size_of: Callable[[str], int]) -> tuple[str, bool]:
    """The longest head of ``sentence`` within ``budget`` units, ending at a clause if that loses little, and
    whether it ends at a clause (or is the whole sentence)."""
    best = 0
    for match in _CUT.finditer(sentence):
        if size_of(sentence[: match.end()]) > budget:
            break
        best = match.end()
    else:
        return sentence, True  # it all fits (left out only for the tokens it costs, or it was not yet tried)
    if best == 0 or size_of(sentence[:best]) < MIN_TAIL:
        return "", False
    head = sentence[:best]
    clause = max((m.start() for m in _CLAUSE_END.finditer(head)), default=-1)
    at_clause = bool(_CLAUSE_END.match(sentence.lstrip()[len(head.lstrip()) :].lstrip()))
    if not at_clause and clause > 0 and size_of(head[:clause]) >= (1 - CLAUSE_SLACK) * budget:
        head, at_clause = head[:clause], True
    return head.rstrip(" ,;:，；：、") + ELLIPSIS, at_clause


# A speaker label that only numbers its speakers ("Speaker 2", "SPEAKER_00", "说话人1", "A", "Participant 3") says
# nothing to a reader; a name or a role does ("Kirsty Williams AM", "Project Manager", "Professor B").
_NUMBERED = re.compile(
    r"(?:(?:speaker|spk|participant|person|voice|unknown|说话人|发言人|讲话人|参会人)\s*[_#-]?\s*)?"
    r"(?:[A-Za-z]?\d{1,3}|[A-Za-z])",
    re.IGNORECASE,
)


def named_label(turn: str) -> str:
    """The turn's speaker label (``"Project Manager: "``) when it names the speaker; "" when it only numbers
    them, or there is none."""
    label = SPEAKER_LABEL.match(turn)
    if label is None or _NUMBERED.fullmatch(label.group(0).strip().rstrip(":：").strip()):
        return ""
    return label.group(0)

