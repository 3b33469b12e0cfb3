"""Prefect settings that make tome reliable offline; applied to the environment BEFORE prefect is imported.

Prefect reads its settings once, when it is imported, so ``flows/__init__.py`` calls
:func:`configure_prefect_env` first. Every value is a default: a variable the user already set wins.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from pipeline.config import tome_home

# Measured on 2 cores (see the project's Prefect notes): a fresh database needs ~12-16 s of migrations, so the
# default 20 s ephemeral start-up timeout fails first runs; telemetry and usage pings fail noisily offline;
# the task-run recorder spends 3x less CPU per task run with batches of 200.
PREFECT_DEFAULTS: dict[str, str] = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "200",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "200",
    # Only the console is quiet: loggers stay at INFO so a Prefect server/UI still receives run logs,
    # while stderr shows warnings and errors only and stdout stays the summary.
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
}


def prefect_home(env: MutableMapping[str, str] | None = None) -> Path:
    """Where Prefect keeps its ephemeral database: ``PREFECT_HOME`` or ``<tome home>/prefect`` (never ~/.prefect)."""
    env = os.environ if env is None else env
    return Path(env["PREFECT_HOME"]) if env.get("PREFECT_HOME") else tome_home() / "prefect"


def configure_prefect_env(env: MutableMapping[str, str] | None = None) -> bool:
    """Set tome's Prefect defaults in ``env`` (default ``os.environ``) without overriding the user's values.

    Returns False when prefect was already imported in this process (the settings may then come too late).
    """
    env = os.environ if env is None else env
    home = prefect_home(env)
    home.mkdir(parents=True, exist_ok=True)
    env.setdefault("PREFECT_HOME", str(home))
    for name, value in PREFECT_DEFAULTS.items():
        env.setdefault(name, value)
    return "prefect" not in sys.modules


def _subclass_names(cls: type) -> set[str]:
    names = {cls.__name__}
    sub: type
    for sub in cls.__subclasses__():
        names |= _subclass_names(sub)
    return names


class _HideReportedErrors(logging.Filter):
    """Drops Prefect's console records about TomeErrors: the CLI reports those itself, as one line.

    Two kinds: the traceback Prefect logs when a run raises, and its "Finished in state Failed('...
    QuotaExhaustedError: ...')" line, which carries only the exception's class name. Also drops the
    events worker's "Still processing items" notice at exit.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if os.environ.get("TOME_RAISE_ERRORS") == "1":
            return True
        if record.name.endswith("Worker") and record.getMessage().startswith("Still processing items"):
            return False  # Prefect's event queue draining at exit: normal, and it does finish
        if _about_termination(record):
            return False  # SIGTERM: tome says so in one line; the run's state says so in the UI
        if not record.name.startswith("prefect."):
            return True
        from pipeline.errors import TomeError

        exc = record.exc_info[1] if record.exc_info else None
        if exc is None and isinstance(record.args, tuple):
            exc = next((a for a in record.args if isinstance(a, BaseException)), None)
        if exc is not None:
            return not isinstance(exc, TomeError)
        message = record.getMessage()
        if message.startswith("Finished in state Failed("):
            if " documents failed: " in message:
                return False  # a batch's failed documents: the CLI's outcome table lists them
            return not any(f"{name}:" in message for name in _subclass_names(TomeError))
        return True


_TERMINATION_MESSAGES = (
    "Execution was cancelled by the runtime environment",
    "by a termination signal",
    "Finished in state Running()",  # a served flow run stopped mid-run by SIGTERM
)


def _about_termination(record: logging.LogRecord) -> bool:
    """A record about SIGTERM stopping a run: Prefect's crash report, or a traceback of its TerminationSignal
    (also the one asyncio logs while a terminated served run shuts down)."""
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None and any(c.__name__ == "TerminationSignal" for c in type(exc).__mro__):
        return True
    message = record.getMessage()
    return any(m in message for m in _TERMINATION_MESSAGES)


def quiet_reported_errors() -> None:
    """Hide Prefect's console tracebacks of TomeErrors (they still reach the Prefect API and UI)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _HideReportedErrors) for f in handler.filters
        ):
            handler.addFilter(_HideReportedErrors())


def check_prefect_api(env: MutableMapping[str, str] | None = None, *, timeout_s: float = 5.0) -> None:
    """With PREFECT_API_URL set, fail fast (ConfigError, exit 2) when nothing answers there.

    Prefect itself would retry and then end in a long traceback. Any HTTP answer counts as reachable (a
    Prefect Cloud URL may answer /health with 401); only a connection failure or timeout is reported.
    """
    env = os.environ if env is None else env
    url = env.get("PREFECT_API_URL", "").strip()
    if not url:
        return
    import httpx

    from pipeline.errors import ConfigError

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=timeout_s)
    except httpx.TransportError as exc:
        raise ConfigError(
            f"The Prefect API at {url} does not answer ({type(exc).__name__}). Start it (`prefect server start`), "
            "unset PREFECT_API_URL to let tome start its own in the background, or pass --no-prefect."
        ) from exc


def connect_prefect(env: MutableMapping[str, str] | None = None) -> str | None:
    """Before Prefect is imported: check the user's PREFECT_API_URL, or start (once) and reuse tome's local
    Prefect server in the background (flows/background_server.py) instead of a temporary one per process.

    Returns the API URL of tome's background server when this process uses it, else None.
    """
    env = os.environ if env is None else env
    check_prefect_api(env)
    if "prefect" in sys.modules:
        return None  # Prefect has read its settings already: an API URL set now would not be used

    from flows.background_server import ServerStartError, connect

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        return connect(env, say=say)
    except ServerStartError as exc:
        say(f"Warning: {exc}. This run uses a temporary Prefect server instead.")
        return None
