"""An item read aloud: a segment that opens by formally reading its own item leads its summary with that reading.

A council's recording of one agenda item opens with the clerk reading the item into the record ("Item 15, report
from City Manager, recommendation to adopt resolutions ...", "Council Bill 118, an ordinance relating to ...",
"Docket 1239 ... message and order authorizing ...", "Agenda item three, resolution 31669 encouraging ..."), and
the minutes' summary of the item is that text. Such an opening is known by its form (``reading_start``): among the
first ``WINDOW`` words of a public meeting's speech, a sentence that names an item (agenda item, bill, ordinance,
resolution, docket, motion, report, recommendation, communication) with the action it asks for (relating to,
authorizing, recommendation to adopt ...). Its sentences, up to the first that is talk again (a thank-you, a
motion, someone addressed, a question), lead the summary within ``SHARE`` of its length (``item_reading``); one
that fills it is all the summary holds, its last sentence cut (pipeline.extractive_meetings.covering).
bench/results/eval.md, "MeetingBank: the item's reading first".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.extractive_hearings import formal_speech
from pipeline.language import SPEAKER_LABEL

WINDOW = 200  # words of the opening where the reading may start (after a roll call or the last item's vote)
SHARE = 0.9  # of the summary's length the reading may take before it is all the summary holds
# Share of sentences that are a public meeting's speech (pipeline.extractive_hearings): MeetingBank segments
# 0.03-0.36 of their cleaned sentences, the project's labelled working meetings 0, its council committee 0.016.
MIN_FORMAL = 0.02

# What an item asks, as its title says it ("... authorizing", "... to adopt").
_ING = (
    r"(?:authoriz|amend|approv|adopt|accept|establish|request|confirm|appoint|creat|repeal|recogniz|declar|grant|"
    r"direct|designat|strengthen|requir|allow|encourag|express|support|honor|proclaim|relat|chang|award|execut|"
    r"increas|extend|provid|receiv|updat|prohibit|rezon|vacat)ing"
)
_VERB = (
    r"(?:adopt|approve|authorize|award|accept|execute|receive|amend|establish|direct|request|grant|declare|appoint|"
    r"confirm|increase|extend|enter|provide|consider|update|rezone|proclaim|recognize|support|create|repeal)"
)
# Forms that name an item together with what it asks ("recommendation to adopt", "an ordinance relating to").
_STRONG = re.compile(
    rf"\brecommendations?,? (?:to|that)\b|\b(?:relating|relative) to\b|\bbill for an ordinance\b|"
    rf"\b(?:an ordinance|a resolution)\b|\ban? (?:motion|petition|proclamation) {_ING}\b|"
    rf"\bmessage and order\b|\bpetition for\b|\breport from\b|\bcommunications? from\b|\badoption of\b",
    re.IGNORECASE,
)
# An item named (or numbered: "Council Bill 119902", "118 934"), and an action asked, when the form is looser
# ("Item 21 ... to execute a takeover agreement", "119902 related to the City Light Department").
_ITEM = re.compile(
    r"\b(?:agenda )?items?\b|\bbills?\b|\bordinances?\b|\bresolutions?\b|\bdockets?\b|\bclerk file\b|"
    r"\bmotions?\b|\bpetitions?\b|\bproclamations?\b|\bappointments?\b|\breports?\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\b\d{3,}\b")  # an item's number, in the sentence that reads it
_ACTION = re.compile(rf"\b{_ING}\b|\brelated to\b|\b(?:to|and|would) {_VERB}\b", re.IGNORECASE)
# Someone speaking, not reading: first and second persons ("I move that council bill 1210 ...").
_PERSON = re.compile(r"\b(?:i|i'm|i'd|i'll|i've|me|my|we|we're|we'll|we've|us|our|you|your)\b", re.IGNORECASE)
# ... and thanks, procedure, someone addressed: where a reading ends.
_TALK = re.compile(
    r"\b(?:thank|thanks|please|okay|yes|move|moved|second|seconded|mayor|madam|mr|ms|mrs|sir|councilm[ae]n|"
    r"councilwoman|councilmember|councilor|council member|clerk|chair|president|public comment|staff report|"
    r"roll call)\b",
    re.IGNORECASE,
)


def _text(sentence: str) -> str:
    return SPEAKER_LABEL.sub("", sentence, count=1).strip()


def reading_start(sentences: Sequence[str], words: Sequence[int]) -> int | None:
    """Index of the sentence where the segment starts reading its item (within its first ``WINDOW`` words), if
    it is a public meeting's speech (pipeline.extractive_hearings.formal_speech) that does; else None."""
    if not formal_speech(sentences, share=MIN_FORMAL):
        return None
    total = 0
    for i, size in enumerate(words):
        if total >= WINDOW:
            break
        total += size
        text = _text(sentences[i])
        if _PERSON.search(text):
            continue
        if _STRONG.search(text):
            return i
        named = (
            _ITEM.search(text) or _NUMBER.search(text) or (i > 0 and _ITEM.search(_text(sentences[i - 1])))
        )
        if named and _ACTION.search(text) and not (_TALK.search(text) or text.endswith("?")):
            return i
    return None


def item_reading(
    sentences: Sequence[str], words: Sequence[int], sizes: Sequence[int], *, budget: int
) -> tuple[list[int], bool]:
    """Indices (in order) of the reading's sentences that lead the summary, and whether they overrun ``SHARE``
    of ``budget`` (``sizes`` summed): then the last of them is the one cut to fit. Nothing when the segment
    reads no item."""
    start = reading_start(sentences, words)
    if start is None:
        return [], False
    room = SHARE * budget
    lead: list[int] = []
    for i in range(start, len(sentences)):
        text = _text(sentences[i])
        if i > start and (_PERSON.search(text) or _TALK.search(text) or text.endswith("?")):
            break
        lead.append(i)
        room -= sizes[i]
        if room < 0:
            return lead, True
    return lead, False
