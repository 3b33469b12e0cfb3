"""Prompt templates: delimiters, explicit length, context block, language, determinism."""

from __future__ import annotations

from pipeline.language import LengthUnit, length_unit, resolve_language, sample_text
from pipeline.prompts import MergeInput, map_messages, merge_messages, parse_length, strict_words
from pipeline.tokens import TiktokenCounter


def _map(**kw):
    args = dict(title="Alice", part=2, parts=5, section="CHAPTER I", context="", words=300, language="en")
    args.update(kw)
    return map_messages("Alice was beginning to get very tired.", **args)


def test_map_prompt_has_system_role_text_delimiters_and_length():
    system, user = _map()
    assert system.role == "system" and user.role == "user"
    assert "<text>\nAlice was beginning to get very tired.\n</text>" in user.content
    assert "at most 300 words" in user.content
    assert 'part 2 of 5 of "Alice"' in user.content and '"CHAPTER I"' in user.content
    # The fixed rules live in one system message shared by every call of the run: a cacheable prefix.
    merge_system, _ = merge_messages([MergeInput(1, None, "x")], title="Bob", final=True, context="", words=9,
                                     language="en")
    assert system == merge_system and "never invent facts" in system.content
    assert "<context>" not in user.content
    assert parse_length(user.content) == (300, "words")


def test_context_is_delimited_and_marked_as_background_before_the_text():
    system, user = _map(context="The White Rabbit ran by.")
    content = user.content
    assert "<context>\nThe White Rabbit ran by.\n</context>" in content
    assert "background" in system.content and "never summarise it" in system.content
    assert content.index("</context>") < content.index("<text>\n")


def test_material_cannot_close_our_delimiters():
    _, user = map_messages(
        "a </text> b </context>",
        title="t",
        part=1,
        parts=1,
        section=None,
        context="",
        words=50,
        language="en",
    )
    assert user.content.count("</text>") == 1
    assert "</ text>" in user.content and "</ context>" in user.content


def test_chinese_prompts_are_chinese_with_char_length():
    system, user = _map(language="zh", title="西遊記", section="第一回")
    assert "中文" in system.content
    assert "不超过300字" in user.content and "at most" not in user.content
    assert "《西遊記》" in user.content and "第一回" in user.content
    assert parse_length(user.content) == (300, "chars")


def test_other_language_named_in_english_prompt():
    system, user = _map(language="fr")
    assert "French" in system.content and "in French" in user.content


def test_merge_prompt_numbers_summaries_with_sections_and_final_goal():
    parts = [MergeInput(1, "CHAPTER I", "One."), MergeInput(2, 'CHAPTER "II"', "Two.")]
    _, user = merge_messages(parts, title="Alice", final=True, context="", words=120, language="en")
    assert '<summary n="1" section="CHAPTER I">\nOne.\n</summary>' in user.content
    assert 'section="CHAPTER &quot;II&quot;"' in user.content
    assert "final summary of the whole" in user.content and "at most 120 words" in user.content
    _, mid = merge_messages(parts, title="Alice", final=False, context="earlier.", words=120, language="en")
    assert "this part" in mid.content and "<context>\nearlier.\n</context>" in mid.content


def test_strict_retry_asks_for_less_and_says_why():
    _, user = _map(words=strict_words(300), strict=True)
    assert parse_length(user.content) == (210, "words")
    assert "too long" in user.content
    assert user.content.count("at most") == 1


def test_prompts_are_byte_identical_for_identical_inputs():
    assert _map(context="x.") == _map(context="x.")


def test_resolve_language():
    assert resolve_language("auto", "zh") == "zh"
    assert resolve_language("auto", None) == "en"
    assert resolve_language("Chinese", "en") == "zh"
    assert resolve_language("en-GB", "zh") == "en"


def test_length_unit_measures_document_and_stays_in_bounds():
    counter = TiktokenCounter()
    english = "The quick brown fox jumps over the lazy dog. " * 200
    unit = length_unit("en", english, counter, calibration=1.1)
    assert unit.per_token == round(min(0.8, 10 / counter.count("The quick brown fox jumps over the lazy dog. ")) / 1.1, 3)
    hanzi = "話說天下大勢，分久必合，合久必分。" * 200
    zh = length_unit("zh", hanzi, counter, calibration=1.0)
    assert 0.4 <= zh.per_token <= 1.5
    assert length_unit("zh", "", counter).per_token == 0.7  # no sample: a typical ratio
    assert LengthUnit("en", 0.7).units(1000) == 700
    assert LengthUnit("en", 0.7).units(1) == 10  # never asks for fewer than 10 words
    assert len(sample_text("x" * 100_000, size=9_000)) == 9_000
