"""A throwaway PostgreSQL server for tests and benchmarks: initdb into a temp dir, a free port, stopped at exit.

PostgreSQL refuses to run as root, so as root the server runs as an unprivileged account (``postgres`` when it
exists, else ``nobody``) through ``runuser``. The binaries come from PATH or ``/usr/lib/postgresql/*/bin``
(Debian's ``postgresql`` package; ``.ci/postgres.sh`` installs it where it is missing).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

_CANDIDATE_USERS = ("postgres", "nobody")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (or they would not start)."""


def find_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's versioned folders (newest)."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent.parent.name)
    return versions[-1].parent if versions else None


def free_port() -> int:
    """A TCP port nothing listens on right now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in _CANDIDATE_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresUnavailable("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL")


def create_database(server_url: str, name: str | None = None) -> str:
    """Create an empty database (default: a unique name) on the server of ``server_url``; its URL."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = name or f"t_{uuid.uuid4().hex[:16]}"
    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database ``url`` names (closing its sessions), from the server's ``postgres`` database."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    engine = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        engine.dispose()


class PostgresServer:
    """A private PostgreSQL cluster on 127.0.0.1 (trust auth, user ``tome``); ``url()`` gives SQLAlchemy URLs.

    Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(self, *, bindir: Path | None = None, port: int | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self.port = port or free_port()
        self.user = "tome"
        self._tmp: Path | None = None
        self._run_as = _server_user()

    @property
    def datadir(self) -> Path:
        assert self._tmp is not None, "start() first"
        return self._tmp / "data"

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self._run_as, "--", *args] if self._run_as else list(args)

    def start(self) -> PostgresServer:
        """initdb, start and wait until the server accepts connections."""
        if self.bindir is None:
            raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql")
        self._tmp = Path(tempfile.mkdtemp(prefix="tome-pg-"))
        if self._run_as:
            account = pwd.getpwnam(self._run_as)
            os.chown(self._tmp, account.pw_uid, account.pw_gid)
        os.chmod(self._tmp, 0o700)
        bindir = str(self.bindir)
        env = {**os.environ, "LC_ALL": "C"}
        try:
            subprocess.run(
                self._cmd(f"{bindir}/initdb", "-D", str(self.datadir), "-U", self.user, "-A", "trust", "-E", "UTF8",
                          "--no-sync"),
                check=True, capture_output=True, env=env, cwd=self._tmp,
            )  # fmt: skip
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='' "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            subprocess.run(
                self._cmd(f"{bindir}/pg_ctl", "-D", str(self.datadir), "-o", options, "-l",
                          str(self._tmp / "server.log"), "-w", "-t", "60", "start"),
                check=True, capture_output=True, env=env, cwd=self._tmp,
            )  # fmt: skip
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = exc.stderr.decode(errors="replace").strip() if isinstance(exc, subprocess.CalledProcessError) else exc
            self.stop()
            raise PostgresUnavailable(f"PostgreSQL did not start: {detail}") from exc
        self._wait_ready()
        return self

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"PostgreSQL did not listen on port {self.port}") from None
                time.sleep(0.1)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL (psycopg 3 driver) of ``database`` on this server."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default: a fresh unique name) and return its URL."""
        return create_database(self.url(), name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files."""
        if self._tmp is None:
            return
        if self.bindir is not None and (self.datadir / "postmaster.pid").exists():
            subprocess.run(
                self._cmd(f"{self.bindir}/pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop"),
                capture_output=True, cwd=self._tmp,
            )  # fmt: skip
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
