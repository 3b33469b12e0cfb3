"""The starlette app of the Moonshot-compatible test server: its routes and the chat endpoint's checks."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipeline.testing import moonshot_errors as E
from pipeline.testing.endpoints import (
    authenticate,
    error_response,
    json_body,
    record_request,
    response_headers,
)
from pipeline.testing.fault_answers import fault_answer
from pipeline.testing.gateway import ERROR_FAULTS, Gateway, messages_hash
from pipeline.testing.judge_answers import is_judge_request, judge
from pipeline.testing.local_servers import model_entry, ollama_show, overflow, props
from pipeline.testing.streaming import CREATED, dropped_json, install_log_filter, sse_answer
from pipeline.testing.summariser import summarise

_AUTO_TIERS = ("moonshot-v1-8k", "moonshot-v1-32k", "moonshot-v1-128k")


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


def _pick_model(gw: Gateway, model: str, need: int) -> tuple[str, int]:
    """moonshot-v1-auto serves with the smallest tier that fits prompt + max_tokens."""
    if model == "moonshot-v1-auto":
        for name in _AUTO_TIERS:
            if name in gw.models and gw.models[name] >= need:
                return name, gw.models[name]
    return model, gw.models[model]


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
    key, auth_error = authenticate(gw, request)
    if auth_error or key is None:
        answer = auth_error or E.invalid_authentication()
        record_request(gw, "chat", t, answer[0], answer[1])
        return error_response(gw, started, answer)
    body = await json_body(request)
    invalid = _validate_chat(gw, body)
    if invalid is None and body["model"] not in gw.models:
        invalid = E.model_not_found(body["model"])
    if invalid is not None:
        record_request(gw, "chat", t, invalid[0], invalid[1], model=body.get("model") if isinstance(body, dict) else None)
        return error_response(gw, started, invalid)

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
        kind, response = fault_answer(gw, fault, key, context)
        response.headers.update(response_headers(gw, started))
        try:
            err_body = json.loads(bytes(response.body))
        except ValueError:
            err_body = None
        record_request(gw, "chat", t, response.status_code, err_body, limit_kind=kind, fault=fault.kind, **record)
        return response

    # Each server refuses (or silently cuts) an overflow its own way; room < max_tokens is a silent cut.
    too_long, room = overflow(gw.flavour, context=context, prompt=prompt, max_tokens=max_tokens)
    if too_long is not None:
        record_request(gw, "chat", t, too_long[0], too_long[1], **record)
        return error_response(gw, started, too_long)

    cost = prompt + max_tokens
    rejection = gw.admit(cost, key)
    if rejection is not None:
        record_request(gw, "chat", t, 429, rejection.body, limit_kind=rejection.kind, admission_tokens=cost, **record)
        return error_response(gw, started, (rejection.status, rejection.body))

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
        record_request(
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
        headers = response_headers(gw, started)
        if stream:
            gen = sse_answer(
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
            "created": CREATED,
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
            return StreamingResponse(dropped_json(data), media_type="application/json", headers=headers)
        return JSONResponse(payload, headers=headers)
    finally:
        if not handed_off:
            release()


async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    started, t = time.monotonic(), gw.now()
    _key, auth_error = authenticate(gw, request)
    if auth_error:
        record_request(gw, "models", t, auth_error[0], auth_error[1])
        return error_response(gw, started, auth_error)
    record_request(gw, "models", t, 200)
    data = [model_entry(gw.flavour, name, ctx, CREATED) for name, ctx in gw.models.items()]
    return JSONResponse({"object": "list", "data": data}, headers=response_headers(gw, started))


async def llama_server_props(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    answer = props(gw.flavour, gw.models)
    return JSONResponse(answer) if answer else JSONResponse({"error": "Not Found"}, status_code=404)


async def ollama_api_show(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    body = await json_body(request)
    name = body.get("model") if isinstance(body, dict) else None
    answer = ollama_show(gw.flavour, gw.models, name) if isinstance(name, str) else None
    if answer is None:
        return JSONResponse({"error": f"model '{name}' not found"}, status_code=404)
    return JSONResponse(answer)


async def estimate_tokens(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    if not gw.count_endpoint:
        return JSONResponse({"error": {"message": "Not Found", "type": "not_found"}}, status_code=404)
    started, t = time.monotonic(), gw.now()
    _key, answer = authenticate(gw, request)
    body = await json_body(request) if answer is None else None
    if answer is None:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            answer = E.invalid_request("model and messages are required")
        elif body.get("model") not in gw.models:
            answer = E.model_not_found(str(body.get("model")))
    if answer is not None:
        record_request(gw, "estimate", t, answer[0], answer[1])
        return error_response(gw, started, answer)
    assert isinstance(body, dict)  # an invalid body was answered above
    total = gw.tokenizer.count_messages([m for m in body["messages"] if isinstance(m, dict)])
    record_request(gw, "estimate", t, 200, prompt_tokens=total)
    envelope = {"code": 0, "data": {"total_tokens": total}, "scode": "0x0", "status": True}
    return JSONResponse(envelope, headers=response_headers(gw, started))


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

