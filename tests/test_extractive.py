"""The offline extractive backend: ranking, length, markers, CJK, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.extractive import ExtractiveBackend, extract, rank_sentences
from pipeline.language import count_units
from pipeline.llm.types import ChatRequest
from pipeline.prompts import map_messages
from pipeline.sentences import split_sentences
from pipeline.tokens import TiktokenCounter

COUNTER = TiktokenCounter()
TEXT = (
    "The cat sat on the mat. The cat chased the mouse around the mat. Stocks fell sharply on Monday. "
    "The mouse escaped from the cat under the mat. Weather was mild. The cat slept on the mat at last."
)


def test_rank_prefers_central_sentences():
    sentences = split_sentences(TEXT)
    scores = rank_sentences(sentences, cjk=False)
    ranked = sorted(range(len(sentences)), key=lambda i: -scores[i])
    assert sentences[ranked[-1]] in {"Stocks fell sharply on Monday.", "Weather was mild."}
    assert "cat" in sentences[ranked[0]]


def test_extract_keeps_order_length_and_is_deterministic():
    out = extract(TEXT, language="en", max_units=20, max_tokens=100, counter=COUNTER)
    assert 0 < count_units(out, "en") <= 20
    positions = [TEXT.index(s) for s in split_sentences(out)]
    assert positions == sorted(positions)
    assert out == extract(TEXT, language="en", max_units=20, max_tokens=100, counter=COUNTER)


def test_markers_always_survive():
    text = " ".join(f"⟦C{i:04d}⟧ Filler sentence number {i} about nothing much." for i in range(30))
    out = extract(text, language="en", max_units=15, max_tokens=60, counter=COUNTER)
    for i in range(30):
        assert f"⟦C{i:04d}⟧" in out
    assert out.index("⟦C0003⟧") < out.index("⟦C0017⟧")


def test_cjk_extraction_counts_characters():
    zh = "孫悟空大鬧天宮。玉帝請來如來佛祖。如來佛祖把孫悟空壓在五行山下。天氣很好。五百年後唐僧路過五行山。"
    out = extract(zh, language="zh", max_units=30, max_tokens=200, counter=COUNTER)
    assert 0 < count_units(out, "zh") <= 30
    assert " " not in out


async def test_backend_reads_length_from_prompt_and_reports_local_usage():
    backend = ExtractiveBackend()
    msgs = map_messages(TEXT, title="t", part=1, parts=1, section=None, context="", words=20, language="en")
    req = ChatRequest(model="m", messages=msgs, max_tokens=200, source_text=TEXT)
    got = await backend.complete(req)
    assert got.finish_reason == "stop"
    assert 0 < count_units(got.content, "en") <= 20
    assert got.usage.completion_tokens == COUNTER.count(got.content)
    assert got.usage.prompt_tokens == sum(COUNTER.count(m.content) for m in msgs)
    assert (await backend.complete(req)).content == got.content


async def test_backend_without_source_text_reads_the_prompt_text():
    backend = ExtractiveBackend()
    msgs = map_messages(
        TEXT, title="t", part=1, parts=1, section=None, context="Ignore me entirely.", words=25, language="en"
    )
    got = await backend.complete(ChatRequest(model="m", messages=msgs, max_tokens=200))
    assert got.content and "cat" in got.content


def test_real_book_chunk_is_fast_and_bounded(corpus: Path):
    text = (corpus / "books" / "en_alice_in_wonderland_pg11.txt").read_text(encoding="utf-8")[5000:25000]
    out = extract(text, language="en", max_units=200, max_tokens=400, counter=COUNTER)
    assert 100 <= count_units(out, "en") <= 200


@pytest.mark.parametrize("words", [10, 50])
def test_overlong_single_sentence_is_cut(words: int):
    text = "word " * 500 + "end."
    out = extract(text, language="en", max_units=words, max_tokens=1000, counter=COUNTER)
    assert 0 < count_units(out, "en") <= words


def test_material_is_the_delimited_text_not_the_instructions():
    from pipeline.extractive_prompt import material
    from pipeline.prompts import MergeInput, merge_messages

    msgs = map_messages(
        "Body here.", title="t", part=1, parts=2, section=None, context="Ctx.", words=25, language="en"
    )
    assert material(msgs[1].content) == "Body here."
    merged = merge_messages(
        [MergeInput(1, "A", "One."), MergeInput(2, None, "Two.")],
        title="t",
        final=True,
        context="Ctx.",
        words=30,
        language="en",
    )
    assert material(merged[1].content) == "One.\n\nTwo."


def test_headings_are_not_run_into_the_summary() -> None:
    from pipeline.extractive import extract
    from pipeline.tokens import TiktokenCounter

    zh = "山居记\n\n第一章 进山\n\n周远十二岁那年的暑假，是在青石村过的。外公来接他。\n\n第二章 旧学堂\n\n学堂很旧。"
    out = extract(zh, language="zh", max_units=200, max_tokens=400, counter=TiktokenCounter())
    assert "第一章" not in out and "山居记" not in out and "周远十二岁" in out
    en = "# The Keeper\n\n## Chapter 1: The Light\n\nElias kept the light every night. He wrote the weather in the log."
    out = extract(en, language="en", max_units=50, max_tokens=100, counter=TiktokenCounter())
    assert "#" not in out and "Chapter 1" not in out and "Elias kept the light every night." in out


def test_transcript_turns_are_sentences_and_speaker_labels_are_not_content():
    # Turns without final punctuation must not run into the next speaker's; a frequent speaker's label must not
    # make all their lines look central. A turn's first sentence keeps its speaker when the label names them.
    transcript = "\n".join(
        [
            "Project Manager: okay so um let's start",
            "Marketing: the budget is twelve euros per unit and the budget is the main constraint",
            "Project Manager: right",
            "Industrial Designer: the rubber case would cost more than the budget allows per unit",
            "Project Manager: so plastic then",
            "Project Manager: and lunch is at noon today for everyone in the team",
        ]
    )
    out = extract(transcript, language="en", max_units=34, max_tokens=200, counter=COUNTER)
    assert out.startswith("Marketing: The budget is twelve euros")
    assert "Industrial Designer: The rubber case would cost more" in out
    assert "lunch" not in out and "let's start" not in out
    # Labels that only number the speakers ("Speaker 2:") tell a reader nothing: the same summary without them.
    numbered = transcript.replace("Project Manager:", "Speaker 1:").replace("Marketing:", "Speaker 2:")
    numbered = numbered.replace("Industrial Designer:", "Speaker 3:")
    out = extract(numbered, language="en", max_units=30, max_tokens=200, counter=COUNTER)
    assert out.startswith("The budget is twelve euros") and "The rubber case would cost more" in out
    assert "Speaker" not in out


def test_transcript_noise_is_cleaned_and_backchannels_dropped():
    # QMSum-style turns (one paragraph each, as the loader keeps them): annotations, fillers, stutters and
    # spelled acronyms never reach the summary; "Mm-hmm ." and "Okay . Yeah ." are not content.
    turns = [
        "Project Manager: Um so {vocalsound} we we need a a remote for the T_V_ only , you know , and uh cheap .",
        "Marketing: Mm-hmm .",
        "Industrial Designer: Okay . Yeah .",
        "User Interface: The L_C_D_ display would um {disfmarker} would double the price of the the battery .",
        "Marketing: {vocalsound}",
        "Project Manager: Marketing wants a younger audience who zap between channels all evening .",
        "Industrial Designer: Right .",
    ]
    out = extract("\n\n".join(turns), language="en", max_units=200, max_tokens=400, counter=COUNTER)
    assert "Project Manager: So we need a remote for the TV only, and cheap." in out
    assert "User Interface: The LCD display would double the price of the battery." in out
    for noise in ("{", "Um", " um ", " uh ", "you know", "the the", "Mm-hmm", "Okay", "Right", "T_V_"):
        assert noise not in out, noise


def test_report_boilerplate_is_not_summary_material():
    report = (
        "The agency paid 2.1 billion dollars in improper payments in 2018, most of them to ineligible vendors. "
        "We conducted this performance audit from May 2018 to March 2019 in accordance with generally accepted "
        "government auditing standards. Ineligible vendors received payments because the agency never checked "
        "vendor eligibility against the exclusion list before paying. Background ........................ 4"
    )
    out = extract(report, language="en", max_units=200, max_tokens=400, counter=COUNTER)
    assert "improper payments" in out and "exclusion list" in out
    assert "performance audit" not in out and "Background" not in out


def test_report_sections_open_with_what_they_found():
    # With the document's position known (a final call), the first sentence under each heading outranks a
    # later one of its section that says as much: a report's sections state their finding first.
    report = "\n\n".join(
        [
            "Payment Integrity",
            "Background",
            "Payment errors at the agency reached two billion dollars in fiscal year 2019, most of them to "
            "ineligible vendors.",
            "Payment errors at the agency were also reviewed by outside auditors in fiscal year 2019 and in "
            "earlier years.",
            "Oversight",
            "Auditors found that the agency never checked vendor eligibility against the exclusion list before "
            "paying vendors.",
            "Auditors found that vendor eligibility checks against the exclusion list were also missing at two "
            "other agencies.",
        ]
    )
    out = extract(
        report, language="en", max_units=36, max_tokens=400, counter=COUNTER, unit="words", where=(0.0, 1.0)
    )
    assert "two billion dollars" in out and "never checked vendor eligibility" in out
    assert "two other agencies" not in out and "outside auditors" not in out


def test_spoken_chinese_discourse_words_are_not_topics():
    # "其实", "然后", "就是", "这个" fill every sentence of a Chinese talk; the topic is elsewhere.
    from pipeline.extractive import _features

    feats = _features("其实然后就是这个青岚手表的续航问题。", cjk=True)
    assert not {"其实", "然后", "就是", "这个"} & feats and {"续航", "手表"} <= feats
