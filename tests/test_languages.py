"""Any language: detection, prompts naming the language, sentences, and extractive summaries in the document's
language, through `tome plan` and `tome summarise --backend extractive`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.documents import load_document
from pipeline.language import LANGUAGES, count_units, detect_language, language_name, length_unit
from pipeline.prompts import map_messages, parse_length
from pipeline.sentences import split_sentences
from pipeline.tokens import TiktokenCounter

STORIES = Path(__file__).parent / "fixtures" / "languages"
CODES = sorted(p.stem for p in STORIES.glob("*.txt"))
runner = CliRunner()


def test_at_least_twenty_languages_have_names_and_the_fixtures_cover_eight_scripts() -> None:
    assert len(LANGUAGES) >= 20
    assert language_name("fr") == "French" and language_name("ru") == "Russian"
    assert len(CODES) >= 8
    assert {LANGUAGES[c].script for c in CODES} >= {"latin", "cyrillic", "greek", "arabic", "hebrew",
                                                    "devanagari", "japanese", "hangul", "han"}  # fmt: skip


@pytest.mark.parametrize("code", CODES)
def test_document_language_detected(code: str) -> None:
    doc = load_document(STORIES / f"{code}.txt")
    assert doc.language == code
    body = doc.text.split("\n\n", 1)[1]
    # Eight sentences in every version of the story (two paragraphs of four).
    assert len(split_sentences(body)) == 8, split_sentences(body)


@pytest.mark.parametrize("code", CODES)
def test_plan_reports_the_language(code: str) -> None:
    result = runner.invoke(app, ["plan", str(STORIES / f"{code}.txt"), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["document"]["language"] == code


@pytest.mark.parametrize("code", CODES)
def test_extractive_summary_is_in_the_documents_language(code: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOME_HOME", str(tmp_path / "home"))
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        ["summarise", "--no-prefect", "--backend", "extractive", "--no-progress", "--length", "short",
         "-o", str(out), str(STORIES / f"{code}.txt")],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = json.loads((out / f"{code}.summary.json").read_text(encoding="utf-8"))
    assert payload["language"] == code
    assert payload["final"].strip()
    assert detect_language(payload["final"]) == code


@pytest.mark.parametrize("code", ["fr", "de", "ru", "ja", "ko", "ar"])
def test_prompts_ask_for_the_language_by_name_and_the_right_unit(code: str) -> None:
    messages = map_messages("text", title="T", part=1, parts=1, section=None, context="", words=120, language=code)
    user = messages[-1].content
    assert f"in {language_name(code)}" in user
    assert parse_length(user) == (120, "chars" if code in ("ja", "ko") else "words")


def test_chinese_keeps_its_own_template() -> None:
    user = map_messages("文本", title="书", part=1, parts=1, section=None, context="", words=300, language="zh")[-1]
    assert "不超过300字" in user.content and parse_length(user.content) == (300, "chars")


@pytest.mark.parametrize("code", CODES)
def test_words_per_token_measured_in_range(code: str) -> None:
    text = (STORIES / f"{code}.txt").read_text(encoding="utf-8") * 3
    unit = length_unit(code, text, TiktokenCounter())
    assert count_units(text, code) > 0
    assert 0.08 <= unit.per_token <= 1.5


def test_short_or_letterless_text_is_undetermined() -> None:
    assert detect_language("12345 67890 !!!") == "und"
    assert detect_language("ok") == "und"
