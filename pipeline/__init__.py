"""tome's library: documents, tokens, chunking, planning, the LLM client and rate budget, the engine, the store.

Public names are listed in ``__all__`` (pinned by tests/test_exported_members.py) and imported on first use,
so that ``import pipeline`` stays cheap for commands such as ``tome plan``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    "Catalog": "pipeline.config",
    "ChatBackend": "pipeline.llm.types",
    "ChatRequest": "pipeline.llm.types",
    "Chunk": "pipeline.chunking",
    "Completion": "pipeline.llm.types",
    "Document": "pipeline.documents.model",
    "ExtractiveBackend": "pipeline.extractive",
    "InProcessBudget": "pipeline.budget",
    "Message": "pipeline.llm.types",
    "ModelSpec": "pipeline.config",
    "MoonshotClient": "pipeline.llm.client",
    "NullProgress": "pipeline.progress_events",
    "OpenAICompatibleClient": "pipeline.llm.client",
    "Plan": "pipeline.planning",
    "ProgressSink": "pipeline.progress_events",
    "PromptRoom": "pipeline.prompt_room",
    "RateBudget": "pipeline.budget",
    "RateLimits": "pipeline.config",
    "RunBoard": "pipeline.progress_events",
    "RunSettings": "pipeline.settings",
    "Runtime": "pipeline.runtime",
    "Section": "pipeline.documents.model",
    "SqlBudget": "pipeline.budget",
    "Store": "pipeline.store",
    "SummariseOptions": "pipeline.options",
    "SummaryEngine": "pipeline.engine",
    "SummaryResult": "pipeline.outputs",
    "TiktokenCounter": "pipeline.tokens",
    "TokenCounter": "pipeline.tokens",
    "TomeError": "pipeline.errors",
    "Usage": "pipeline.llm.types",
    "asummarise": "pipeline.api",
    "build_plan": "pipeline.planning",
    "chunk_document": "pipeline.chunking",
    "chunk_room": "pipeline.prompt_room",
    "load_catalog": "pipeline.config",
    "load_document": "pipeline.documents",
    "make_backend": "pipeline.backends",
    "make_budget": "pipeline.budget",
    "min_wall_time": "pipeline.wall_time",
    "open_runtime": "pipeline.runtime",
    "plan_document": "pipeline.planning",
    "resolve_limits": "pipeline.budget",
    "resolve_settings": "pipeline.settings",
    "summarise": "pipeline.api",
}

__all__ = [
    "Catalog", "ChatBackend", "ChatRequest", "Chunk", "Completion", "Document", "ExtractiveBackend",
    "InProcessBudget", "Message", "ModelSpec", "MoonshotClient", "NullProgress", "OpenAICompatibleClient",
    "Plan", "ProgressSink", "PromptRoom", "RateBudget", "RateLimits", "RunBoard", "RunSettings", "Runtime",
    "Section", "SqlBudget", "Store", "SummariseOptions", "SummaryEngine", "SummaryResult",
    "TiktokenCounter", "TokenCounter", "TomeError", "Usage", "asummarise", "build_plan", "chunk_document",
    "chunk_room", "load_catalog", "load_document", "make_backend", "make_budget", "min_wall_time",
    "open_runtime", "plan_document", "resolve_limits", "resolve_settings", "summarise",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
