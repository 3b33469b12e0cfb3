"""The extractive backend uses structure the document states: findings first in reports, none in transcripts."""

from __future__ import annotations

from pipeline.extractive import extract
from pipeline.extractive_prompt import where_in_document
from pipeline.prompts import MergeInput, map_messages, merge_messages
from pipeline.tokens import TiktokenCounter

COUNTER = TiktokenCounter()
TOPIC = "The grant program for rural clinics"
FILLER = [
    f"{TOPIC} funded {n} new clinics in the northern district, and the clinics hired nurses and staff."
    for n in range(3, 40)
]


def _word(n: int) -> str:
    return "".join(chr(97 + (n * 7 + k * 3) % 26) + chr(97 + (n // 26 + k) % 26) for k in range(3))


# Unrelated background: every sentence its own made-up words.
OTHER = [" ".join(_word(n * 5 + k) for k in range(5)).capitalize() + "." for n in range(40)]
FIRST = "The grant program for rural clinics funded new clinics in the district, and the audit praised it."


def _report(first: str) -> str:
    # The findings come first; the text that repeats their words most comes late.
    return f"Highlights\n\n{first}\n\nBackground\n\n" + "\n\n".join(OTHER + FILLER) + "\n"


def test_a_report_keeps_its_findings_first():
    first = FIRST
    text = _report(first)
    with_prior = extract(text, language="en", max_units=21, max_tokens=200, counter=COUNTER, where=(0.0, 1.0))
    without = extract(text, language="en", max_units=21, max_tokens=200, counter=COUNTER)
    assert first in with_prior
    assert first not in without  # the recurring-content score alone prefers the repeated filler


def test_a_late_part_gets_no_boost_and_a_transcript_none_at_all():
    first = FIRST
    # No headings either: the first sentence under a heading has a prior of its own wherever it lies.
    late = extract(
        _report(first).replace("Highlights\n\n", "").replace("Background\n\n", ""),
        language="en",
        max_units=21,
        max_tokens=200,
        counter=COUNTER,
        where=(0.9, 0.1),
    )
    assert first not in late
    turns = "\n".join(f"Speaker {'AB'[i % 2]}: {s}" for i, s in enumerate([first, *FILLER]))
    a = extract(turns, language="en", max_units=21, max_tokens=200, counter=COUNTER, where=(0.0, 1.0))
    b = extract(turns, language="en", max_units=21, max_tokens=200, counter=COUNTER)
    assert a == b


def test_prompts_say_where_their_material_lies():
    en = map_messages("x", title="T", part=3, parts=4, section=None, context="", words=50, language="en")
    zh = map_messages("x", title="T", part=1, parts=2, section=None, context="", words=50, language="zh")
    assert where_in_document(en[1].content) == (0.5, 0.25) and where_in_document(zh[1].content) == (0.0, 0.5)
    parts = [MergeInput(1, None, "a"), MergeInput(2, None, "b")]
    final = merge_messages(parts, title="T", final=True, context="", words=50, language="en")
    middle = merge_messages(parts, title="T", final=False, context="", words=50, language="en")
    assert where_in_document(final[1].content) == (0.0, 1.0) and where_in_document(middle[1].content) is None


def test_talk_without_speaker_labels_gets_no_position_boost():
    # A meeting written down without labels, one sentence a line (VCSum's shape): its talk ("yeah, um") marks it
    # as a meeting, which gets no report's prior on where the material lies in the document (the same text as
    # prose gets it, the test above); a meeting's own opening is one of its learned features
    # (pipeline.extractive_learned), the same wherever the material lies.
    talk = "\n".join(f"Yeah, um, {s[0].lower()}{s[1:]}" for s in [FIRST, *OTHER, *FILLER])
    a = extract(talk, language="en", max_units=25, max_tokens=200, counter=COUNTER, where=(0.0, 1.0))
    b = extract(talk, language="en", max_units=25, max_tokens=200, counter=COUNTER)
    c = extract(talk, language="en", max_units=25, max_tokens=200, counter=COUNTER, where=(0.4, 0.6))
    assert a == b == c


def test_the_prior_reads_each_sentences_place_even_in_one_long_paragraph():
    # Paragraphs given as lines of one block reach the backend as one paragraph: the place is the sentence's.
    text = " ".join([FIRST, *OTHER, *FILLER])
    with_prior = extract(text, language="en", max_units=21, max_tokens=200, counter=COUNTER, where=(0.0, 1.0))
    without = extract(text, language="en", max_units=21, max_tokens=200, counter=COUNTER)
    assert FIRST in with_prior and FIRST not in without


async def test_the_offline_backend_plans_with_its_own_window_not_the_configured_models() -> None:
    from pathlib import Path

    from pipeline.config import load_catalog
    from pipeline.document_runs import summarise_path
    from pipeline.extractive import ExtractiveBackend
    from pipeline.options import SummariseOptions
    from pipeline.runtime import build_runtime

    story = Path(__file__).resolve().parents[1] / "data" / "the_lighthouse_keeper.md"  # ~12k tokens
    assert load_catalog().model("moonshot-v1-8k").context_tokens == 8192
    hosted = build_runtime(
        SummariseOptions(backend="moonshot", model="moonshot-v1-8k", base_url="http://127.0.0.1:9/v1"),
        env={"MOONSHOT_API_KEY": "sk-test"},
    )
    offline = build_runtime(SummariseOptions(backend="extractive", model="moonshot-v1-8k"))
    try:
        assert hosted.model.context_tokens == 8192  # a server's model keeps its window
        assert offline.model.context_tokens == ExtractiveBackend.planning_window
        assert offline.engine.model.context_tokens == ExtractiveBackend.planning_window
        run = await summarise_path(offline, story)
    finally:
        await hosted.aclose()
        await offline.aclose()
    # Planned for the 8k model the story took a tree of calls; in the backend's own window, one part and its merge.
    assert run.outcome.status == "done" and run.outcome.calls <= 2
