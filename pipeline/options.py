"""What a user asks a run to do, as one validated, serialisable value shared by the library, the CLI and flows.

Prefect stores flow parameters in its database, so this holds no secrets: API keys and PDF passwords
come from the environment of the process that runs the flow.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.budget.presets import resolve_limits
from pipeline.config import Catalog, RateLimits, config_dir, load_catalog, user_config_path
from pipeline.config_schema import check_base_url
from pipeline.documents.text import check_encoding
from pipeline.errors import ConfigError
from pipeline.local_models import with_server_window
from pipeline.settings import RunSettings, resolve_settings

AUTO, EXTRACTIVE = "auto", "extractive"
# The environment variable holding a PDF password for the process that runs a flow (never a parameter).
PASSWORD_ENV = "TOME_PDF_PASSWORD"


def backend_names(catalog: Catalog | None = None) -> tuple[str, ...]:
    """Every backend a run may name: auto, each provider of the catalog, and the offline extractive one."""
    return (AUTO, *(catalog or load_catalog()).providers, EXTRACTIVE)


class SummariseOptions(BaseModel):
    """Everything but the input: backend, model, length, language, rate overrides, context strategy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: str = AUTO  # auto, extractive, or a provider of configs/providers.toml (see backend_names)
    model: str | None = None
    length: str | None = None
    language: str | None = None
    tier: str | None = None
    concurrency: int | None = Field(default=None, ge=0)
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    tpd: int | None = Field(default=None, ge=0)
    context: Literal["lagged", "none"] | None = None
    base_url: str | None = None
    server_extract: bool = False  # image-only PDFs: let the provider's file-extract service read them
    focus: str | None = None  # a question every level keeps what answers
    cite: bool = False  # merges cite their input summaries as [n], kept in provenance
    encoding: str | None = None  # .txt/.md files: read with this codec instead of detecting one
    max_cost: float | None = Field(default=None, ge=0)  # spending cap in the model's currency; None = [defaults]

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in backend_names():
            raise ValueError(f"unknown backend '{value}'; use one of: {', '.join(backend_names())}")
        return value

    def spending_cap(self, catalog: Catalog | None = None) -> float:
        """The cap in force: ``--max-cost``, else ``[defaults] max_cost``; 0 means none."""
        return self.max_cost if self.max_cost is not None else (catalog or load_catalog()).defaults.max_cost

    @classmethod
    def build(cls, base: SummariseOptions | None = None, /, **fields: Any) -> SummariseOptions:
        """Validated options (``base`` with ``fields`` replaced); unknown values raise ConfigError at once.

        Raises:
            ConfigError: an unknown option or backend, a bad value, or a model/tier/length the catalog lacks.
        """
        values = {**(base.model_dump() if base is not None else {}), **fields}
        backend = values.get("backend")
        if isinstance(backend, str):
            values["backend"] = backend = backend.lower()
            names = backend_names()
            if backend not in names:
                raise ConfigError(f"Unknown backend '{backend}'; use one of: {', '.join(names)}.")
        if values.get("encoding"):
            values["encoding"] = check_encoding(values["encoding"])
        if values.get("base_url"):
            check_base_url(values["base_url"])  # credentials in a URL would reach logs, the database and Prefect
        context = values.get("context")
        if context is not None and context not in ("lagged", "none"):
            raise ConfigError(f"Unknown context strategy '{context}'; use lagged or none.")
        try:
            options = cls(**values)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"]))
            raise ConfigError(f"Invalid option {where}: {first['msg']}.") from None
        options.limits(options.settings())  # unknown model / tier / length -> ConfigError now
        return options

    def provider(self, catalog: Catalog | None = None) -> str | None:
        """The provider a named backend implies (None for auto/extractive: the defaults decide)."""
        if self.backend in (AUTO, EXTRACTIVE):
            return None
        (catalog or load_catalog()).provider(self.backend)
        return self.backend

    def catalog(self) -> Catalog:
        """The configuration, with a local server's model as the server runs it (its window, or one it serves)."""
        user = user_config_path()
        return _server_catalog(self, str(config_dir()), str(user) if user else None)

    def settings(self, catalog: Catalog | None = None) -> RunSettings:
        """The validated run settings; raises ConfigError on unknown models, tiers or lengths."""
        cat = catalog or self.catalog()
        provider = self.provider(cat)
        model = self.model or _default_model_for(provider, cat)
        return resolve_settings(
            cat,
            model=model,
            provider=provider,
            tier=self.tier,
            length=self.length,
            language=self.language,
            context_strategy=self.context,
            focus=self.focus,
            cite=self.cite,
        )

    def limits(self, settings: RunSettings, catalog: Catalog | None = None) -> RateLimits:
        """The tier's limits with this run's overrides (flags beat TOME_* variables beat the preset)."""
        overrides = {"concurrency": self.concurrency, "rpm": self.rpm, "tpm": self.tpm, "tpd": self.tpd}
        return resolve_limits(settings.tier, overrides=overrides, catalog=catalog)


@lru_cache(maxsize=16)
def _server_catalog(options: SummariseOptions, config: str, user_file: str | None) -> Catalog:
    # Cached (per options and configuration files) so the server is asked, and a disagreement reported, once
    # per process rather than at every resolution.
    catalog = load_catalog()
    provider = options.provider(catalog)
    if provider is None:
        return catalog
    model = options.model or _default_model_for(provider, catalog) or catalog.defaults.model
    return with_server_window(catalog, provider=provider, model=model, base_url=options.base_url)


def _default_model_for(provider: str | None, catalog: Catalog) -> str | None:
    """The default model, or the first catalog model of ``provider`` when the default belongs elsewhere."""
    default = catalog.defaults.model
    if provider is None:
        return None
    default_provider = catalog.model(default).provider
    # moonshot and moonshot-ai serve the same models from two regions
    if provider == default_provider or provider.split("-")[0] == default_provider:
        return None
    for name, spec in catalog.models.items():
        if spec.provider == provider:
            return name
    raise ConfigError(f"No model is configured for provider '{provider}'; pass --model.")
