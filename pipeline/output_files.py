"""Writing a summary's files (``<name>.summary.md``, ``.json`` and the ``.html`` report) and telling whether they are current."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.options import SummariseOptions
from pipeline.outputs import SummaryResult
from pipeline.report import report_pieces


def options_fingerprint(options: SummariseOptions) -> str:
    """A short hash of the options that change a summary (not rate limits, which only change speed)."""
    relevant = options.model_dump(include={"backend", "model", "length", "language", "context", "base_url"})
    if options.focus:  # only when set: summaries made before --focus existed stay current
        relevant["focus"] = options.focus
    if options.cite:
        relevant["cite"] = True
    blob = json.dumps(relevant, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def output_paths(out_dir: Path, name: str) -> tuple[Path, Path]:
    """``<out>/<name>.summary.md`` and ``<out>/<name>.summary.json``."""
    return out_dir / f"{name}.summary.md", out_dir / f"{name}.summary.json"


def write_outputs(
    result: SummaryResult, out_dir: Path, name: str, *, source: Path, source_sha256: str, options: SummariseOptions
) -> list[Path]:
    """Write the markdown, JSON and HTML summaries (atomically: a reader never sees half a file).

    The JSON and the report are written a piece at a time, each node's dict made when it is reached: a big tree
    (thousands of nodes, each sentence with its quoted sources) is never held as one string or as a list of dicts.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = output_paths(out_dir, name)
    head = {
        "source": {
            "path": str(source),
            "sha256": source_sha256,
            "options": options.model_dump(exclude_none=True),
            "options_fingerprint": options_fingerprint(options),
        },
        **result.to_json_dict(tree=False),
    }
    payload: dict[str, Any] = {**head, "tree": result.tree_dicts()}
    html_path = out_dir / f"{name}.summary.html"
    _write_atomic(md_path, [result.to_markdown().rstrip() + "\n"])
    _write_atomic(json_path, json_pieces(payload))
    _write_atomic(html_path, report_pieces(payload))
    return [md_path, json_path, html_path]


def json_pieces(data: dict[str, Any]) -> Iterator[str]:
    """``json.dumps(data, ensure_ascii=False, indent=2) + "\\n"`` in pieces: its last key's list (the tree) an item
    at a time."""
    *_, last = data
    items: Sequence[Any] = data[last]
    if not items:
        yield json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        return
    head = json.dumps({**data, last: []}, ensure_ascii=False, indent=2)
    yield head.removesuffix("[]\n}") + "[\n    "
    for i, item in enumerate(items):
        # At depth 2 every line of an item is indented 4 more spaces (JSON strings hold no raw newline).
        yield (",\n    " if i else "") + json.dumps(item, ensure_ascii=False, indent=2).replace("\n", "\n    ")
    yield "\n  ]\n}\n"


def _write_atomic(path: Path, pieces: Iterable[str]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for piece in pieces:
            out.write(piece)
    tmp.replace(path)


def is_current(out_dir: Path, name: str, *, source_sha256: str, options: SummariseOptions) -> bool:
    """True when ``<name>.summary.json`` was made from these exact bytes with the same options."""
    md_path, json_path = output_paths(out_dir, name)
    if not (md_path.is_file() and json_path.is_file()):
        return False
    try:
        source = json.loads(json_path.read_text(encoding="utf-8")).get("source", {})
    except (OSError, ValueError):
        return False
    return bool(
        source.get("sha256") == source_sha256 and source.get("options_fingerprint") == options_fingerprint(options)
    )


