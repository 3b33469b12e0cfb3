"""Fixtures shared by the whole suite. Keep each fixture a small, named function."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from pipeline.llm.client import MoonshotClient
from pipeline.testing import Latency, MoonshotTestServer

if TYPE_CHECKING:
    from flows.prefect_server import RunningServer

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
LIGHTHOUSE = REPO / "data" / "the_lighthouse_keeper.md"

# Unit tests must never reach a Prefect API by accident, nor phone home.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_HOME", str(REPO / ".prefect"))
# Nor start tome's background Prefect server (it would outlive the test): tests that run flows set
# PREFECT_API_URL to a server they start and stop; tests/integration/test_background_server.py tests it.
os.environ.setdefault("TOME_PREFECT_SERVER", "ephemeral")


@pytest.fixture(autouse=True)
def _isolated_tome_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point tome's state directory (cache DB, ledger) at a per-test folder; no real keys leak in."""
    home = tmp_path / "tome-home"
    monkeypatch.setenv("TOME_HOME", str(home))
    monkeypatch.delenv("TOME_DATABASE_URL", raising=False)
    monkeypatch.delenv("TOME_CONFIG", raising=False)
    for var in ("MOONSHOT_API_KEY", "OPENAI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def corpus() -> Path:
    """The shared real-document corpus; tests using it skip when it is absent."""
    if not CORPUS.is_dir():
        pytest.skip("../shared/corpus is absent")
    return CORPUS


@pytest.fixture
def lighthouse() -> Path:
    """The project's sample story (data/); tests using it skip when it is absent."""
    if not LIGHTHOUSE.is_file():
        pytest.skip("data/the_lighthouse_keeper.md is absent")
    return LIGHTHOUSE


def tome(*args: str, input: str | None = None) -> Result:
    """The ``tome`` command run in this process (Typer's CliRunner), ``input`` as its stdin."""
    from flows.cli import app

    return CliRunner().invoke(app, list(args), input=input)


@contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """A real HTTP server on 127.0.0.1 that answers with ``handler`` from a thread while the block runs; its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def wait_for_line(proc: subprocess.Popen[str], text: str, timeout_s: float = 120) -> list[str]:
    """The lines ``proc`` writes to stderr up to the first one containing ``text`` (AssertionError if none)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no line with {text!r}: {''.join(lines)}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


# --- Prefect ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real `prefect server start` on 127.0.0.1 for one test module (~12-20 s on 2 cores), stopped after it."""
    from flows.prefect_server import prefect_server

    if not LIGHTHOUSE.is_file():
        pytest.skip("data/the_lighthouse_keeper.md is absent")
    with prefect_server(tmp_path_factory.mktemp("prefect-home"), timeout_s=240) as srv:
        yield srv


def api(srv: RunningServer, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST to the server's REST API (its ``.../filter`` endpoints): the decoded JSON answer."""
    response = httpx.post(f"{srv.api_url}/{path}", json=body or {}, timeout=30)
    response.raise_for_status()
    return response.json()


def flow_run(srv: RunningServer, name: str) -> dict[str, Any]:
    """The one flow run called ``name``."""
    runs = api(srv, "flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
    assert len(runs) == 1, [r["name"] for r in runs]
    return runs[0]


# --- PostgreSQL ---------------------------------------------------------------------------------------------

POSTGRES_ENV = "TOME_TEST_POSTGRES_URL"


def in_ci() -> bool:
    """CI (``CI`` or ``TOME_CI`` set): PostgreSQL tests must run there, never skip."""
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes"} for v in ("CI", "TOME_CI"))


def _postgres_missing(reason: str) -> None:
    if in_ci():
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A PostgreSQL server for the session: ``TOME_TEST_POSTGRES_URL`` if set, else a throwaway cluster
    (initdb into a temp dir, a free port) stopped at the end. Skips when impossible, fails in CI."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _postgres_missing("the psycopg driver is not installed (pip install 'tome[postgres]')")
    if os.environ.get(POSTGRES_ENV):
        yield os.environ[POSTGRES_ENV]
        return
    from pipeline.testing.postgres import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        _postgres_missing(str(exc))
    try:
        yield server.url()
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own for one test (dropped afterwards)."""
    from pipeline.testing.postgres import create_database, drop_database

    url = create_database(postgres_server_url)
    yield url
    drop_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a fresh SQLite file and on an empty database of a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tome.db'}"
    return request.getfixturevalue("postgres_url")


# --- the local Moonshot-compatible server (pipeline.testing) ------------------------------------------------

MOONSHOT_FIXTURES = REPO / "tests" / "fixtures" / "moonshot"


@pytest.fixture(scope="session")
def _shared_moonshot_server() -> Iterator[MoonshotTestServer]:
    with MoonshotTestServer(latency=Latency.zero()) as srv:
        yield srv


@pytest.fixture
def moonshot_server(_shared_moonshot_server: MoonshotTestServer) -> MoonshotTestServer:
    """A Moonshot-compatible server on 127.0.0.1 in its initial state: no rate limits, no latency, no faults,
    zeroed stats, key ``srv.api_key``. Shared by the session (reset per test); ``srv.configure(limits=…)``
    changes it for one test. Tests that need other keys or models use ``moonshot_server_factory``.
    """
    _shared_moonshot_server.reset()
    return _shared_moonshot_server


@pytest.fixture
def moonshot_server_factory() -> Iterator[Callable[..., MoonshotTestServer]]:
    """Start servers with options (limits=, latency=, token_scale=, keys=, models=, gid_tier=); stopped at teardown.

    Latency defaults to zero here (pass ``latency=Latency(...)`` where a test measures it).
    """
    started: list[MoonshotTestServer] = []

    def start(**options: object) -> MoonshotTestServer:
        options.setdefault("latency", Latency.zero())
        srv = MoonshotTestServer(**options).start()  # type: ignore[arg-type]
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def recorded_sleeps() -> list[float]:
    """Waits the retry loop asked for; pass ``sleep=record_sleep(recorded_sleeps)`` so nothing really sleeps."""
    return []


def record_sleep(waits: list[float]) -> Callable[[float], Awaitable[None]]:
    """An async sleep that only records how long it was asked to wait."""

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return sleep


@pytest.fixture
async def moonshot_client(
    moonshot_server: MoonshotTestServer, recorded_sleeps: list[float]
) -> AsyncIterator[MoonshotClient]:
    """A MoonshotClient talking to ``moonshot_server``; retry waits go to ``recorded_sleeps``, never slept."""
    client = MoonshotClient(
        base_url=moonshot_server.base_url, api_key=moonshot_server.api_key, sleep=record_sleep(recorded_sleeps)
    )
    yield client
    await client.aclose()
