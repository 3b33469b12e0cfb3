"""pipeline's public surface is explicit: nothing becomes public by accident, every name resolves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pipeline

REPO = Path(__file__).resolve().parents[1]

EXPECTED = [
    "Catalog", "ChatBackend", "ChatRequest", "Chunk", "Completion", "Document", "ExtractiveBackend",
    "InProcessBudget", "Message", "ModelSpec", "MoonshotClient", "NullProgress", "OpenAICompatibleClient",
    "Plan", "ProgressSink", "PromptRoom", "RateBudget", "RateLimits", "RunBoard", "RunSettings", "Runtime",
    "Section", "SqlBudget", "Store", "SummariseOptions", "SummaryEngine", "SummaryResult",
    "TiktokenCounter", "TokenCounter", "TomeError", "Usage", "asummarise", "build_plan", "chunk_document",
    "chunk_room", "load_catalog", "load_document", "make_backend", "make_budget", "min_wall_time",
    "open_runtime", "plan_document", "resolve_limits", "resolve_settings", "summarise",
]  # fmt: skip


def test_all_is_sorted_and_pinned() -> None:
    assert pipeline.__all__ == sorted(pipeline.__all__) == sorted(EXPECTED)
    assert sorted(pipeline._EXPORTS) == pipeline.__all__  # every lazily imported name is public, and only those


def test_every_public_name_resolves() -> None:
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None, name


def test_library_never_imports_prefect() -> None:
    # pipeline/ must be usable without Prefect: importing all of it leaves prefect unloaded.
    code = "import sys, pipeline; [getattr(pipeline, n) for n in pipeline.__all__]; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_summarise_as_a_library_never_imports_prefect(tmp_path) -> None:
    # The Done-when of issue 12: one call summarises a file offline, and Prefect is never loaded.
    code = (
        "import sys, pipeline; "
        "r = pipeline.summarise('data/the_lighthouse_keeper.md', backend='extractive'); "
        "print(len(r.final) > 80, r.backend, 'prefect' in sys.modules)"
    )
    env = {**os.environ, "TOME_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO, env=env
    ).stdout
    assert out.split() == ["True", "extractive", "False"]
