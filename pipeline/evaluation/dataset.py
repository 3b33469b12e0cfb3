"""Evaluation sets: JSONL records of a document and its human reference summaries, read by field paths.

A field path names where a value lives in a record: ``document``, ``metadata.passage_id``,
``questions[0].responses[].response_text`` (``[N]`` picks one element, ``[]`` takes every element).
A record may instead name its document's file (``document_path``, relative to the dataset): any format
tome reads (txt, md, pdf, epub).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, DatasetError, DocumentError, DocumentNotFoundError
from pipeline.language import detect_language

_STEP = re.compile(r"([^.\[\]]+)|\[(\d*)\]")
# Keys that hold an utterance's text in meeting transcripts given as lists of objects.
_TEXT_KEYS = ("text", "content", "utterance", "response_text", "summary", "sentence", "value")
_SPEAKER_KEYS = ("speaker", "role", "name", "speaker_name")
# A section given as an object (GovReport's CRS and GAO files): its title, its paragraphs, its subsections.
_TITLE_KEYS = ("section_title", "title", "heading")
_SECTION_KEYS = ("subsections", "sections", "children")
# These reference fields hold one summary, even as a list of its paragraphs or sections (GovReport's "summary":
# [...] and "highlight": [...], arXiv's "abstract"); "references", "summaries" and the like hold several.
_ONE_SUMMARY = frozenset({"summary", "abstract", "highlight", "highlights", "overall_summary", "gold_summary"})


@dataclass(frozen=True)
class FieldSpec:
    """Where a record keeps its document, its references and its id (each a list of candidate paths)."""

    document: tuple[str, ...]
    references: tuple[str, ...]
    id: tuple[str, ...] = ("id",)
    name: str = "custom"
    document_path: tuple[str, ...] = ("document_path", "path", "file")
    # Query-focused data: a path to a list of query objects, each an item of its own, summarised with --focus set
    # to its question (at ``query_text`` in the object) and scored against its answers (at ``query_answers``).
    queries: tuple[str, ...] = ()
    query_text: str = "query"
    query_answers: str = "answer"

    def describe(self) -> dict[str, list[str]]:
        return {
            "document": list(self.document),
            "document_path": list(self.document_path),
            "references": list(self.references),
            "id": list(self.id),
        }


PRESETS: dict[str, FieldSpec] = {
    # SQuALITY v1.3: questions[0] is always "What is the plot of the story?", answered by four writers.
    "squality": FieldSpec(
        document=("document",),
        references=("questions[0].responses[].response_text",),
        id=("metadata.passage_id", "metadata.uid"),
        name="squality",
    ),
    # QMSum: the meeting's turns, and the answer to its general query ("Summarize the whole meeting.").
    "qmsum": FieldSpec(
        document=("meeting_transcripts",),
        references=("general_query_list[].answer",),
        id=("id", "meeting_id"),
        name="qmsum",
    ),
    # QMSum's specific queries ("What did the group discuss about the remote's buttons?"): one item per query,
    # summarised with the query as its focus, scored against that query's answer.
    "qmsum-specific": FieldSpec(
        document=("meeting_transcripts",),
        references=("specific_query_list[].answer",),
        id=("id", "meeting_id"),
        name="qmsum-specific",
        queries=("specific_query_list[]",),
    ),
    # SQuALITY's other questions ("What is the relationship between Kovac and Arkady?"), four answers each:
    # query-focused summaries of the same stories. questions[0] is the plot, which the squality preset scores.
    "squality-questions": FieldSpec(
        document=("document",),
        references=("questions[].responses[].response_text",),
        id=("metadata.passage_id", "metadata.uid"),
        name="squality-questions",
        queries=("questions[]",),
        query_text="question_text",
        query_answers="responses[].response_text",
    ),
    "plain": FieldSpec(
        document=(
            "document", "text", "article", "report", "reports", "transcript", "meeting_transcripts", "context",
            "dialogue", "source", "content", "story", "passage", "input", "src",
        ),
        references=(
            "references", "reference", "summaries", "summary", "overall_summary", "gold_summary", "abstract",
            "target", "highlights", "highlight", "output", "tgt",
        ),
        id=("id", "uid", "doc_id", "document_id", "meeting_id"),
        name="plain",
    ),
}


@dataclass(frozen=True)
class EvalItem:
    """One document with its human references."""

    id: str
    document: str
    references: tuple[str, ...]
    language: str
    focus: str = ""  # the question a query-focused item is summarised for ("" = a plain summary)


def select(record: Any, path: str) -> list[Any]:
    """Every value at ``path`` in ``record`` (an empty list when the path leads nowhere)."""
    values = [record]
    for name, index in _STEP.findall(path):
        step: list[Any] = []
        for value in values:
            if name:
                if isinstance(value, dict) and name in value:
                    step.append(value[name])
            elif isinstance(value, list):
                if index == "":
                    step.extend(value)
                elif int(index) < len(value):
                    step.append(value[int(index)])
        values = step
    return values


def as_text(value: Any) -> str:
    """A value as prose: strings as they are, lists line by line, utterance objects as "speaker: text"."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        sections = bool(value) and all(isinstance(v, dict) and isinstance(v.get("paragraphs"), list) for v in value)
        return ("\n\n" if sections else "\n").join(t for t in (as_text(v) for v in value) if t.strip())
    if isinstance(value, dict) and isinstance(value.get("paragraphs"), list):
        return _section_text(value)
    if isinstance(value, dict):
        text = next((value[k] for k in _TEXT_KEYS if isinstance(value.get(k), str | list)), None)
        if text is None:
            return ""
        speaker = next((value[k] for k in _SPEAKER_KEYS if isinstance(value.get(k), str)), None)
        body = as_text(text)
        return f"{speaker}: {body}" if speaker and body else body
    return str(value)


def _section_text(section: dict[str, Any]) -> str:
    """A section object as text: its title on a line of its own, then its paragraphs and subsections, apart."""
    title = next((section[k] for k in _TITLE_KEYS if isinstance(section.get(k), str)), "")
    parts = [as_text(p).strip() for p in section["paragraphs"]]
    for key in _SECTION_KEYS:
        children = section.get(key)
        parts += [as_text(c).strip() for c in children] if isinstance(children, list) else []
    body = [p for p in parts if p]
    # Titles without a paragraph under them are no text: such a document is refused as empty, not scored.
    return "\n\n".join([title.strip(), *body] if title.strip() else body) if body else ""


def _references(values: list[Any], *, one: bool = False) -> list[str]:
    """The reference summaries among ``values``; ``one``: a list is one summary in paragraphs, not several."""
    if one:
        values = ["\n\n".join(as_text(x).strip() for x in v) if isinstance(v, list) else v for v in values]
    refs: list[str] = []
    for value in values:
        if isinstance(value, list) and all(isinstance(v, str | dict) for v in value):
            refs.extend(as_text(v) for v in value)  # a list of references, not one reference in lines
        else:
            refs.append(as_text(value))
    return [r.strip() for r in refs if r.strip()]


def _first(record: dict[str, Any], paths: tuple[str, ...]) -> list[Any]:
    return _first_at(record, paths)[1]


def _first_at(record: dict[str, Any], paths: tuple[str, ...]) -> tuple[str, list[Any]]:
    """The first of ``paths`` that leads somewhere in ``record``, and what it finds there."""
    for path in paths:
        found = select(record, path)
        if found:
            return path, found
    return "", []


def detect_preset(record: Any) -> str:
    """The preset a record's shape suggests: "squality" or "qmsum" when their fields are there, else "plain"."""
    for name in ("squality", "qmsum"):
        spec = PRESETS[name]
        if isinstance(record, dict) and select(record, spec.document[0]) and select(record, spec.references[0]):
            return name
    return "plain"


def field_spec(
    preset: str | None,
    *,
    document: str | None = None,
    references: str | None = None,
    id: str | None = None,
) -> FieldSpec | None:
    """The preset's fields with any of them overridden; None means "detect the preset from the data"."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"Unknown dataset preset '{preset}'. Known presets: {', '.join(sorted(PRESETS))}.")
    if preset is None and not (document or references or id):
        return None
    base = PRESETS[preset or "plain"]
    overridden = bool(document or references or id)
    return FieldSpec(
        document=(document,) if document else base.document,
        references=(references,) if references else base.references,
        id=(id,) if id else base.id,
        name=f"{base.name}+fields" if overridden else base.name,
        queries=base.queries,
        query_text=base.query_text,
        query_answers=base.query_answers,
    )


def load_dataset(
    path: Path, *, fields: FieldSpec | None = None, limit: int | None = None
) -> tuple[list[EvalItem], str]:
    """The items of a JSONL file (or a JSON array of records; the first ``limit``) and the fields' name.

    Raises:
        DocumentNotFoundError: no such file.
        DatasetError: a line is not JSON, or a record has no document or no reference.
    """
    if not path.is_file():
        raise DocumentNotFoundError(f"{path}: no such dataset file.")
    items: list[EvalItem] = []
    used = fields.name if fields is not None else ""
    seen: dict[str, int] = {}
    for number, record in _records(path):
        if fields is None:
            used = detect_preset(record)
            fields = PRESETS[used]
        item = _item(record, fields, where=f"{path}:{number}", fallback_id=str(number), folder=path.parent)
        for one in _query_items(record, item, fields, where=f"{path}:{number}"):
            # Ids must be unique (results are keyed by them); a repeated id (one meeting, several queries) gets #2.
            seen[one.id] = seen.get(one.id, 0) + 1
            if seen[one.id] > 1:
                one = replace(one, id=f"{one.id}#{seen[one.id]}")
            items.append(one)
            if limit is not None and len(items) >= limit:
                break
        if limit is not None and len(items) >= limit:
            break  # before the next line is even parsed
    if not items:
        raise DatasetError(f"{path} holds no records.")
    return items, used


def _records(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, record) pairs; a file holding one JSON array numbers its records from 1 instead."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 JSONL ({exc.reason} at byte {exc.start}).") from None
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path} is not a JSON array of records ({exc.msg}, line {exc.lineno}).") from None
        yield from enumerate(records, 1)
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number} is not JSON ({exc.msg}).") from None


def _item(record: Any, fields: FieldSpec, *, where: str, fallback_id: str, folder: Path) -> EvalItem:
    if not isinstance(record, dict):
        raise DatasetError(f"{where} is not a JSON object.")
    document = as_text(_first(record, fields.document)).strip()
    files = [f for f in _first(record, fields.document_path) if isinstance(f, str) and f.strip()]
    if not document and files:
        document = _read_document(folder / files[0], where=where)
    if not document:
        raise DatasetError(
            f"{where} has no document text at {' | '.join(fields.document)} (nor a file at "
            f"{' | '.join(fields.document_path)}); name it with --document-field."
        )
    at, found = _first_at(record, fields.references)
    refs = _references(found, one=at in _ONE_SUMMARY)
    if not refs:
        raise DatasetError(
            f"{where} has no reference summary at {' | '.join(fields.references)}; name it with --references-field."
        )
    ids = _first(record, fields.id)
    item_id = str(ids[0]) if ids and isinstance(ids[0], str | int) else fallback_id
    return EvalItem(id=item_id, document=document, references=tuple(refs), language=detect_language(document))


def _query_items(record: Any, item: EvalItem, fields: FieldSpec, *, where: str) -> list[EvalItem]:
    """The item itself, or with ``fields.queries``, one item per query: focus = the query, reference = its answer."""
    if not fields.queries:
        return [item]
    queries = [q for q in _first(record, fields.queries) if isinstance(q, dict)]
    out = []
    for n, q in enumerate(queries, 1):
        query = " ".join(as_text(v) for v in select(q, fields.query_text)).strip()
        answers = _references(select(q, fields.query_answers))
        if fields.name.startswith("squality") and query.lower().startswith("what is the plot of the story"):
            continue  # the plot question is a plain summary: the squality preset scores it
        if query and answers:
            out.append(replace(item, id=f"{item.id}/q{n}", references=tuple(answers), focus=query))
    if not out:
        raise DatasetError(f"{where} has no query with an answer at {' | '.join(fields.queries)}.")
    return out


def _read_document(path: Path, *, where: str) -> str:
    # Imported here: the loader pulls in pypdf and ebooklib, which a dataset of inline texts never needs.
    from pipeline.documents.loader import load_document

    if not path.is_file():
        raise DatasetError(f"{where} names the document file {path}, which does not exist.")
    try:
        return load_document(path).text.strip()
    except DocumentError as exc:
        raise DatasetError(f"{where}: {exc}") from None
