"""The options `summarise`, `batch`, `serve` and `eval` share: declared once here, added to each command by
:func:`with_run_options`, and validated once (``RunOptions.build`` -> ``SummariseOptions.build``)."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipeline.errors import ConfigError, DocumentNotFoundError

if TYPE_CHECKING:
    from pipeline.options import SummariseOptions


def _configured(name: str) -> str:
    """A default from configs/defaults.toml (and the user's tome.toml), for --help; never fails --help."""
    from pipeline.config import load_catalog

    try:
        defaults = load_catalog().defaults
    except ConfigError:
        return "configs/defaults.toml"
    value = getattr(defaults, name)
    if name == "length" and value in defaults.lengths:
        return f"{value} ({defaults.lengths[value]} tokens)"
    return str(value)


def _backend_metavar() -> str:
    """auto|<each provider of configs/providers.toml>|extractive, for --help; never fails --help."""
    from pipeline.options import backend_names

    try:
        return "|".join(backend_names())
    except ConfigError:
        return "auto|PROVIDER|extractive"


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="Model name (tome models lists them).", show_default=_configured("model")
    ),
]
LengthOpt = Annotated[
    str | None,
    typer.Option(
        "--length",
        "-l",
        help=(
            "Final summary length: short, medium, long, N tokens, Nw words (300w) or N字 / Nc characters (500字). "
            "Words as a word processor counts them (don't, U.S., 2,000 one each; a CJK character one), landed so "
            "a wc -w / split() count is near too. Characters (500c = 500字): landed between the hanzi alone and "
            "every non-space character (other text: without spaces and len()). Held within ±10 % by every count "
            "the text allows, never more than 10 % over (README, 'Lengths in words and characters')."
        ),
        show_default=_configured("length"),
    ),
]
LanguageOpt = Annotated[
    str | None, typer.Option(help="Language of the summary.", show_default="the document's language")
]
BackendOpt = Annotated[
    str,
    typer.Option(
        metavar=_backend_metavar(),
        help="Who writes the summaries. auto: Moonshot when MOONSHOT_API_KEY is set, else the offline "
        "extractive backend.",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option(help="OpenAI-compatible API base URL.", show_default="the provider's, configs/providers.toml"),
]
TierOpt = Annotated[
    str | None,
    typer.Option(
        help="Rate tier from configs/tiers.toml (tier0..tier5, unlimited, ...).", show_default=_configured("tier")
    ),
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option(help="Concurrent calls (0 = unlimited).", min=0, show_default="the tier's")
]
RpmOpt = Annotated[
    int | None, typer.Option(help="Requests per minute (0 = unlimited).", min=0, show_default="the tier's")
]
TpmOpt = Annotated[
    int | None, typer.Option(help="Tokens per minute (0 = unlimited).", min=0, show_default="the tier's")
]
TpdOpt = Annotated[
    int | None, typer.Option(help="Tokens per day (0 = unlimited).", min=0, show_default="the tier's")
]
ContextOpt = Annotated[
    str | None,
    typer.Option(
        metavar="lagged|none",
        help="Carry earlier summaries as context, or not.",
        show_default=_configured("context_strategy"),
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        help="Password of encrypted PDFs (or TOME_PDF_PASSWORD).",
        envvar="TOME_PDF_PASSWORD",
        show_envvar=False,
        show_default="none",
    ),
]
FocusOpt = Annotated[
    str | None,
    typer.Option(
        "--focus",
        metavar="QUESTION",
        help="Summarise with this question in mind: every level keeps what answers it (cached apart from the "
        "plain summary).",
        show_default="none: a plain summary",
    ),
]
CiteOpt = Annotated[
    bool,
    typer.Option(
        "--cite",
        help="Ask each merge to cite the summaries it draws on as [n]; the citations join the provenance "
        "(kept in the tree, left out of the summary; cached apart). Models that read prompts only.",
    ),
]
ServerExtractOpt = Annotated[
    bool,
    typer.Option(
        "--server-extract",
        help="PDFs without a text layer (scans): upload them to Moonshot's file-extract service (free) "
        "instead of failing. Needs the Moonshot backend.",
    ),
]
EncodingOpt = Annotated[
    str | None,
    typer.Option(
        help="Text encoding of .txt/.md files (utf-8, cp1252, gb18030, shift_jis, ...) when detection is unsure.",
        show_default="detected",
    ),
]
MaxCostOpt = Annotated[
    float | None,
    typer.Option(
        "--max-cost",
        metavar="AMOUNT",
        help="Stop cleanly before calls would cost more than AMOUNT (the model's currency) in this run or "
        "batch, across all its workers; exit 3, resumable. 0 = no cap.",
        show_default="[defaults] max_cost",
        min=0,
    ),
]
ProgressOpt = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Show progress on stderr (live on a terminal).")
]
NoPrefectOpt = Annotated[
    bool,
    typer.Option(
        "--no-prefect",
        help="Run the engine directly, without Prefect (no run history in Prefect, no background Prefect server).",
    ),
]


def build_options(
    *,
    backend: str = "auto",
    model: str | None = None,
    length: str | None = None,
    language: str | None = None,
    tier: str | None = None,
    base_url: str | None = None,
    concurrency: int | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    tpd: int | None = None,
    context: str | None = None,
    server_extract: bool = False,
    encoding: str | None = None,
    max_cost: float | None = None,
    focus: str | None = None,
    cite: bool = False,
    require_key: bool = True,
) -> SummariseOptions:  # imported lazily: pipeline.options pulls in the config and budget modules
    """Validated options; raises ConfigError (exit 2) at once, before Prefect starts.

    ``require_key``: a named provider's API key must be set (not for commands that make no calls, like plan).
    """
    from pipeline.options import SummariseOptions

    options = SummariseOptions.build(
        backend=backend,
        model=model,
        length=length,
        language=language,
        tier=tier,
        base_url=base_url,
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        tpd=tpd,
        context=context,
        server_extract=server_extract,
        encoding=encoding,
        max_cost=max_cost,
        focus=focus,
        cite=cite,
    )
    backend = options.backend
    if require_key and backend not in ("auto", "extractive"):
        from pipeline.config import load_catalog

        spec = load_catalog().provider(backend)
        key_env = spec.api_key_env
        if spec.api_key_required and not os.environ.get(key_env, "").strip():  # say so now, not after Prefect has started
            raise ConfigError(
                f"Set {key_env} (the API key for provider '{backend}'), or use --backend extractive to "
                "summarise offline."
            )
    return options


def check_output_dir(output: Path | None) -> None:
    """-o must be a folder tome can write in: found now, not after the whole run was paid for."""
    if output is None:
        return
    import tempfile

    if output.exists() and not output.is_dir():
        raise ConfigError(f"-o {output} is a file, not a folder; pass a folder for the summaries.")
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output, prefix=".tome-probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"-o {output}: cannot write there ({exc.strerror or exc}); pass a writable folder.") from None


def set_password(password: str | None) -> None:
    """Hand a PDF password to the flow through the environment (Prefect stores flow parameters)."""
    if password is not None:
        os.environ["TOME_PDF_PASSWORD"] = password


def existing_files(files: list[Path]) -> list[Path]:
    """The files, checked to exist (DocumentNotFoundError, exit 2, names the first missing one)."""
    for f in files:
        if not f.exists():
            raise DocumentNotFoundError(f"{f}: no such file.")
        if f.is_dir():
            raise DocumentNotFoundError(f"{f} is a folder; use `tome batch {f}` to summarise a folder.")
    return files


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The shared options as given on the command line, before validation (``build`` validates them)."""

    model: str | None = None
    length: str | None = None
    language: str | None = None
    backend: str = "auto"
    base_url: str | None = None
    tier: str | None = None
    concurrency: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    context: str | None = None
    focus: str | None = None
    cite: bool = False
    password: str | None = None  # not an option of the run: handed to the flow through the environment
    server_extract: bool = False
    encoding: str | None = None
    max_cost: float | None = None

    def build(self) -> SummariseOptions:
        """Validated options; raises ConfigError (exit 2) at once, before Prefect starts."""
        return build_options(
            backend=self.backend, model=self.model, length=self.length, language=self.language, tier=self.tier,
            base_url=self.base_url, concurrency=self.concurrency, rpm=self.rpm, tpm=self.tpm, tpd=self.tpd,
            context=self.context, server_extract=self.server_extract, encoding=self.encoding,
            max_cost=self.max_cost, focus=self.focus, cite=self.cite,
        )  # fmt: skip


COMMAND_LINE = RunOptions()  # the placeholder default of a command's ``run`` parameter
_OPTION_TYPES: dict[str, object] = {
    "model": ModelOpt, "length": LengthOpt, "language": LanguageOpt, "backend": BackendOpt, "base_url": BaseUrlOpt,
    "tier": TierOpt, "concurrency": ConcurrencyOpt, "rpm": RpmOpt, "tpm": TpmOpt, "tpd": TpdOpt,
    "context": ContextOpt, "focus": FocusOpt, "cite": CiteOpt, "password": PasswordOpt, "server_extract": ServerExtractOpt, "encoding": EncodingOpt,
    "max_cost": MaxCostOpt,
}  # fmt: skip


def with_run_options(*, omit: Collection[str] = ()) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the shared options in place of its ``run: RunOptions = COMMAND_LINE`` parameter.

    typer reads a command's signature, so the options are spliced into it; the command receives them as one
    :class:`RunOptions`. ``omit`` leaves out options the command does not take (or declares its own way).
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        params = list(signature.parameters.values())
        at = [p.name for p in params].index("run")
        shared = [
            inspect.Parameter(
                f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=f.default, annotation=_OPTION_TYPES[f.name]
            )
            for f in fields(RunOptions)
            if f.name not in omit
        ]
        spliced = [*params[:at], *shared, *params[at + 1 :]]

        @functools.wraps(command)
        def with_options(*args: object, **kwargs: object) -> None:
            given = {p.name: kwargs.pop(p.name) for p in shared if p.name in kwargs}
            command(*args, run=RunOptions(**given), **kwargs)  # type: ignore[arg-type]  # typer typed each value

        setattr(with_options, "__signature__", signature.replace(parameters=spliced))  # noqa: B010
        with_options.__annotations__ = {p.name: p.annotation for p in spliced} | {"return": None}
        return with_options

    return decorate
