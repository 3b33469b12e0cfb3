"""Writing a summary's files (``<name>.summary.md``, ``.json`` and the ``.html`` report) and telling whether they are current."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from pipeline.options import SummariseOptions
from pipeline.outputs import SummaryResult
from pipeline.report import render_report


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
    """Write the markdown, JSON and HTML summaries (atomically: a reader never sees half a file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, json_path = output_paths(out_dir, name)
    payload = {
        "source": {
            "path": str(source),
            "sha256": source_sha256,
            "options": options.model_dump(exclude_none=True),
            "options_fingerprint": options_fingerprint(options),
        },
        **result.to_json_dict(),
    }
    html_path = out_dir / f"{name}.summary.html"
    _write_atomic(md_path, result.to_markdown().rstrip() + "\n")
    _write_atomic(json_path, json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    _write_atomic(html_path, render_report(payload))
    return [md_path, json_path, html_path]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
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


