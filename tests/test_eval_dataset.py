"""Evaluation datasets: field paths, text of values, JSONL loading with presets and overrides, and its errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ConfigError, DatasetError, DocumentNotFoundError, TomeError
from pipeline.evaluation.dataset import (
    PRESETS,
    EvalItem,
    FieldSpec,
    as_text,
    detect_preset,
    field_spec,
    load_dataset,
    select,
)

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
SQUALITY_DEV = CORPUS / "eval" / "squality_v1-3_txt_dev.jsonl"

EN_DOC = "The keeper of the lighthouse was an old man who lived alone with his dog on the rock."
ZH_DOC = "山里的老人每天清晨上山砍柴，傍晚回到小屋里煮饭，日子过得平静而缓慢。"


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def squality_record(passage_id: str, document: str, answers: list[str]) -> dict[str, Any]:
    """A record shaped like SQuALITY v1.3: five questions, the first (the plot) answered by several writers."""
    return {
        "metadata": {"passage_id": passage_id, "uid": f"uid-{passage_id}", "license": "CC"},
        "document": document,
        "questions": [
            {
                "question_text": "What is the plot of the story?",
                "question_number": 1,
                "responses": [{"worker_id": str(i), "uid": f"r{i}", "response_text": a} for i, a in enumerate(answers)],
            },
            {
                "question_text": "Who is the keeper?",
                "question_number": 2,
                "responses": [{"worker_id": "9", "uid": "q2", "response_text": "NOT A PLOT SUMMARY"}],
            },
        ],
    }


def one_line(exc: TomeError) -> str:
    message = str(exc)
    assert "\n" not in message
    assert exc.exit_code == 2
    return message


# --- select ------------------------------------------------------------------------------------------------

RECORD = {
    "a": {"b": "deep", "n": 0},
    "items": ["x", "y", "z"],
    "questions": [
        {"responses": [{"response_text": "one"}, {"response_text": "two"}, {"other": "no text"}]},
        {"responses": [{"response_text": "second question"}]},
    ],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a", [RECORD["a"]]),
        ("a.b", ["deep"]),
        ("a.n", [0]),  # a falsy value is still a value
        ("items[0]", ["x"]),
        ("items[2]", ["z"]),
        ("items[]", ["x", "y", "z"]),
        ("questions[0].responses[].response_text", ["one", "two"]),
        ("questions[].responses[].response_text", ["one", "two", "second question"]),
        ("questions[1].responses[0].response_text", ["second question"]),
        ("missing", []),
        ("a.missing", []),
        ("a.b.c", []),  # a string has no keys
        ("items[3]", []),  # out of range
        ("a[0]", []),  # a dict is not a list
        ("items.b", []),  # a list has no keys
        ("missing[]", []),
    ],
)
def test_select_follows_field_paths(path: str, expected: list[Any]) -> None:
    assert select(RECORD, path) == expected


def test_select_on_a_list_record() -> None:
    assert select([{"t": 1}, {"t": 2}], "[].t") == [1, 2]
    assert select([{"t": 1}, {"t": 2}], "[1].t") == [2]


# --- as_text -----------------------------------------------------------------------------------------------


def test_as_text_of_strings_lists_and_scalars() -> None:
    assert as_text("  kept as is  ") == "  kept as is  "
    assert as_text(None) == ""
    assert as_text(["first line", "", "  ", "second line"]) == "first line\nsecond line"
    assert as_text([["nested", "lists"], "end"]) == "nested\nlists\nend"
    assert as_text(42) == "42"


def test_as_text_of_utterances_with_speakers() -> None:
    transcript = [
        {"speaker": "Alice", "text": "We should ship on Friday."},
        {"role": "Bob", "content": "Only if the tests pass."},
        {"text": "Nobody said this one aloud."},
        {"speaker": "Carol", "text": ""},  # an empty utterance is dropped, speaker and all
        {"speaker": "Dan"},  # no text at all
    ]
    assert as_text(transcript) == (
        "Alice: We should ship on Friday.\nBob: Only if the tests pass.\nNobody said this one aloud."
    )
    assert as_text({"speaker": "Eve", "text": ["two", "lines"]}) == "Eve: two\nlines"
    assert as_text({"no": "text key"}) == ""


# --- presets and field specs -------------------------------------------------------------------------------


def test_detect_preset_from_the_record_shape() -> None:
    assert detect_preset(squality_record("1", EN_DOC, ["a plot"])) == "squality"
    assert detect_preset({"document": EN_DOC, "references": ["r"]}) == "plain"
    assert detect_preset(["not", "a", "dict"]) == "plain"


def test_field_spec_overrides_only_what_is_named() -> None:
    assert field_spec(None) is None
    spec = field_spec(None, document="body.full")
    assert spec == FieldSpec(document=("body.full",), references=PRESETS["plain"].references, id=PRESETS["plain"].id, name="plain+fields")
    sq = field_spec("squality", id="metadata.uid")
    assert sq is not None
    assert sq.document == ("document",)
    assert sq.references == ("questions[0].responses[].response_text",)
    assert sq.id == ("metadata.uid",)
    assert field_spec("plain") == PRESETS["plain"]
    assert sq.describe() == {
        "document": ["document"],
        "document_path": ["document_path", "path", "file"],
        "references": ["questions[0].responses[].response_text"],
        "id": ["metadata.uid"],
    }


def test_unknown_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        field_spec("cnn_dailymail")
    message = one_line(info.value)
    assert "cnn_dailymail" in message
    assert "plain" in message and "squality" in message


# --- load_dataset ------------------------------------------------------------------------------------------


def test_squality_records_are_detected_and_read(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "sq.jsonl",
        [
            squality_record("63833", EN_DOC, ["Plot one.", "Plot two.", "  ", "Plot three."]),
            squality_record("51150", EN_DOC + " Again.", ["Another plot."]),
        ],
    )
    items, used = load_dataset(path)
    assert used == "squality"
    assert items[0] == EvalItem(
        id="63833", document=EN_DOC, references=("Plot one.", "Plot two.", "Plot three."), language="en"
    )
    assert [i.id for i in items] == ["63833", "51150"]
    assert items[1].references == ("Another plot.",)  # only the plot question's answers


def test_plain_records_with_document_and_references(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "plain.jsonl",
        [
            {"id": "doc-a", "document": f"  {EN_DOC}  ", "references": ["First reference.", " Second. "]},
            {"id": 7, "document": EN_DOC, "references": "A single reference."},
            {"document": EN_DOC, "references": ["No id here."]},
        ],
    )
    items, used = load_dataset(path)
    assert used == "plain"
    assert items[0].id == "doc-a"
    assert items[0].document == EN_DOC  # stripped
    assert items[0].references == ("First reference.", "Second.")
    assert items[1].id == "7"
    assert items[1].references == ("A single reference.",)
    assert items[2].id == "3"  # no id: the line number


def test_alternative_names_report_summary_and_transcript(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "alt.jsonl",
        [
            {"doc_id": "gov-1", "report": EN_DOC, "summary": "The report's summary."},
            {
                "meeting_id": "ES2002a",
                "transcript": [
                    {"speaker": "Project Manager", "text": "Let us start the kick-off meeting."},
                    {"speaker": "Marketing", "text": "The remote control must look fancy."},
                ],
                "summaries": ["They discussed the remote.", "A kick-off meeting."],
            },
        ],
    )
    items, used = load_dataset(path)
    assert used == "plain"
    assert (items[0].id, items[0].document, items[0].references) == ("gov-1", EN_DOC, ("The report's summary.",))
    assert items[1].id == "ES2002a"
    assert items[1].document == (
        "Project Manager: Let us start the kick-off meeting.\nMarketing: The remote control must look fancy."
    )
    assert items[1].references == ("They discussed the remote.", "A kick-off meeting.")


def test_govreport_records_with_nested_sections_and_a_summary_in_paragraphs(tmp_path: Path) -> None:
    # GovReport's own files: a CRS report's "reports" and a GAO report's "report" are trees of sections; the
    # CRS "summary" and the GAO "highlight" are one summary each, given as paragraphs or sections.
    section = {
        "section_title": "Background",
        "paragraphs": ["The agency spent $5 billion in 2020.", "It met most goals."],
        "subsections": [{"section_title": "Delays", "paragraphs": ["Three regions were late."], "subsections": []}],
    }
    path = write_jsonl(
        tmp_path / "govreport.jsonl",
        [
            {"id": "R1", "reports": section, "summary": ["The report reviews spending.", "It finds delays."]},
            {
                "id": "GAO-1",
                "report": [section, {"section_title": "Agency Comments", "paragraphs": ["The agency agreed."]}],
                "highlight": [
                    {"section_title": "What GAO Found", "paragraphs": ["Delays in three regions."]},
                    {"section_title": "What GAO Recommends", "paragraphs": ["Track the regions."]},
                ],
            },
        ],
    )
    items, used = load_dataset(path)
    assert used == "plain"
    body = "Background\n\nThe agency spent $5 billion in 2020.\n\nIt met most goals.\n\nDelays\n\nThree regions were late."
    assert items[0].document == body
    assert items[0].references == ("The report reviews spending.\n\nIt finds delays.",)
    assert items[1].document == body + "\n\nAgency Comments\n\nThe agency agreed."
    assert items[1].references == (
        "What GAO Found\n\nDelays in three regions.\n\nWhat GAO Recommends\n\nTrack the regions.",
    )


def test_a_tree_of_sections_with_titles_only_is_no_document(tmp_path: Path) -> None:
    empty = {"section_title": "Background", "paragraphs": [], "subsections": [{"section_title": "Delays", "paragraphs": [" "]}]}
    path = write_jsonl(tmp_path / "empty.jsonl", [{"id": "R1", "reports": empty, "summary": ["A summary."]}])
    with pytest.raises(DatasetError, match="has no document text"):
        load_dataset(path)


def test_field_overrides(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "custom.jsonl",
        [
            {
                "key": "k1",
                "body": {"full": EN_DOC, "abstract": "NOT THE REFERENCE"},
                "gold": [{"summary": "Gold one."}, {"summary": "Gold two."}],
                "references": ["NOT THESE EITHER"],
            }
        ],
    )
    spec = field_spec(None, document="body.full", references="gold[].summary", id="key")
    items, used = load_dataset(path, fields=spec)
    assert used == "plain+fields"
    assert items == [EvalItem(id="k1", document=EN_DOC, references=("Gold one.", "Gold two."), language="en")]


def test_a_document_path_with_brackets_keeps_every_value(tmp_path: Path) -> None:
    # `transcript[].text` names every utterance's text: the document is all of them, not the first one.
    path = write_jsonl(
        tmp_path / "utterances.jsonl",
        [
            {
                "id": "m1",
                "transcript": [{"speaker": "A", "text": "Hello there, everyone."}, {"speaker": "B", "text": "We ship on Friday."}],
                "summary": "They plan to ship on Friday.",
            }
        ],
    )
    items, _ = load_dataset(path, fields=field_spec(None, document="transcript[].text"))
    assert items[0].document == "Hello there, everyone.\nWe ship on Friday."


def test_limit_takes_the_first_records_and_skips_blank_lines(tmp_path: Path) -> None:
    records = [{"id": f"r{i}", "document": f"{EN_DOC} {i}", "references": [f"ref {i}"]} for i in range(5)]
    path = tmp_path / "five.jsonl"
    path.write_text("\n\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    assert [i.id for i in load_dataset(path)[0]] == ["r0", "r1", "r2", "r3", "r4"]
    assert [i.id for i in load_dataset(path, limit=2)[0]] == ["r0", "r1"]
    assert [i.id for i in load_dataset(path, limit=50)[0]] == ["r0", "r1", "r2", "r3", "r4"]


def test_limit_stops_before_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "tail.jsonl"
    path.write_text(json.dumps({"document": EN_DOC, "references": ["r"]}) + "\n{broken\n", encoding="utf-8")
    assert len(load_dataset(path, limit=1)[0]) == 1


def test_language_is_detected_per_record(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"id": "en", "document": EN_DOC, "references": ["An old keeper."]},
            {"id": "zh", "document": ZH_DOC, "references": ["老人在山里生活。"]},
        ],
    )
    items, _ = load_dataset(path)
    assert {i.id: i.language for i in items} == {"en": "en", "zh": "zh"}
    assert items[1].references == ("老人在山里生活。",)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"id": "b", "document": EN_DOC, "references": ["r"]}).encode())
    assert load_dataset(path)[0][0].id == "b"


# --- errors ------------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentNotFoundError) as info:
        load_dataset(tmp_path / "nope.jsonl")
    assert "nope.jsonl" in one_line(info.value)


def test_a_directory_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DocumentNotFoundError):
        load_dataset(tmp_path)


def test_a_line_that_is_not_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"document": EN_DOC, "references": ["r"]})
    path.write_text(f"{good}\n\nthis is not json\n{good}\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = one_line(info.value)
    assert f"{path}:3" in message
    assert "not JSON" in message


def test_a_record_without_references(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "norefs.jsonl",
        [
            {"document": EN_DOC, "references": ["fine"]},
            {"document": EN_DOC, "references": ["", "   "]},
        ],
    )
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = one_line(info.value)
    assert f"{path}:2" in message
    assert "--references-field" in message


def test_a_record_without_a_document(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "nodoc.jsonl", [{"body": EN_DOC, "references": ["r"]}])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = one_line(info.value)
    assert f"{path}:1" in message
    assert "--document-field" in message


def test_a_record_that_is_not_an_object(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "list.jsonl", [["a", "list"]])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert f"{path}:1" in one_line(info.value)


def test_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert "no records" in one_line(info.value)


def test_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps({"document": "café crème", "references": ["r"]}, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    message = one_line(info.value)
    assert str(path) in message
    assert "UTF-8" in message


# --- the real SQuALITY dev split -----------------------------------------------------------------------------


@pytest.mark.corpus
def test_squality_dev_split_from_the_corpus() -> None:
    if not SQUALITY_DEV.is_file():
        pytest.skip("../shared/corpus/eval/squality_v1-3_txt_dev.jsonl is absent")
    items, used = load_dataset(SQUALITY_DEV)
    assert used == "squality"
    assert len(items) == 25
    assert all(len(i.references) == 4 for i in items)
    assert len({i.id for i in items}) == 25
    assert all(i.id.isdigit() for i in items)  # metadata.passage_id
    assert all(i.language == "en" for i in items)
    assert all(len(i.document.split()) > 2000 for i in items)
    assert load_dataset(SQUALITY_DEV, limit=3)[0] == items[:3]


def test_a_record_may_name_its_document_file(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "story.md").write_text("# A Story\n\n" + EN_DOC, encoding="utf-8")
    path = write_jsonl(
        tmp_path / "set.jsonl", [{"id": "s", "document_path": "docs/story.md", "references": ["An old keeper."]}]
    )
    items, used = load_dataset(path)
    assert used == "plain"
    assert EN_DOC.split()[0] in items[0].document and items[0].language == "en"


def test_a_missing_document_file_is_a_one_line_dataset_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "set.jsonl", [{"document_path": "nowhere.txt", "references": ["r"]}])
    with pytest.raises(DatasetError) as info:
        load_dataset(path)
    assert "nowhere.txt" in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_a_json_array_of_records_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "set.json"
    records = [{"id": "a", "document": EN_DOC, "references": ["x"]}, {"id": "b", "document": ZH_DOC, "summary": "老人"}]
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    items, _ = load_dataset(path)
    assert [i.id for i in items] == ["a", "b"]
    assert items[1].references == ("老人",) and items[1].language == "zh"


def test_qmsum_records_are_detected_and_read_as_speaker_turns(tmp_path: Path) -> None:
    record = {
        "meeting_transcripts": [
            {"speaker": "Project Manager", "content": "Let us fix the budget for the remote control today."},
            {"speaker": "Marketing", "content": "Twelve euros per unit is the most we can spend on it."},
        ],
        "general_query_list": [{"query": "Summarize the whole meeting.", "answer": "The team set the budget."}],
        "specific_query_list": [{"query": "What did Marketing say?", "answer": "Twelve euros."}],
    }
    path = write_jsonl(tmp_path / "qmsum.jsonl", [record])
    items, used = load_dataset(path)
    assert used == "qmsum"
    assert items[0].document.splitlines() == [
        "Project Manager: Let us fix the budget for the remote control today.",
        "Marketing: Twelve euros per unit is the most we can spend on it.",
    ]
    assert items[0].references == ("The team set the budget.",)
