"""Run the Moonshot-compatible test server in a background thread of this process.

    with MoonshotTestServer(limits=RateLimits(concurrency=2, rpm=60), latency=Latency.zero()) as srv:
        client = MoonshotClient(base_url=srv.base_url, api_key=srv.api_key)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Collection, Mapping
from types import TracebackType
from typing import Any

import uvicorn

from pipeline.config import RateLimits
from pipeline.testing.app import build_app
from pipeline.testing.gateway import TEST_API_KEY, Gateway, Latency, RequestRecord, ServerStats
from pipeline.testing.summariser import OBEDIENT, Obedience
from pipeline.testing.tokenizer import ServerTokenizer


class MoonshotTestServer:
    """A real HTTP server on 127.0.0.1 that behaves like Moonshot's gateway (see pipeline.testing)."""

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        limits: RateLimits | None = None,
        latency: Latency | None = None,
        token_scale: float = 1.0,
        keys: Collection[str] = (TEST_API_KEY,),
        models: Mapping[str, int] | None = None,
        gid_tier: int = 1,
        default_max_tokens: int = 1024,
        obedience: Obedience = OBEDIENT,
        prefix_cache: bool = False,
        flavour: str = "moonshot",
        count_endpoint: bool = True,
    ) -> None:
        """Args:
        port: 0 picks a free port.
        limits: concurrency / rpm / tpm / tpd (0 = unlimited); None = no limits at all.
        latency: time to first token + per output token; default 0.3 s + 4 ms/token, ``Latency.zero()`` for tests.
        token_scale: multiplies the server tokenizer's counts (1.15 = counts 15 % more than the client).
        keys: the API keys the server accepts; the first is ``api_key``.
        models: name -> context tokens; default the Moonshot models.
        gid_tier: N in the ``Msh-Gid: enterprise-tier-N`` header.
        obedience: ``Obedience.disobedient()`` makes the model write past the length it is asked for.
        prefix_cache: report leading messages seen before as ``cached_tokens`` (Kimi's automatic caching).
        flavour: the server it plays where local servers differ (context refusals, silent cuts, where the
            window is stated): moonshot, vllm, llama-cpp-python, llama-server or ollama.
        count_endpoint: False answers the token-count endpoint with 404 (a gateway without it).
        """
        self.gateway = Gateway(
            limits=limits,
            latency=latency,
            token_scale=token_scale,
            keys=keys,
            models=models,
            gid_tier=gid_tier,
            default_max_tokens=default_max_tokens,
            obedience=obedience,
            prefix_cache=prefix_cache,
            flavour=flavour,
            count_endpoint=count_endpoint,
        )
        self.api_key = next(iter(keys), "")  # no keys: the server takes requests without authentication
        self._host, self._port = host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> MoonshotTestServer:
        """Bind, start serving in a daemon thread, return once it accepts connections."""
        # proto=IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets; without it Nagle + delayed ACK
        # add ~40 ms to every answer whose headers and body are written separately.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.gateway),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"moonshot-test-server:{self._port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Moonshot test server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> MoonshotTestServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MoonshotTestServer(base_url={self.base_url!r})"

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: what a client takes as base URL."""
        return f"http://{self._host}:{self._port}/v1"

    # --- what tests and benchmarks use -----------------------------------------------------------------------

    @property
    def tokenizer(self) -> ServerTokenizer:
        return self.gateway.tokenizer

    def inject(self, kind: str, times: int = 1, **params: Any) -> None:
        """Queue a fault for the next chat requests, e.g. ``inject("overload", times=3)``.

        Kinds: overload, rate_limit_concurrency|rpm|tpm|tpd, quota, suspended, inactive, auth, content_filter,
        context_length, input_too_long, 500, 502, 503, 504_html (answered before admission), and
        drop_stream, truncate_stream, stall(seconds=) (after admission: tokens are counted).
        """
        self.gateway.inject(kind, times, **params)

    def inject_response(
        self,
        status: int,
        body: bytes | str | dict[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        limit_kind: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next chat requests with this canned response (e.g. a recorded error body)."""
        self.gateway.inject(
            "response",
            times,
            status=status,
            body=body,
            headers=dict(headers or {}),
            content_type=content_type,
            limit_kind=limit_kind,
        )

    def inject_sse(self, transcript: str, times: int = 1) -> None:
        """Answer the next chat requests with this raw SSE transcript (e.g. a recorded Moonshot stream)."""
        self.gateway.inject("sse", times, transcript=transcript)

    def reset(self) -> None:
        """Back to the initial limits/latency/token_scale with a fresh clock, no faults and zeroed stats."""
        self.gateway.reset()

    def configure(self, **kw: Any) -> None:
        """Change limits=, latency=, token_scale=, gid_tier=, obedience=, prefix_cache= while running."""
        self.gateway.configure(**kw)

    def advance(self, seconds: float) -> None:
        """Shift the server's clock forward (RPM/TPM windows slide; past UTC midnight TPD resets)."""
        self.gateway.advance(seconds)

    def advance_to_next_day(self) -> None:
        """Move the clock just past the next UTC midnight."""
        self.gateway.advance(self.gateway.seconds_to_midnight() + 1)

    def reset_day(self) -> None:
        """Forget today's TPD usage."""
        self.gateway.reset_day()

    def stats(self) -> ServerStats:
        return self.gateway.stats()

    def reset_stats(self) -> None:
        self.gateway.reset_stats()

    def chat_log(self) -> list[RequestRecord]:
        """The chat-completion requests seen, in order."""
        return [r for r in self.gateway.stats().log if r.endpoint == "chat"]
