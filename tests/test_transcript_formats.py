"""Transcripts as subtitles, with clocks, or as meeting apps export them read like "Name: text" turns."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.documents import document_from_text, load_document
from pipeline.extractive import ExtractiveBackend
from pipeline.llm.types import ChatRequest
from pipeline.prompts import map_messages
from pipeline.transcript_formats import as_turn_lines

DEV = Path(__file__).resolve().parents[1] / "bench" / "data"
CLOCK = re.compile(r"\d{1,2}:\d{2}|-->|<v\b")


def _meeting(name: str) -> list[tuple[str, str]]:
    """The first dev meeting of ``name`` (written for the project) as (speaker, text) turns."""
    records = map(json.loads, (DEV / name).read_text(encoding="utf-8").splitlines())
    document = next(r["document"] for r in records if r["genre"] == "meeting")
    return [
        tuple(re.split(r"\s*[:：]\s*", line, maxsplit=1)) for line in document.splitlines() if line.strip()
    ]


def _at(k: int, ms: str = "") -> str:
    return f"00:{k * 6 // 60:02d}:{k * 6 % 60:02d}{ms}"


Render = Callable[[list[tuple[str, str]]], str]
FORMATS: dict[str, Render] = {
    "clock in brackets": lambda ts: "\n".join(f"[{_at(k)}] {w}: {t}" for k, (w, t) in enumerate(ts)),
    "bare clock": lambda ts: "\n".join(f"{_at(k)} {w}: {t}" for k, (w, t) in enumerate(ts)),
    "srt": lambda ts: "\n\n".join(
        f"{k + 1}\n{_at(k, ',000')} --> {_at(k + 1, ',000')}\n{w}: {t}" for k, (w, t) in enumerate(ts)
    ),
    "webvtt voices": lambda ts: (
        "WEBVTT\n\n"
        + "\n\n".join(
            f"{_at(k, '.000')} --> {_at(k + 1, '.000')}\n<v {w}>{t}</v>" for k, (w, t) in enumerate(ts)
        )
    ),
    "speaker line, short clock": lambda ts: "\n\n".join(
        f"{w}  {k * 6 // 60}:{k * 6 % 60:02d}\n{t}" for k, (w, t) in enumerate(ts)
    ),
    "speaker line, clock in parentheses": lambda ts: "\n\n".join(
        f"{w} ({_at(k)})\n{t}" for k, (w, t) in enumerate(ts)
    ),
}


async def _summary(text: str, language: str) -> str:
    msgs = map_messages(
        text, title="t", part=1, parts=1, section=None, context="", words=120, language=language
    )
    got = await ExtractiveBackend().complete(
        ChatRequest(model="m", messages=msgs, max_tokens=600, source_text=text)
    )
    return got.content


@pytest.mark.parametrize("name", list(FORMATS))
@pytest.mark.parametrize(("dev", "language"), [("eval_dev_en.jsonl", "en"), ("eval_dev_zh.jsonl", "zh")])
async def test_a_rendered_transcript_is_summarised_as_its_plain_turns(name, dev, language):
    turns = _meeting(dev)
    plain = "\n".join(f"{w}: {t}" for w, t in turns)
    rendered = FORMATS[name](turns)
    # The loader reads it as the plain turns, and so does the backend given the rendering itself.
    assert document_from_text("m.txt", rendered).text == document_from_text("m.txt", plain).text
    expected = await _summary(document_from_text("m.txt", plain).text, language)
    for text in (document_from_text("m.txt", rendered).text, rendered):
        got = await _summary(text, language)
        assert got == expected
        assert not CLOCK.search(got)
    # The transcript path: a summary sentence that opens a named speaker's turn says who speaks.
    assert any(f"{w}: " in expected for w, _ in turns if not w.startswith("说话人"))


def test_srt_cues_that_continue_a_turn_join_it_and_a_voice_tag_names_the_speaker():
    srt = (
        "1\n00:00:01,000 --> 00:00:03,000\nAlice: We should ship the remote\n\n"
        "2\n00:00:03,000 --> 00:00:05,000\nin yellow this spring.\n\n"
        "3\n00:00:05,000 --> 00:00:07,000\nBob: Yellow costs more.\n\n"
        "4\n00:00:07,000 --> 00:00:09,000\nAlice: Only a little.\n"
    )
    assert as_turn_lines(srt) == (
        "Alice: We should ship the remote in yellow this spring.\nBob: Yellow costs more.\nAlice: Only a little."
    )
    vtt = "WEBVTT\nKind: captions\n\n" + "\n\n".join(
        f"00:00:0{k}.000 --> 00:00:0{k + 1}.000 align:start\n<v.loud {w}>{t}</v>"
        for k, (w, t) in enumerate([("Ann Lee", "Hello all."), ("Bo", "Hi."), ("Ann Lee", "Let us start.")])
    )
    assert as_turn_lines(vtt) == "Ann Lee: Hello all.\nBo: Hi.\nAnn Lee: Let us start."


@pytest.mark.parametrize(
    "text",
    [
        # A story with dialogue and times of day, an agenda with a few times, a report, Chinese prose.
        '"It is 10:30," she said.\n\n"Then we leave at 11:00."\n\nHe nodded.\n\nAt 12:15 the train came.',
        "Agenda\n\n09:00 Welcome\n\nThe committee meets in room 4 and takes questions from the public on the budget "
        "for the coming year, which the council adopts in March.\n\nMinutes of the last meeting are approved.",
        "Chapter 2 10:30\n\nThe morning was cold.\n\nChapter 3 11:45\n\nThe night fell.\n\nChapter 4 12:00\n\nEnd.",
        "第一章\n\n早上八点，外公说：“我们走吧。”\n\n他们走到河边，天已经亮了。",
    ],
)
def test_prose_with_times_and_dialogue_is_left_as_it_is(text):
    assert as_turn_lines(text) == text


def test_the_dev_documents_that_are_no_rendered_transcripts_are_left_as_they_are():
    for name in ("eval_dev_en.jsonl", "eval_dev_zh.jsonl"):
        for record in map(json.loads, (DEV / name).read_text(encoding="utf-8").splitlines()):
            assert as_turn_lines(record["document"]) == record["document"]


def test_subtitle_files_load_as_turns(tmp_path):
    path = tmp_path / "standup.srt"
    path.write_text(FORMATS["srt"](_meeting("eval_dev_en.jsonl")), encoding="utf-8")
    text = load_document(path).text
    assert not CLOCK.search(text)
    assert text.startswith("Project Manager: ")


def test_a_speaker_header_may_name_a_riding_and_a_party():
    chair, member = "The Chair (Hon. Anthony Rota (Nipissing, Lib.))", "Mr. Paul Manly (Nanaimo, GP)"
    said = [(chair, "I call this meeting to order."), (member, "Thank you, Chair."), (chair, "Go ahead.")]
    text = "\n\n".join(f"{w} ({_at(k)})\n{t}" for k, (w, t) in enumerate(said))
    assert as_turn_lines(text) == "\n".join(f"{w}: {t}" for w, t in said)
