"""The answer the test server gives to an injected error fault (rate limits, quota, filters, 5xx pages, replays)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.responses import JSONResponse, Response

from pipeline.testing import moonshot_errors as E
from pipeline.testing.gateway import Fault, Gateway


def fault_answer(gw: Gateway, fault: Fault, key: str, context: int) -> tuple[str | None, Response]:
    """(429 kind or None, the response) for an error fault."""
    p, uid, ak, lim = fault.params, gw.account_id, gw.ak(key), gw.limits
    answers: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
        "overload": E.engine_overloaded,
        "rate_limit_concurrency": lambda: E.max_concurrency(uid, ak, lim.concurrency or 1, p.get("wait", 1)),
        "rate_limit_rpm": lambda: E.max_rpm(uid, ak, lim.rpm or 3, p.get("wait", 20)),
        "rate_limit_tpm": lambda: E.tpm_limit(uid, ak, p.get("current", (lim.tpm or 32000) + 1), lim.tpm or 32000),
        "rate_limit_tpd": lambda: E.tpd_limit(uid, ak, p.get("current", (lim.tpd or 1500000) + 1), lim.tpd or 1500000),
        "quota": lambda: E.token_quota(p.get("credit", "0.0")),
        "suspended": lambda: E.account_suspended(uid, ak),
        "inactive": lambda: E.account_not_active(uid, ak),
        "auth": E.incorrect_api_key,
        "content_filter": E.content_filter,
        "context_length": lambda: E.token_limit(context, p.get("requested", context + 100)),
        "input_too_long": E.input_too_long,
        "500": E.unexpected_output,
        "503": lambda: (503, E.envelope("Service Unavailable", "server_error")),
    }
    kinds = {
        "overload": "overload",
        "rate_limit_concurrency": "concurrency",
        "rate_limit_rpm": "rpm",
        "rate_limit_tpm": "tpm",
        "rate_limit_tpd": "tpd",
        "quota": "quota",
        "suspended": "quota",
    }
    if fault.kind in answers:
        status, body = answers[fault.kind]()
        return kinds.get(fault.kind), JSONResponse(body, status_code=status)
    if fault.kind == "504_html":
        return None, Response(E.GATEWAY_TIMEOUT_HTML, status_code=504, media_type="text/html")
    if fault.kind == "502":
        page = "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
        return None, Response(page, status_code=502, media_type="text/html")
    if fault.kind == "sse":
        return None, Response(p["transcript"], status_code=200, media_type="text/event-stream")
    # "response": a canned answer, e.g. a recorded error body replayed from a fixture file
    raw = p.get("body", b"")
    content = json.dumps(raw, ensure_ascii=False) if isinstance(raw, dict | list) else raw
    status = int(p.get("status", 200))
    kind = p.get("limit_kind")
    return kind, Response(
        content, status_code=status, media_type=p.get("content_type", "application/json"), headers=p.get("headers")
    )
