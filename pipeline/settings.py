"""One run's settings, resolved from configs/ defaults, config and CLI flags, validated once."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.config import Catalog, ModelSpec, RateLimits, load_catalog
from pipeline.errors import ConfigError
from pipeline.language import check_language
from pipeline.lengths import DEFAULT_PER_TOKEN, ESTIMATE_HEADROOM, estimate_tokens, parse_length

CONTEXT_STRATEGIES = ("none", "lagged")
MAX_FOCUS_CHARS = 500  # a question, not a second document: it is repeated in every prompt


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What a summarisation run does. Holds no secrets (it is stored with runs and passed to Prefect)."""

    model: str
    provider: str
    tier: str
    target_tokens: int  # final summary length in tokens
    language: str  # "auto" or a language code/name
    context_strategy: str  # "none" | "lagged"
    context_lag: int
    context_share: float
    chunk_output_tokens: int
    prompt_overhead_tokens: int
    max_depth: int
    temperature: float
    prompt_versions: tuple[tuple[str, str], ...] = ()
    focus: str = ""  # a question every level keeps what answers ("" = a plain summary)
    # A length asked in words or characters ("300w", "500字"): stated as asked in the final prompt; target_tokens
    # is then an estimate the engine refines per document. "tokens": target_tokens is the length itself.
    target_unit: str = "tokens"
    target_units: int = 0
    cite: bool = False  # merge prompts ask the model to cite its input summaries as [n] (--cite)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def prompt_version(self, kind: str) -> str:
        versions = dict(self.prompt_versions)
        version = versions.get(kind, f"{kind}-v1")
        # Focused prompts are other templates: their own version, so their answers are cached apart.
        if self.focus:
            version = f"{version}+{versions.get('focus', 'focus-v1')}"
        # A merge that asks for citations is another template too (map prompts have no inputs to cite).
        if self.cite and kind == "reduce":
            version = f"{version}+{versions.get('cite', 'cite-v1')}"
        return version


def resolve_settings(
    catalog: Catalog | None = None,
    *,
    model: str | None = None,
    provider: str | None = None,
    tier: str | None = None,
    length: str | int | None = None,
    language: str | None = None,
    context_strategy: str | None = None,
    context_lag: int | None = None,
    focus: str | None = None,
    cite: bool = False,
) -> RunSettings:
    """Defaults from configs/, overridden by whatever is given; raises ConfigError on bad values."""
    cat = catalog or load_catalog()
    d = cat.defaults
    model_name = model or d.model
    spec = cat.model(model_name)
    provider_name = provider or (spec.provider if model else d.provider) or spec.provider
    if provider_name not in cat.providers:
        cat.provider(provider_name)
    tier_name = (tier or d.tier).lower()
    cat.tier(tier_name)
    strategy = context_strategy or d.context_strategy
    if strategy not in CONTEXT_STRATEGIES:
        raise ConfigError(
            f"Unknown context strategy '{strategy}'; use one of: {', '.join(CONTEXT_STRATEGIES)}."
        )
    lag = d.context_lag if context_lag is None else context_lag
    if lag < 1:
        raise ConfigError("context_lag must be at least 1.")
    length_spec = length if length is not None else d.length
    asked = (
        None
        if isinstance(length_spec, str) and length_spec.strip() in d.lengths
        else parse_length(length_spec)
    )
    if asked is not None and asked.unit != "tokens":
        # Before the document is known: typical units per token (the engine measures the document's own).
        target = estimate_tokens(asked, per_token=DEFAULT_PER_TOKEN[asked.unit] * ESTIMATE_HEADROOM)
    else:
        target = cat.target_tokens(length_spec)
    # The final summary is one answer, written after reading at least as much: half the room is the most.
    writable = (spec.context_tokens - d.prompt_overhead_tokens - spec.safety_margin_tokens) // 2
    if target > writable:
        shown = (
            f"{target} tokens"
            if asked is None or asked.unit == "tokens"
            else f"{length_spec} (~{target} tokens)"
        )
        raise ConfigError(
            f"--length {shown} is more than {model_name} can write in one answer (at most {writable} "
            "with its context); choose a shorter length or a model with a larger context."
        )
    question = " ".join((focus or "").split())
    if focus is not None and not question:
        raise ConfigError("--focus needs a question, e.g. --focus \"What did the council decide about the light?\".")
    if len(question) > MAX_FOCUS_CHARS:
        raise ConfigError(f"--focus is {len(question)} characters; keep the question under {MAX_FOCUS_CHARS}.")
    return RunSettings(
        focus=question,
        cite=cite,
        model=model_name,
        provider=provider_name,
        tier=tier_name,
        target_tokens=target,
        target_unit=asked.unit if asked is not None else "tokens",
        target_units=asked.amount if asked is not None and asked.unit != "tokens" else 0,
        language=check_language(language) if language else check_language(d.language, where="[defaults] language"),
        context_strategy=strategy,
        context_lag=lag,
        context_share=d.context_share,
        chunk_output_tokens=d.chunk_output_tokens,
        prompt_overhead_tokens=d.prompt_overhead_tokens,
        max_depth=d.max_depth,
        temperature=d.temperature,
        prompt_versions=tuple(sorted(cat.prompt_versions.items())),
    )


def model_and_limits(settings: RunSettings, catalog: Catalog | None = None) -> tuple[ModelSpec, RateLimits]:
    """The model spec and the rate tier a settings object names."""
    cat = catalog or load_catalog()
    return cat.model(settings.model), cat.tier(settings.tier)


__all__ = ["RunSettings", "model_and_limits", "resolve_settings"]
