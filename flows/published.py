"""What a run shows in Prefect, with or without the Prefect library: run names, artifacts, the flow-run line."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.outcomes import outcomes_table
from pipeline.document_runs import DocumentRun
from pipeline.runtime import Runtime


@dataclass(frozen=True)
class Artifact:
    """A markdown artifact of a flow run."""

    key: str
    markdown: str
    description: str


def artifact_key(kind: str, name: str) -> str:
    """A valid Prefect artifact key (lowercase letters, digits, dashes) for a document name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug or slug != name.lower().replace(".", "-").replace("_", "-").replace(" ", "-"):
        slug = f"{slug}-{hashlib.sha256(name.encode()).hexdigest()[:8]}".strip("-")
    return f"{kind}-{slug}"[:100]


def run_artifacts(runs: Sequence[DocumentRun], runtime: Runtime) -> list[Artifact]:
    """Each summary, then one usage and cost table."""
    artifacts = [
        Artifact(artifact_key("summary", run.outcome.name), run.result.to_markdown(), f"Summary of {run.outcome.path}")
        for run in runs
        if run.result is not None
    ]
    header = f"**Backend:** {runtime.backend.name}"
    if runtime.backend.billable:
        header += f"  \n**Model:** {runtime.settings.model}"
    table = outcomes_table([r.outcome for r in runs])
    return [*artifacts, Artifact("tome-usage", f"{header}\n\n{table}", "Usage and cost")]


def flow_run_line(run_id: str | None, name: str | None, ui_url: str | None) -> str | None:
    """ "Prefect flow run 'alice.txt' (id): URL" — the run to open in the UI (None outside a flow run)."""
    if not run_id:
        return None
    where = f": {ui_url}" if ui_url else " (a temporary server: set PREFECT_API_URL, or drop TOME_PREFECT_SERVER=ephemeral, to keep runs and see them in the UI)"
    return f"Prefect flow run '{name}' ({run_id}){where}"


def document_run_name(parameters: Mapping[str, Any]) -> str:
    """Flow runs named after the document ("alice.txt"), not a random adjective-animal."""
    return Path(str(parameters.get("path", "document"))).name


def batch_run_name(parameters: Mapping[str, Any]) -> str:
    """The inputs' names, "a.txt, b.md, c.pdf +2", and the pattern when there is one."""
    inputs = [Path(str(i)).name for i in parameters.get("inputs", [])]
    shown = ", ".join(inputs[:3]) + (f" +{len(inputs) - 3}" if len(inputs) > 3 else "")
    pattern = parameters.get("pattern", "*")
    return f"{shown} ({pattern})" if pattern != "*" else shown


def folder_run_name(parameters: Mapping[str, Any]) -> str:
    return f"{Path(str(parameters.get('input_dir', 'folder'))).name}/{parameters.get('pattern', '*')}"
