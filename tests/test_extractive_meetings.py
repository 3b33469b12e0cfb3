"""The offline backend on meetings: a transcript's summary fills the length asked, cleanly cut."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from pipeline.extractive import ExtractiveBackend, extract
from pipeline.extractive_clean import clean_turn
from pipeline.extractive_meetings import (
    ELLIPSIS,
    fill_tail,
    named_label,
    phrases,
    reads_as_talk,
)
from pipeline.language import count_units
from pipeline.lengths import measure
from pipeline.llm.types import ChatRequest
from pipeline.prompts import map_messages
from pipeline.sentences import split_sentences
from pipeline.tokens import TiktokenCounter

COUNTER = TiktokenCounter()
DEV = Path(__file__).resolve().parents[1] / "bench" / "data"


def meetings(name: str) -> list[str]:
    """The project's dev meetings (bench/data, written for the project): real-length transcripts."""
    lines = (DEV / name).read_text(encoding="utf-8").splitlines()
    return [r["document"] for r in map(json.loads, lines) if r["genre"] == "meeting"]


@pytest.mark.parametrize("words", [40, 100, 250, 500])
def test_an_english_meeting_summary_fills_the_words_asked(words):
    for document in meetings("eval_dev_en.jsonl"):
        out = extract(
            document, language="en", max_units=words, max_tokens=4000, counter=COUNTER, unit="words"
        )
        # Whole turns used to leave it up to a tenth short; never over (a summary is scored at its length).
        assert words - 2 <= count_units(out, "en") <= words
        assert out == extract(
            document, language="en", max_units=words, max_tokens=4000, counter=COUNTER, unit="words"
        )


@pytest.mark.parametrize("chars", [40, 100, 250, 500])
def test_a_chinese_meeting_summary_fills_the_characters_asked(chars):
    for document in meetings("eval_dev_zh.jsonl"):
        out = extract(
            document, language="zh", max_units=chars, max_tokens=4000, counter=COUNTER, unit="chars"
        )
        # A gap under three characters stays; punctuation counts half, rounded up in each sentence measured.
        assert min(0.99 * chars - 2, chars - 3) <= measure(out, "chars") <= chars


def test_the_gap_is_filled_with_the_head_of_a_sentence_the_meeting_said():
    document = meetings("eval_dev_en.jsonl")[0]
    out = extract(document, language="en", max_units=100, max_tokens=4000, counter=COUNTER, unit="words")
    cut = [s for s in split_sentences(out) if s.endswith(ELLIPSIS)]
    assert len(cut) <= 1
    flat = " ".join(document.split())
    for sentence in cut:
        # The head's words open a turn's sentence: only fillers ("um", "you know") may have been cleaned away.
        words = sentence.rstrip(ELLIPSIS).split()
        assert words and words[-1].strip(",") in flat


def test_prose_and_unstated_lengths_keep_whole_sentences():
    prose = " ".join(
        f"Report sentence {i} says the budget grew by {i} percent in region {i}." for i in range(40)
    )
    out = extract(prose, language="en", max_units=53, max_tokens=4000, counter=COUNTER, unit="words")
    assert ELLIPSIS not in out
    transcript = meetings("eval_dev_en.jsonl")[1]
    out = extract(transcript, language="en", max_units=100, max_tokens=4000, counter=COUNTER)
    assert ELLIPSIS not in out  # a length in tokens only (no words asked): nothing to fill exactly


async def test_the_backend_fills_a_meeting_to_the_words_its_prompt_asks():
    document = meetings("eval_dev_en.jsonl")[2]
    msgs = map_messages(
        document, title="t", part=1, parts=1, section=None, context="", words=120, language="en"
    )
    got = await ExtractiveBackend().complete(
        ChatRequest(model="m", messages=msgs, max_tokens=400, source_text=document)
    )
    assert 118 <= count_units(got.content, "en") <= 120


def test_the_tail_skips_a_repeat_and_respects_the_token_budget():
    sentences = [
        "The remote control will use a rubber case and a simple chip.",
        "The remote control will use a rubber case and a simple chip, we agreed.",
        "Marketing will survey younger buyers about speech recognition, the price and the colours next week.",
    ]
    feats = [frozenset(s.lower().strip(".").replace(",", "").split()) for s in sentences]
    args = {"max_units": 20, "unit": "words", "language": "en", "counter": COUNTER, "redundant": 0.6}
    index, head = fill_tail(sentences, {0}, [0, 1, 2], feats, max_tokens=200, **args)
    assert index == 2 and head.endswith(ELLIPSIS)
    # Cut after the clause ("...speech recognition") when that loses little of the 8-word gap, else after a word.
    assert head == "Marketing will survey younger buyers about speech recognition" + ELLIPSIS
    assert (
        fill_tail(sentences, {0}, [0, 1, 2], feats, max_tokens=COUNTER.count(sentences[0]) + 2, **args)
        is None
    )
    assert (
        fill_tail(sentences, {0, 2}, [0, 1, 2], feats, max_tokens=400, **args) is None
    )  # nothing left to fill


def test_icsi_style_transcripts_are_cleaned():
    # QMSum's academic meetings (ICSI) space out clitics and hyphens and mark unintelligible words "@ @".
    turn = "Professor A: Mm - hmm . I mean it 's a low - pass filter , they 're @ @ using it ."
    assert clean_turn(turn, cjk=False) == "Professor A: It's a low-pass filter, they're using it."
    assert clean_turn("Uh - huh .", cjk=False) == ""


def test_a_transcript_without_speaker_labels_is_cleaned_like_one_with_them():
    # QMSum's turns given as bare lines (no "Speaker:"), which the loader runs together into one paragraph: the
    # fillers and annotations still mark it as talk, so it is cleaned and its backchannels dropped.
    turns = [line.split(": ", 1)[1] for line in meetings("eval_dev_en.jsonl")[0].splitlines() if ": " in line]
    noisy = [f"{{vocalsound}} Um {turn} Mm-hmm ." for turn in turns]
    text = " ".join(noisy)
    assert reads_as_talk(text)
    out = extract(text, language="en", max_units=150, max_tokens=4000, counter=COUNTER, unit="words")
    for noise in ("{vocalsound}", "Um ", " um ", "Mm-hmm"):
        assert noise not in out, noise
    assert 148 <= count_units(out, "en") <= 150
    # Prose is not talk: a report's sentences stay as written.
    report = " ".join(
        f"The agency paid {i} million dollars to vendor {i} in 2018 without a check." for i in range(40)
    )
    assert not reads_as_talk(report)


def test_false_starts_and_repeated_phrases_are_cleaned():
    # AMI turns as QMSum gives them: a phrase said twice and a word broken off and started again cost words.
    turn = (
        "Project Manager: I I I think th the one decision I've had to make is that that's a that's a standard "
        "colour , and we wi with the p programmable chip we will we will see ."
    )
    assert clean_turn(turn, cjk=False) == (
        "Project Manager: I think the one decision I've had to make is that that's a standard colour, and we with "
        "the programmable chip we will see."
    )
    # Short words that are words ("to today", "a an", "in into") are no false starts.
    assert clean_turn("We go to today's list , a an apple , in into it .", cjk=False) == (
        "We go to today's list, a an apple, in into it."
    )


@pytest.mark.parametrize(
    ("name", "language", "unit"), [("eval_dev_en.jsonl", "en", "words"), ("eval_dev_zh.jsonl", "zh", "chars")]
)
def test_a_summary_sentence_that_opens_a_turn_says_who_speaks_when_the_label_names_them(name, language, unit):
    named = numbered = 0
    for document in meetings(name):
        out = extract(document, language=language, max_units=200, max_tokens=4000, counter=COUNTER, unit=unit)
        labels = {line.split("：" if language == "zh" else ": ", 1)[0] for line in document.splitlines()}
        spoken = [label for label in labels if f"{label}：" in out or f"{label}: " in out]
        # Who speaks, when the transcript names them ("Project Manager", "王经理"); never "说话人1" or "Speaker 2".
        named += bool(spoken)
        numbered += any(not named_label(f"{label}: ") for label in spoken)
        assert measure(out, unit) <= 200
    assert named >= 2 and numbered == 0


def test_named_and_numbered_speaker_labels():
    for label in (
        "Project Manager: ",
        "Professor B: ",
        "PhD D: ",
        "Kirsty Williams AM: ",
        "王经理：",
        "Chair: ",
        "Al: ",
    ):
        assert named_label(label + "So we start.") == label
    for label in ("Speaker 1: ", "SPEAKER_00: ", "说话人1：", "A: ", "Participant 3: ", "发言人2：", "S2: "):
        assert named_label(label + "So we start.") == ""
    assert named_label("No label here, just talk.") == ""


def _turns(document: str) -> list[str]:
    return [line.strip() for line in document.splitlines() if line.strip()]


def test_a_turn_that_says_the_meetings_recurring_phrases_ranks_above_one_that_only_shares_its_words():
    stopwords = frozenset({"the", "a", "we", "i", "it", "is", "to", "of", "and", "that", "so", "this"})
    for document in meetings("eval_dev_en.jsonl"):
        turns = _turns(document)
        # Only the phrases a turn shares with the others part them: peak 1, a turn that shares none 0.
        lifted = phrases(turns, stopwords=stopwords, stem=str.lower)
        assert max(lifted) == 1.0 and min(lifted) == 0.0
        best = turns[lifted.index(max(lifted))]
        phrase = [w for w in re.findall(r"[a-z]+", best.split(": ", 1)[-1].lower()) if w not in stopwords]
        pairs = {f"{a} {b}" for a, b in zip(phrase, phrase[1:], strict=False)}
        said = [sum(p in " ".join(re.findall(r"[a-z]+", t.lower())) for t in turns) for p in pairs]
        assert max(said) >= 3  # the best turn says a phrase at least three turns say


def test_a_speakers_label_is_no_phrase_of_the_meeting():
    turns = [f"Project Manager: {t}" for t in ("We open now.", "The budget is set.", "Lunch comes next.")]
    # The label is on every turn but says who speaks, not what about: no turn gains from it.
    assert phrases(turns, stopwords=frozenset(), stem=str.lower) == [0.0, 0.0, 0.0]


def test_an_english_meeting_summary_says_the_phrases_the_meeting_keeps_coming_back_to():
    for document in meetings("eval_dev_en.jsonl"):
        out = extract(document, language="en", max_units=150, max_tokens=4000, counter=COUNTER, unit="words")
        words = [re.findall(r"[a-z]+", t.split(": ", 1)[-1].lower()) for t in _turns(document)]
        # Pairs of longer words ("remote control", "speech recognition") said in three turns or more.
        counts = Counter(p for ws in words for p in {f"{a} {b}" for a, b in zip(ws, ws[1:], strict=False)})
        recurring = {p for p, n in counts.items() if n >= 3 and all(len(w) > 3 for w in p.split())}
        assert any(p in " ".join(re.findall(r"[a-z]+", out.lower())) for p in recurring)
