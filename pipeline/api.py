"""The library's entry point: ``pipeline.summarise(source, **options) -> SummaryResult`` and its async twin.

    import pipeline
    result = pipeline.summarise("book.pdf", backend="extractive", length="300 words")
    print(result.final)

The CLI, the Prefect flows and the benchmarks build runs from the same pieces (pipeline.runtime,
pipeline.document_runs); nothing here imports Prefect.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline.document_runs import summarise_path
from pipeline.documents import SUPPORTED_SUFFIXES, document_from_text
from pipeline.documents.model import Document
from pipeline.errors import DocumentNotFoundError
from pipeline.options import SummariseOptions
from pipeline.outputs import SummaryResult
from pipeline.progress_events import RunBoard
from pipeline.runtime import open_runtime

TEXT_NAME = "text.txt"  # what a summary of a text (not a file) is called


async def asummarise(
    source: str | Path | Document,
    options: SummariseOptions | None = None,
    *,
    out_dir: str | Path | None = None,
    api_key: str | None = None,
    password: str | None = None,
    board: RunBoard | None = None,
    env: Mapping[str, str] | None = None,
    **fields: Any,
) -> SummaryResult:
    """Summarise a file (path), a text, or a loaded Document; ``fields`` are SummariseOptions fields.

    Args:
        source: a path to a .txt/.md/.pdf/.epub file, the text itself, or a Document.
        options: a SummariseOptions; ``fields`` (backend=, model=, length=, language=, ...) override it.
        out_dir: also write ``<name>.summary.md`` and ``.json`` there.
        api_key: the provider's key (default: its environment variable, e.g. MOONSHOT_API_KEY).
        password: a PDF's password.
        board: progress display (default: none).

    Raises:
        TomeError: bad options (ConfigError), an unreadable document, or a failed run (its own error).
    """
    opts = SummariseOptions.build(options, **fields)
    path, document = _source(source)
    async with open_runtime(
        opts, board=board, env=os.environ if env is None else env, api_key=api_key
    ) as runtime:
        run = await summarise_path(
            runtime,
            path,
            out_dir=Path(out_dir) if out_dir is not None else None,
            password=password,
            document=document,
        )
    if run.error is not None:
        raise run.error
    assert run.result is not None  # a run without an error has a result
    return run.result


def summarise(source: str | Path | Document, options: SummariseOptions | None = None, **kwargs: Any) -> SummaryResult:
    """Blocking twin of :func:`asummarise` (runs its own event loop; use ``asummarise`` inside one)."""
    return asyncio.run(asummarise(source, options, **kwargs))


def _source(source: str | Path | Document) -> tuple[Path, Document | None]:
    """(path naming the document, the Document when it is already in memory)."""
    if isinstance(source, Document):
        return source.path, source
    if isinstance(source, Path):
        return source, None
    candidate = Path(source).expanduser() if "\n" not in source and len(source) < 4096 else None
    if candidate is not None:
        if candidate.is_file():
            return candidate, None
        if candidate.suffix.lower() in SUPPORTED_SUFFIXES:
            raise DocumentNotFoundError(f"{source}: no such file.")
    return Path(TEXT_NAME), document_from_text(TEXT_NAME, source)
