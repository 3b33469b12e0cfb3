"""The HTML report of a recorded run (`tome report RUN`): its tree rebuilt from the cache, no call sent.

A finished run's answers are all in the cache, so summarising its document again with the run's recorded
settings rebuilds the same tree (and its provenance) at no cost. A spending cap too small for any call keeps
that promise: if some answer is missing (the document or tome's prompts changed since), nothing is sent and
the user is told to summarise again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.api import asummarise
from pipeline.documents import load_document
from pipeline.errors import ConfigError, DocumentNotFoundError, QuotaExhaustedError
from pipeline.options import SummariseOptions
from pipeline.report import render_report
from pipeline.run_calls import find_run
from pipeline.run_records import RunRecord
from pipeline.store import Store, document_hash

# A cap no call fits under (0 would mean "no cap"): only cached answers can be used.
_NO_SPENDING = 1e-12


def options_of_run(record: RunRecord) -> SummariseOptions:
    """The summarise options that reproduce ``record``'s prompts (and so hit its cached answers)."""
    s = record.settings
    unit = s.get("target_unit", "tokens")
    if unit == "tokens":
        length = str(s.get("target_tokens", ""))
    else:
        length = f"{s.get('target_units')}{'w' if unit == 'words' else 'c'}"
    return SummariseOptions(
        backend=str(s.get("backend") or "auto"),
        model=s.get("model"),
        length=length or None,
        language=s.get("language"),
        tier=s.get("tier"),
        context=s.get("context_strategy"),
        focus=s.get("focus") or None,
        cite=bool(s.get("cite", False)),
        concurrency=s.get("max_in_flight"),
        max_cost=_NO_SPENDING,
    )


async def run_report(ref: str, output: Path | None = None, *, store: Store | None = None) -> Path:
    """Write the HTML report of run ``ref`` (an id, a unique prefix, or "latest"); returns its path.

    Default path: ``<document name>.summary.html`` in the working directory.
    """
    own = store is None
    store = store or Store()
    try:
        record = find_run(store, ref)
    finally:
        if own:
            store.close()
    short = record.id[:8]
    if record.status != "done":
        raise ConfigError(f"Run {short} is {record.status}; only a finished run has a report (`tome runs`).")
    path = Path(record.document)
    if not path.is_file():
        raise DocumentNotFoundError(
            f"Run {short}'s document {path} is not there (paths are as given to `tome summarise`, relative to "
            "where it ran); run `tome report` from there, or pass the run's <name>.summary.json."
        )
    document = load_document(path)
    if document_hash(document.text) != record.document_hash:
        raise ConfigError(
            f"{path} has changed since run {short}; summarise it again with -o DIR for its report."
        )
    try:
        result = await asummarise(document, options_of_run(record))
    except QuotaExhaustedError:
        raise ConfigError(
            f"Run {short}'s answers are no longer all in the cache (tome's prompts or the cache changed); "
            "summarise the document again with -o DIR for its report."
        ) from None
    payload: dict[str, Any] = {"source": {"path": str(path), "run": record.id}, **result.to_json_dict()}
    # The usage shown is the recorded run's, not the rebuild's (which sent nothing).
    payload["run_id"] = record.id
    usage = payload["usage"]
    usage.update(calls=record.calls, cached_calls=record.cached_calls, prompt_tokens=record.prompt_tokens)
    usage["completion_tokens"] = record.completion_tokens
    if usage.get("cost") is not None:
        usage["cost"] = record.cost
    target = output or Path(f"{path.name.rsplit('.', 1)[0]}.summary.html")
    target.write_text(render_report(payload), encoding="utf-8")
    return target
