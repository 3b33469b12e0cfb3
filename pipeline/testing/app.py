"""The starlette app of the Moonshot-compatible test server: routes, validation, faults, SSE."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.scripts import CJK_PUNCTUATION, HAN, KANA
from pipeline.testing import moonshot_errors as E
from pipeline.testing.gateway import ERROR_FAULTS, Fault, Gateway, RequestRecord, messages_hash
from pipeline.testing.judge_answers import is_judge_request, judge
from pipeline.testing.local_servers import model_entry, ollama_show, overflow, props
from pipeline.testing.summariser import summarise

_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$")
_PIECE = re.compile(
    rf"[{CJK_PUNCTUATION}{KANA}{HAN}]{{1,2}}"
    rf"|[^\s{CJK_PUNCTUATION}{KANA}{HAN}]+\s*|\s+"
)
_AUTO_TIERS = ("moonshot-v1-8k", "moonshot-v1-32k", "moonshot-v1-128k")
_CREATED = 1715000000  # fixed timestamps keep answers deterministic


class DropConnection(Exception):
    """Raised inside a streaming body to make uvicorn close the socket mid-answer."""


class _QuietDrops(logging.Filter):
    """Hide uvicorn's traceback for connections this server drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not _is_drop(exc)


def _is_drop(exc: BaseException) -> bool:
    if isinstance(exc, DropConnection):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_is_drop(e) for e in exc.exceptions)
    return False


def install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


def _headers(gw: Gateway, started: float) -> dict[str, str]:
    return {
        "Msh-Request-Id": str(uuid.uuid4()),
        "Msh-Gid": f"enterprise-tier-{gw.gid_tier}",
        "Server-Timing": f"inner; dur={int((time.monotonic() - started) * 1000)}",
    }


def _error(gw: Gateway, started: float, answer: tuple[int, dict[str, Any]]) -> JSONResponse:
    status, body = answer
    return JSONResponse(body, status_code=status, headers=_headers(gw, started))


def _auth(gw: Gateway, request: Request) -> tuple[str | None, tuple[int, dict[str, Any]] | None]:
    if not gw.keys:  # like a local vLLM / Ollama server: no authentication at all
        return "anonymous", None
    m = _BEARER.match(request.headers.get("authorization", ""))
    if not m:
        return None, E.invalid_authentication()
    if m.group(1) not in gw.keys:
        return None, E.incorrect_api_key()
    return m.group(1), None


def _record(gw: Gateway, endpoint: str, t: float, status: int, body: Any = None, **kw: Any) -> None:
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


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _validate_chat(gw: Gateway, body: Any) -> tuple[int, dict[str, Any]] | None:
    if not isinstance(body, dict):
        return E.invalid_request("the request body must be a JSON object")
    if not isinstance(body.get("model"), str):
        return E.invalid_request("model is required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return E.invalid_request("messages must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            return E.invalid_request(f"the message at position {i} has an invalid role")
        content = m.get("content")
        if not isinstance(content, str) or not content.strip():
            return E.empty_message(i, str(m.get("role")))
    temperature = body.get("temperature", 0.0)
    if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
        return E.invalid_request("temperature must be in [0, 1]")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return E.invalid_request("max_tokens must be a positive integer")
    return None


def _fault_answer(gw: Gateway, fault: Fault, key: str, context: int) -> tuple[str | None, Response]:
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


def _pick_model(gw: Gateway, model: str, need: int) -> tuple[str, int]:
    """moonshot-v1-auto serves with the smallest tier that fits prompt + max_tokens."""
    if model == "moonshot-v1-auto":
        for name in _AUTO_TIERS:
            if name in gw.models and gw.models[name] >= need:
                return name, gw.models[name]
    return model, gw.models[model]


def _chunk(rid: str, model: str, choices: list[dict[str, Any]], **extra: Any) -> str:
    payload = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": _CREATED,
        "model": model,
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


async def _sse(
    *,
    gw: Gateway,
    text: str,
    finish: str,
    usage: dict[str, int],
    rid: str,
    model: str,
    include_usage: bool,
    fault: str | None,
    release: Callable[[], None],
) -> AsyncIterator[str]:
    """Moonshot's stream: role chunk, content chunks, a final chunk with usage inside the choice, [DONE]."""
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        latency = gw.latency
        yield _chunk(rid, model, [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        pieces = _PIECE.findall(text)
        cut = len(pieces) // 2 if fault in ("drop_stream", "truncate_stream") else None
        emitted = 0
        for i, piece in enumerate(pieces):
            if i == cut:
                if fault == "drop_stream":
                    raise DropConnection()
                return  # truncate_stream: a clean end, but no final chunk and no [DONE]
            emitted += gw.tokenizer.count(piece)
            due = start + latency.ttft_s + latency.per_token_s * emitted
            if due - loop.time() > 0.002:
                await asyncio.sleep(due - loop.time())
            yield _chunk(rid, model, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        if cut is not None:  # an empty answer still gets interrupted
            if fault == "drop_stream":
                raise DropConnection()
            return
        if latency.ttft_s and not pieces:
            await asyncio.sleep(latency.ttft_s)
        yield _chunk(rid, model, [{"index": 0, "delta": {}, "finish_reason": finish, "usage": usage}])
        if include_usage:
            yield _chunk(rid, model, [], usage=usage)
        yield "data: [DONE]\n\n"
    finally:
        release()


async def _dropped_json(body: bytes) -> AsyncIterator[bytes]:
    yield body[: len(body) // 2]
    raise DropConnection()


class _Once:
    """Calls ``fn`` at most once (a slot may be freed from the stream and from a background task)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn: Callable[[], None] | None = fn

    def __call__(self) -> None:
        fn, self._fn = self._fn, None
        if fn is not None:
            fn()


async def chat_completions(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started, t = time.monotonic(), gw.now()
    key, auth_error = _auth(gw, request)
    if auth_error or key is None:
        answer = auth_error or E.invalid_authentication()
        _record(gw, "chat", t, answer[0], answer[1])
        return _error(gw, started, answer)
    body = await _json_body(request)
    invalid = _validate_chat(gw, body)
    if invalid is None and body["model"] not in gw.models:
        invalid = E.model_not_found(body["model"])
    if invalid is not None:
        _record(gw, "chat", t, invalid[0], invalid[1], model=body.get("model") if isinstance(body, dict) else None)
        return _error(gw, started, invalid)

    messages = body["messages"]
    max_tokens = body.get("max_tokens") or gw.default_max_tokens
    stream = bool(body.get("stream"))
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    prompt = gw.tokenizer.prompt_tokens(messages)
    model, context = _pick_model(gw, body["model"], prompt + max_tokens)
    record = {
        "model": model,
        "stream": stream,
        "messages_hash": messages_hash(messages),
        "prompt_tokens": prompt,
        "max_tokens": max_tokens,
    }

    fault = gw.next_fault()
    if fault is not None and fault.kind in ERROR_FAULTS:
        kind, response = _fault_answer(gw, fault, key, context)
        response.headers.update(_headers(gw, started))
        try:
            err_body = json.loads(bytes(response.body))
        except ValueError:
            err_body = None
        _record(gw, "chat", t, response.status_code, err_body, limit_kind=kind, fault=fault.kind, **record)
        return response

    # Each server refuses (or silently cuts) an overflow its own way; room < max_tokens is a silent cut.
    too_long, room = overflow(gw.flavour, context=context, prompt=prompt, max_tokens=max_tokens)
    if too_long is not None:
        _record(gw, "chat", t, too_long[0], too_long[1], **record)
        return _error(gw, started, too_long)

    cost = prompt + max_tokens
    rejection = gw.admit(cost, key)
    if rejection is not None:
        _record(gw, "chat", t, 429, rejection.body, limit_kind=rejection.kind, admission_tokens=cost, **record)
        return _error(gw, started, (rejection.status, rejection.body))

    release = _Once(gw.release)
    generation = gw.generation
    fault_kind = fault.kind if fault else None
    handed_off = False  # once a stream is returned, it frees the slot when it ends
    try:
        if fault_kind == "stall":
            await asyncio.sleep(float(fault.params.get("seconds", 5.0)) if fault else 5.0)
        if is_judge_request(messages):
            summary = judge(messages, max_tokens=room, tokenizer=gw.tokenizer)
        else:
            summary = summarise(messages, max_tokens=room, tokenizer=gw.tokenizer, obedience=gw.obedience)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": summary.completion_tokens,
            "total_tokens": prompt + summary.completion_tokens,
        }
        cached = gw.cached_prefix_tokens(messages)
        if gw.prefix_cache:  # as Kimi's newer models report it: top level and in prompt_tokens_details
            usage["cached_tokens"] = cached
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        rid = "chatcmpl-" + uuid.uuid4().hex[:24]
        _record(
            gw,
            "chat",
            t,
            200,
            admission_tokens=cost,
            completion_tokens=summary.completion_tokens,
            cached_tokens=cached,
            fault=fault_kind,
            finish_reason=summary.finish_reason,
            generation=generation,
            **record,
        )
        headers = _headers(gw, started)
        if stream:
            gen = _sse(
                gw=gw,
                text=summary.text,
                finish=summary.finish_reason,
                usage=usage,
                rid=rid,
                model=model,
                include_usage=include_usage,
                fault=fault_kind,
                release=release,
            )
            handed_off = True
            return StreamingResponse(
                gen, media_type="text/event-stream", headers=headers, background=BackgroundTask(release)
            )
        await asyncio.sleep(gw.latency.total(summary.completion_tokens))
        payload = {
            "id": rid,
            "object": "chat.completion",
            "created": _CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": summary.text},
                    "finish_reason": summary.finish_reason,
                }
            ],
            "usage": usage,
        }
        if fault_kind in ("drop_stream", "truncate_stream"):
            data = json.dumps(payload, ensure_ascii=False).encode()
            return StreamingResponse(_dropped_json(data), media_type="application/json", headers=headers)
        return JSONResponse(payload, headers=headers)
    finally:
        if not handed_off:
            release()


async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started, t = time.monotonic(), gw.now()
    _key, auth_error = _auth(gw, request)
    if auth_error:
        _record(gw, "models", t, auth_error[0], auth_error[1])
        return _error(gw, started, auth_error)
    _record(gw, "models", t, 200)
    data = [model_entry(gw.flavour, name, ctx, _CREATED) for name, ctx in gw.models.items()]
    return JSONResponse({"object": "list", "data": data}, headers=_headers(gw, started))


async def llama_server_props(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    answer = props(gw.flavour, gw.models)
    return JSONResponse(answer) if answer else JSONResponse({"error": "Not Found"}, status_code=404)


async def ollama_api_show(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    body = await _json_body(request)
    name = body.get("model") if isinstance(body, dict) else None
    answer = ollama_show(gw.flavour, gw.models, name) if isinstance(name, str) else None
    if answer is None:
        return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
    return JSONResponse(answer)


async def estimate_tokens(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started, t = time.monotonic(), gw.now()
    _key, answer = _auth(gw, request)
    body = await _json_body(request) if answer is None else None
    if answer is None:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            answer = E.invalid_request("model and messages are required")
        elif body.get("model") not in gw.models:
            answer = E.model_not_found(str(body.get("model")))
    if answer is not None:
        _record(gw, "estimate", t, answer[0], answer[1])
        return _error(gw, started, answer)
    assert isinstance(body, dict)  # an invalid body was answered above
    total = gw.tokenizer.count_messages([m for m in body["messages"] if isinstance(m, dict)])
    _record(gw, "estimate", t, 200, prompt_tokens=total)
    envelope = {"code": 0, "data": {"total_tokens": total}, "scode": "0x0", "status": True}
    return JSONResponse(envelope, headers=_headers(gw, started))


async def stats(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    return JSONResponse({**gw.stats().as_dict(), "window": gw.usage_now()})


def build_app(gateway: Gateway) -> Starlette:
    """The ASGI app serving ``gateway``'s account under /v1 (plus GET /_stats)."""
    from pipeline.testing.files_api import delete_file, file_content, upload_file  # it builds on this module

    install_log_filter()
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/tokenizers/estimate-token-count", estimate_tokens, methods=["POST"]),
            Route("/v1/files", upload_file, methods=["POST"]),
            Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
            Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
            Route("/_stats", stats, methods=["GET"]),
            Route("/props", llama_server_props, methods=["GET"]),
            Route("/api/show", ollama_api_show, methods=["POST"]),
        ]
    )
    app.state.gateway = gateway
    return app

