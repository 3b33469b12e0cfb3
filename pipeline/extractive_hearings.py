"""Formal hearings and committee meetings: the chair's opening, which names the meeting, leads the summary.

A committee hearing opens with the chair naming the committee, the item or inquiry, and the witnesses with their
roles; its minutes retell that opening first, in order, then what was asked and answered. Such a meeting is told
from its own transcript (``is_hearing``): its opening uses the vocabulary of formal procedure (committee, chair,
witnesses, evidence session, item, Minister, Members, apologies, declarations of interest...), which a working
meeting (AMI's design teams, ICSI's research groups) does not. When it does, the opening's sentences that name
the meeting take up to ``SHARE`` of the summary before the word-pair cover (pipeline.extractive_coverage) fills
the rest (``chair_opening``). bench/results/eval.md, "Formal hearings: the chair's opening first".
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from pipeline.language import SPEAKER_LABEL

# Words of formal procedure. A hearing's first 800 words use 6-13 of them (QMSum's Welsh and Canadian committees,
# a US city council); AMI and ICSI meetings 0-2 ("agenda", "secretary"). "order" and "bill" are left out: "in
# order to", a person called Bill.
_FORMAL = re.compile(
    r"\b(committee|chair|chairman|chairperson|chairwoman|witness(?:es)?|evidence|minister|secretary|members?|hon|"
    r"honourable|honorable|apologies|declarations?|hearing|inquiry|session|item|agenda|councillors?|councilors?|"
    r"senators?|testimony|petitions?|motion|scrutiny|statement|commissioner|deputy|director|clerk|quorum)\b",
    re.IGNORECASE,
)
MIN_FORMAL = 5  # distinct words of _FORMAL (plurals as one)
OPENING_WORDS = 800  # where the test looks
# Where the chair names the meeting, and the words that name it: a sentence of the window with none of them
# ("We've received no apologies", "We've got a lot of ground to cover") or a question ("Are there any declarations
# of interest?") is procedure, not what the meeting is.
WINDOW = 400
_NAMING = re.compile(
    r"\b(committee|item|session|inquiry|hearing|bill|act|report|witness(?:es)?|minister|secretary|director|"
    r"chair(?:ed)?|welcome|agenda|petitions?|motion|scrutiny|meeting|commission(?:er)?|council)\b",
    re.IGNORECASE,
)
# Share of the summary's length the opening may take. 12 QMSum committee hearings and a council meeting, each at
# 0.5 / 0.7 / 1 / 1.4 / 2 x its reference's length: 0.2 / 0.3 / 0.4 / 0.5 all gain on ROUGE-1/2/L, leave one
# meeting out picks 0.5 for 12 of 13 and 0.4 for one; 0.4 was better at the reference's length.
SHARE = 0.4


# A public meeting's speech written down without speakers' labels (a city council's recording: "Thank you, Mr.
# President", "I move that council bill 599 be placed upon final consideration", "Councilmember O'Brien"): in 6-21 %
# of the sentences of 8 MeetingBank council segments, in at most 2.5 % of other talk and 0.6 % of reports, stories
# and books (the project's dev sets, SQuALITY dev, Alice, Pride and Prejudice).
_FORMAL_SPEECH = re.compile(
    r"\bthank you\b|\bi move\b|\bmoved and seconded\b|\bcouncil ?(?:member|man|woman|person)s?\b|"
    r"\b(?:mr|madam|madame)\.? (?:president|chair|mayor|speaker|vice)\b|\bpublic (?:hearing|comment)\b|\bagenda item\b",
    re.IGNORECASE,
)
FORMAL_SPEECH_SHARE = 0.05


def formal_speech(pieces: Sequence[str], *, share: float = FORMAL_SPEECH_SHARE) -> bool:
    """Whether ``pieces`` (a text's sentences) are a public meeting's speech: ``share`` of them address its chair
    or members, thank, move or second."""
    return sum(bool(_FORMAL_SPEECH.search(p)) for p in pieces) >= share * len(pieces)


def is_hearing(sentences: Sequence[str], words: Sequence[int]) -> bool:
    """Whether a transcript's opening (its first ``OPENING_WORDS`` words, speakers' labels left out) speaks the
    language of formal procedure: ``MIN_FORMAL`` distinct words of it or more."""
    total = 0
    head: list[str] = []
    for sentence, size in zip(sentences, words, strict=True):
        head.append(SPEAKER_LABEL.sub("", sentence, count=1))
        total += size
        if total >= OPENING_WORDS:
            break
    return len({m.lower().rstrip("s") for m in _FORMAL.findall(" ".join(head))}) >= MIN_FORMAL


def chair_opening(
    sentences: Sequence[str],
    pairs: Sequence[frozenset[str]],
    words: Sequence[int],
    sizes: Sequence[int],
    *,
    budget: int,
) -> list[int]:
    """Indices (in order) of the opening sentences that lead a hearing's summary; none for another meeting.

    Among the first ``WINDOW`` words, sentences that name the meeting (not questions) are taken by how many of
    the meeting's recurring word ``pairs`` they hold per square root of their size (the item's topic, the
    committee's name, said again later), while they fit ``SHARE`` of ``budget`` (``sizes`` summed).
    """
    if not is_hearing(sentences, words):
        return []
    said = Counter(p for ps in pairs for p in ps)
    candidates: list[int] = []
    span = 0
    for i, size in enumerate(words):
        span += size
        if span > WINDOW:
            break
        text = SPEAKER_LABEL.sub("", sentences[i], count=1).strip()
        if not text.endswith("?") and _NAMING.search(text):
            candidates.append(i)
    value = {i: sum(said[p] - 1 for p in pairs[i]) / max(1, sizes[i]) ** 0.5 for i in candidates}
    room = SHARE * budget
    lead: list[int] = []
    for i in sorted(candidates, key=lambda i: (-value[i], i)):
        if sizes[i] <= room:
            lead.append(i)
            room -= sizes[i]
    return sorted(lead)
