"""The state of the fake Moonshot gateway: a shiftable clock, limit windows, injected faults and counters.

Thread-safe: the HTTP server runs in its own thread while tests inject faults, move the clock and read stats.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.config import RateLimits
from pipeline.testing.local_servers import check_flavour
from pipeline.testing.summariser import OBEDIENT, Obedience
from pipeline.testing.tokenizer import MESSAGE_OVERHEAD, ServerTokenizer
from pipeline.testing.windows import RateWindows, Rejection

DEFAULT_MAX_TOKENS = 1024  # what the gateway assumes when a request omits max_tokens
TEST_API_KEY = "sk-tome-test-0000000000000000000000000000"
PREFIX_CACHE_ENTRIES = 4096  # message prefixes the simulated provider cache remembers (least recent dropped)

# Context windows (input + output) of the models the server knows.
MOONSHOT_MODELS: dict[str, int] = {
    "moonshot-v1-8k": 8192,
    "moonshot-v1-32k": 32768,
    "moonshot-v1-128k": 131072,
    "moonshot-v1-auto": 131072,
    "kimi-k2-0905-preview": 262144,
}

# Faults answered before admission (no tokens counted) and after it (the call was admitted, then failed).
ERROR_FAULTS = frozenset(
    {
        "overload",
        "rate_limit_concurrency",
        "rate_limit_rpm",
        "rate_limit_tpm",
        "rate_limit_tpd",
        "quota",
        "suspended",
        "inactive",
        "auth",
        "content_filter",
        "context_length",
        "input_too_long",
        "500",
        "502",
        "503",
        "504_html",
        "response",
        "sse",
    }
)
ADMITTED_FAULTS = frozenset({"drop_stream", "truncate_stream", "stall"})
FAULT_KINDS = ERROR_FAULTS | ADMITTED_FAULTS


@dataclass(frozen=True)
class Latency:
    """Time to first token plus time per output token, in both JSON and SSE modes."""

    ttft_s: float = 0.3
    per_token_s: float = 0.004

    @classmethod
    def zero(cls) -> Latency:
        return cls(0.0, 0.0)

    def total(self, completion_tokens: int) -> float:
        return self.ttft_s + self.per_token_s * completion_tokens


@dataclass(frozen=True)
class Fault:
    """One queued fault; ``params`` carries e.g. seconds for "stall" or the body for "response"."""

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it (``t`` is the server clock, shifted by ``advance``)."""

    t: float
    endpoint: str
    status: int
    model: str | None = None
    stream: bool = False
    admission_tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    messages_hash: str | None = None
    error_type: str | None = None
    limit_kind: str | None = None  # concurrency | rpm | tpm | tpd | overload | quota (429s)
    fault: str | None = None
    finish_reason: str | None = None
    max_tokens: int = 0  # as the request asked


@dataclass
class ServerStats:
    """Counters since start (or ``reset_stats``); ``requests`` counts chat-completion requests."""

    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    rate_limited: dict[str, int] = field(default_factory=dict)  # 429s by kind
    endpoints: dict[str, int] = field(default_factory=dict)
    tokens_admitted: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    max_concurrency: int = 0
    in_flight: int = 0
    log: list[RequestRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["by_status"] = {str(k): v for k, v in self.by_status.items()}
        return data


def messages_hash(messages: Any) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


class Gateway:
    """Limits, clock, faults and counters of one fake account."""

    def __init__(
        self,
        *,
        limits: RateLimits | None = None,
        latency: Latency | None = None,
        token_scale: float = 1.0,
        keys: Collection[str] = (TEST_API_KEY,),
        models: Mapping[str, int] | None = None,
        gid_tier: int = 1,
        account_id: str = "cn0tome0test0account",
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        wall: Callable[[], float] = time.time,
        obedience: Obedience = OBEDIENT,
        prefix_cache: bool = False,
        flavour: str = "moonshot",
        count_endpoint: bool = True,
    ) -> None:
        self._lock = threading.Lock()
        # False plays a gateway without Moonshot's token-count endpoint (404): clients count locally.
        self.count_endpoint = count_endpoint
        self.flavour = check_flavour(flavour)  # which server it plays (pipeline.testing.local_servers)
        self._initial: dict[str, Any] = {
            "limits": limits,
            "latency": latency,
            "token_scale": token_scale,
            "obedience": obedience,
            "prefix_cache": prefix_cache,
        }
        self.obedience = obedience  # how the model treats the requested length
        # Automatic prefix caching (as Kimi's): a request's leading messages seen before are billed as cached.
        self.prefix_cache = prefix_cache
        self._prefixes: OrderedDict[str, None] = OrderedDict()
        self.generation = 0  # bumped by reset(); answers to older requests are not counted
        self.limits = limits or RateLimits(concurrency=0)
        self.latency = latency if latency is not None else Latency()
        self.tokenizer = ServerTokenizer(token_scale=token_scale)
        self.keys = frozenset(keys)
        self.models = dict(models or MOONSHOT_MODELS)
        self.gid_tier = gid_tier
        self.account_id = account_id
        self.default_max_tokens = default_max_tokens
        self._wall = wall
        self._offset = 0.0
        self._faults: deque[Fault] = deque()
        self._windows = RateWindows(self.now())
        self._stats = ServerStats()
        self.files: dict[str, tuple[str, bytes]] = {}
        # What the service's OCR "reads" on PDF pages without a text layer (the real one runs OCR); None: nothing.
        self.ocr_text: str | None = None

    # --- configuration and clock -----------------------------------------------------------------------------

    def configure(
        self,
        *,
        limits: RateLimits | None = None,
        latency: Latency | None = None,
        token_scale: float | None = None,
        gid_tier: int | None = None,
        obedience: Obedience | None = None,
        prefix_cache: bool | None = None,
    ) -> None:
        """Change limits/latency/tokenizer/model behaviour on a running server (None keeps the current value)."""
        with self._lock:
            if obedience is not None:
                self.obedience = obedience
            if prefix_cache is not None:
                self.prefix_cache = prefix_cache
            if limits is not None:
                self.limits = limits
            if latency is not None:
                self.latency = latency
            if token_scale is not None:
                self.tokenizer = ServerTokenizer(token_scale=token_scale)
            if gid_tier is not None:
                self.gid_tier = gid_tier

    def reset(self) -> None:
        """Back to the state after construction: initial limits/latency/scale, clock, windows, faults, stats.

        Calls still in flight keep their concurrency slot until they end but are no longer counted.
        """
        with self._lock:
            self.generation += 1
            self._offset = 0.0
            self._faults.clear()
            self._windows.clear(self.now())
            self._stats = ServerStats()
            self.files.clear()
            self._prefixes.clear()
        initial = self._initial
        self.configure(
            limits=initial["limits"] or RateLimits(concurrency=0),
            latency=initial["latency"] if initial["latency"] is not None else Latency(),
            token_scale=initial["token_scale"],
            obedience=initial["obedience"],
            prefix_cache=initial["prefix_cache"],
        )

    def now(self) -> float:
        """The server's clock: wall time plus everything ``advance`` added."""
        return self._wall() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the server's clock forward (slides the RPM/TPM windows; past UTC midnight resets TPD)."""
        with self._lock:
            self._offset += seconds

    def reset_day(self) -> None:
        """Forget today's TPD usage, as at UTC midnight."""
        with self._lock:
            self._windows.reset_day(self.now())

    def seconds_to_midnight(self) -> float:
        t = self.now()
        day = datetime.fromtimestamp(t, UTC).date() + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() - t

    def ak(self, key: str) -> str:
        """The key's public id as the gateway prints it (never the key itself)."""
        return "ak-" + hashlib.sha256(key.encode()).hexdigest()[:12]

    # --- faults ----------------------------------------------------------------------------------------------

    def inject(self, kind: str, times: int = 1, **params: Any) -> None:
        """Queue ``times`` faults of ``kind`` for the next chat requests (see FAULT_KINDS)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(sorted(FAULT_KINDS))}")
        with self._lock:
            self._faults.extend(Fault(kind, dict(params)) for _ in range(times))

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    # --- prefix cache ----------------------------------------------------------------------------------------

    def cached_prefix_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens of the leading messages an earlier request already sent (0 without prefix caching).

        Whole messages are the cache's unit (the real one works on token blocks): a shared system message and
        shared leading turns hit, a message that differs ends the hit. This request's prefixes are remembered.
        """
        if not self.prefix_cache:
            return 0
        cached, hitting = 0, True
        with self._lock:
            for i, message in enumerate(messages):
                key = messages_hash(messages[: i + 1])
                if hitting and key in self._prefixes:
                    self._prefixes.move_to_end(key)
                    cached += self.tokenizer.count(str(message.get("content") or "")) + MESSAGE_OVERHEAD
                else:
                    hitting = False
                    self._prefixes[key] = None
            while len(self._prefixes) > PREFIX_CACHE_ENTRIES:
                self._prefixes.popitem(last=False)
        return cached

    # --- limits ----------------------------------------------------------------------------------------------

    def admit(self, cost: int, key: str) -> Rejection | None:
        """Admit a call costing ``cost`` tokens (prompt + max_tokens), or say which limit refused it."""
        with self._lock:
            rejection = self._windows.admit(cost, self.now(), self.limits, self.account_id, self.ak(key))
            if rejection is None:
                self._stats.tokens_admitted += cost
                self._stats.max_concurrency = max(self._stats.max_concurrency, self._windows.in_flight)
            return rejection

    def release(self) -> None:
        """An admitted call finished (its concurrency slot frees)."""
        with self._lock:
            self._windows.in_flight -= 1

    def usage_now(self) -> dict[str, int]:
        """Current window usage: in-flight calls, calls and tokens in the last minute, tokens today."""
        with self._lock:
            return self._windows.usage(self.now())

    # --- counters --------------------------------------------------------------------------------------------

    def record(self, record: RequestRecord, generation: int | None = None) -> None:
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            s = self._stats
            s.endpoints[record.endpoint] = s.endpoints.get(record.endpoint, 0) + 1
            s.by_status[record.status] = s.by_status.get(record.status, 0) + 1
            if record.endpoint == "chat":
                s.requests += 1
                s.prompt_tokens += record.prompt_tokens if record.status == 200 else 0
                s.completion_tokens += record.completion_tokens
                s.cached_tokens += record.cached_tokens
            if record.status == 429 and record.limit_kind:
                s.rate_limited[record.limit_kind] = s.rate_limited.get(record.limit_kind, 0) + 1
            s.log.append(record)

    def stats(self) -> ServerStats:
        """A snapshot of the counters."""
        with self._lock:
            s = self._stats
            return ServerStats(
                requests=s.requests,
                by_status=dict(s.by_status),
                rate_limited=dict(Counter(s.rate_limited)),
                endpoints=dict(s.endpoints),
                tokens_admitted=s.tokens_admitted,
                prompt_tokens=s.prompt_tokens,
                completion_tokens=s.completion_tokens,
                cached_tokens=s.cached_tokens,
                max_concurrency=s.max_concurrency,
                in_flight=self._windows.in_flight,
                log=list(s.log),
            )

    def reset_stats(self) -> None:
        """Zero the counters and the request log (limit windows and faults stay)."""
        with self._lock:
            self._stats = ServerStats(max_concurrency=self._windows.in_flight)
