"""What the offline backend drops before it scores sentences: transcript noise and report furniture.

Transcripts (meeting recordings written out) carry annotations ("{vocalsound}", "{disfmarker}", "[laughter]"),
fillers ("um", "uh", "you know"), stutters ("the the", "I I"), phrases said twice ("that's a that's a"),
words broken off and started again ("th the") and spelled acronyms ("T_V_"); a turn is
cleaned before it is scored and before it is output, so no summary sentence spends its words on them.
Reports carry sentences a summary never repeats: how the audit was done ("We conducted this performance
audit from..."), contents lines ("Background ........ 4"), page furniture ("Page 12 GAO-19-245").
"""

from __future__ import annotations

import re

from pipeline.extractive_meetings_zh import clean_talk
from pipeline.language import SPEAKER_LABEL

# {vocalsound} {disfmarker} {gap} {comment} (AMI/ICSI, QMSum) and [laughter] [inaudible] (other transcribers).
_ANNOTATION = re.compile(
    r"\{[a-z_ ]{2,20}\}|\[(?:laughter|laughs|inaudible|crosstalk|noise|music|applause|pause)\]", re.I
)
# Spelled acronyms in AMI/ICSI: "T_V_" -> "TV", "L_C_D_" -> "LCD", "F_ eight" -> "F eight".
_SPELLED = re.compile(r"\b(?:[A-Za-z]_){2,}|\b[A-Za-z]_(?=\s|$)")
_FILLERS_EN = re.compile(
    r"(?<![\w'-])(?:um+|uh+m*|uh-huh|mm+(?:-hmm+)?|hmm+|mhm+|erm?|ah+|eh|you know|i mean)(?![\w'-])[,.]?",
    re.I,
)
# Chinese hesitation sounds (not 啊/吧 as sentence particles: only at a clause's start or standing alone).
_FILLERS_ZH = re.compile(r"(?:(?<=^)|(?<=[，。？！、\s]))[嗯呃额唉]+[，、。]?")
_REPEAT = re.compile(r"\b(\w+)(?:\s+\1\b(?!'))+", re.I)  # not "that that's"
# A phrase said twice ("that's a that's a", "we will we will") and a word broken off and started again ("th the",
# "wi with", "pr programme"): false starts cost words and say nothing.
_REPEAT_PHRASE = re.compile(r"\b((?:[\w']+\s+){0,3}[\w']+)(?:\s+\1\b(?!'))+", re.I)
_FALSE_START = re.compile(r"\b([a-z]{1,3})\s+(?=\1[a-z])", re.I)
# Short words that are words in their own right ("to today", "a an", "in into"), never dropped as a false start.
_WORDS_KEPT_TEXT = (
    "a an and as at be by do go he i if in is it me my no of on or so to up us we am are but for had has her him "
    "his its not now off one our out she the too two was who why yes you all any can did few get got let may new "
    "old own say see set way"
)
_WORDS_KEPT = frozenset(_WORDS_KEPT_TEXT.split())
# ICSI-style tokenised transcripts (QMSum's academic meetings) space out clitics and hyphens: "it 's", "they 're",
# "low - pass", "Mm - hmm", "Uh - huh"; "@ @" marks an unintelligible word.
_CLITIC = re.compile(r"(?<=\w) '(s|re|ll|ve|d|m|t)\b", re.I)
_HYPHEN = re.compile(r"(?<=\w) - (?=\w)")
_UNINTELLIGIBLE = re.compile(r"(?:@\s*)+")
_SPACE_BEFORE = re.compile(r"\s+([,.?!;:])")
_LEADING_JUNK = re.compile(r"^[\s,.;:!?-]+")
_COMMAS = re.compile(r"(?:,\s*){2,}")
_SPACES = re.compile(r"[ \t]{2,}")
# Report sentences no summary repeats: methodology boilerplate, contents lines, running heads and footers.
_BOILERPLATE = re.compile(
    r"we conducted (?:this|our) (?:performance )?(?:audit|review|work|engagement)|"
    r"generally accepted government auditing standards|"
    r"those standards require that we plan and perform|"
    r"(?:provide|provides) a reasonable basis for our findings|"
    r"(?:we are sending|we will (?:also )?send) copies of this report|"
    r"(?:if you or your staff have any questions|contact points for our offices)|"
    r"this report will (?:also )?be available at no charge|"
    r"(?:is|are) listed in appendix [ivx\d]+|"
    r"see appendix [ivx\d]+ for|"
    r"key contributors to this report|"
    r"this is a work of the u\.s\. government and is not subject to copyright|"
    r"\.{5,}|(?:^|\s)page \d+(?:\s|$)",
    re.I,
)


def clean_turn(text: str, *, cjk: bool) -> str:
    """A transcript sentence without annotations, fillers and stutters (its speaker label kept)."""
    label = SPEAKER_LABEL.match(text)
    head, body = (text[: label.end()], text[label.end() :]) if label else ("", text)
    body = _ANNOTATION.sub(" ", body)
    body = _UNINTELLIGIBLE.sub(" ", _HYPHEN.sub("-", _CLITIC.sub(r"'\1", body)))
    body = _SPELLED.sub(lambda m: m.group(0).replace("_", ""), body)
    if cjk:
        body = clean_talk(_FILLERS_ZH.sub("", body))
    body = _FILLERS_EN.sub(" ", body)
    body = _FALSE_START.sub(lambda m: m.group(0) if m.group(1).lower() in _WORDS_KEPT else "", body)
    body = _REPEAT_PHRASE.sub(r"\1", _REPEAT.sub(r"\1", body))
    body = _SPACE_BEFORE.sub(r"\1", body)
    body = _COMMAS.sub(", ", body)
    body = _LEADING_JUNK.sub("", _SPACES.sub(" ", body)).strip()
    if body and not cjk:
        body = body[0].upper() + body[1:]
    return f"{head}{body}" if body else ""


def is_boilerplate(sentence: str) -> bool:
    """A report sentence that says how the report was made or where things are in it, not what it found."""
    return bool(_BOILERPLATE.search(sentence))
