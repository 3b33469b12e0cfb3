"""pipeline's public surface is explicit: nothing becomes public by accident, every name resolves."""

from __future__ import annotations

import subprocess
import sys

import pipeline

EXPECTED = [
    "Catalog", "ChatBackend", "ChatRequest", "Chunk", "Completion", "Document", "ExtractiveBackend",
    "InProcessBudget", "Message", "ModelSpec", "MoonshotClient", "NullProgress", "OpenAICompatibleClient",
    "Plan", "ProgressSink", "RateBudget", "RateLimits", "RunSettings", "Section", "SqlBudget", "Store",
    "SummaryEngine", "SummaryResult", "TiktokenCounter", "TokenBudget", "TokenCounter", "TomeError", "Usage",
    "build_plan", "chunk_budget", "chunk_document", "load_catalog", "load_document", "make_backend",
    "make_budget", "min_wall_time", "plan_document", "resolve_limits", "resolve_settings",
]  # fmt: skip


def test_all_is_sorted_and_pinned() -> None:
    assert pipeline.__all__ == sorted(pipeline.__all__) == sorted(EXPECTED)


def test_every_public_name_resolves() -> None:
    for name in pipeline.__all__:
        assert getattr(pipeline, name) is not None, name


def test_library_never_imports_prefect() -> None:
    # pipeline/ must be usable without Prefect: importing all of it leaves prefect unloaded.
    code = "import sys, pipeline; [getattr(pipeline, n) for n in pipeline.__all__]; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
