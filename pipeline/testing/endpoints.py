"""What every endpoint of the test server does: authenticate, record the request, answer with Moonshot's headers."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from pipeline.testing import moonshot_errors as E
from pipeline.testing.gateway import Gateway, RequestRecord

_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$")


def response_headers(gw: Gateway, started: float) -> dict[str, str]:
    return {
        "Msh-Request-Id": str(uuid.uuid4()),
        "Msh-Gid": f"enterprise-tier-{gw.gid_tier}",
        "Server-Timing": f"inner; dur={int((time.monotonic() - started) * 1000)}",
    }


def error_response(gw: Gateway, started: float, answer: tuple[int, dict[str, Any]]) -> JSONResponse:
    status, body = answer
    return JSONResponse(body, status_code=status, headers=response_headers(gw, started))


def authenticate(gw: Gateway, request: Request) -> tuple[str | None, tuple[int, dict[str, Any]] | None]:
    if not gw.keys:  # like a local vLLM / Ollama server: no authentication at all
        return "anonymous", None
    m = _BEARER.match(request.headers.get("authorization", ""))
    if not m:
        return None, E.invalid_authentication()
    if m.group(1) not in gw.keys:
        return None, E.incorrect_api_key()
    return m.group(1), None


def record_request(gw: Gateway, endpoint: str, t: float, status: int, body: Any = None, **kw: Any) -> None:
    err = body.get("error") if isinstance(body, dict) else None
    generation = kw.pop("generation", None)
    gw.record(
        RequestRecord(
            t=t,
            endpoint=endpoint,
            status=status,
            error_type=err.get("type") if isinstance(err, dict) else None,
            **kw,
        ),
        generation,
    )


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None
