"""How local OpenAI-compatible servers differ from Moonshot where tome cares, for the test server to play them.

- Context refusals: each server's wording (the bodies of tests/fixtures/servers/context).
- The silent cut: llama.cpp's servers accept a prompt that fits but prompt + max_tokens does not, and stop
  generating when the window is full (finish_reason "length").
- Where the window is stated: vLLM's ``/v1/models`` (``max_model_len``), llama-server's ``/props``,
  Ollama's ``/api/show`` (``num_ctx``); llama-cpp-python states it nowhere.
"""

from __future__ import annotations

from typing import Any

from pipeline.testing import moonshot_errors as E

FLAVOURS = ("moonshot", "vllm", "llama-cpp-python", "llama-server", "ollama")

ErrorAnswer = E.ErrorAnswer


def check_flavour(flavour: str) -> str:
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown server flavour {flavour!r}; use one of {', '.join(FLAVOURS)}")
    return flavour


def overflow(flavour: str, *, context: int, prompt: int, max_tokens: int) -> tuple[ErrorAnswer | None, int]:
    """(the refusal, or None) and the completion room the server grants: below ``max_tokens`` = a silent cut."""
    if flavour == "moonshot":
        if prompt > context:
            return E.input_too_long(), 0
        if prompt + max_tokens > context:
            return E.token_limit(context, prompt + max_tokens), 0
        return None, max_tokens
    if flavour == "vllm":
        if prompt >= context:
            return _vllm(
                f"This model's maximum context length is {context} tokens. However, your request has {prompt} "
                "input tokens. Please reduce the length of the input messages."
            ), 0
        if prompt + max_tokens > context:
            return _vllm(
                f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's maximum context "
                f"length is {context} tokens and your request has {prompt} input tokens "
                f"({max_tokens} > {context} - {prompt}). None"
            ), 0
        return None, max_tokens
    if flavour == "llama-cpp-python":
        if prompt > context:
            return (
                400,
                {
                    "error": {
                        "message": f"This model's maximum context length is {context} tokens. However, you requested "
                        f"{prompt + max_tokens} tokens ({prompt} in the messages, {max_tokens} in the completion). "
                        "Please reduce the length of the messages or completion.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
            ), 0
        return None, min(max_tokens, context - prompt)
    # llama-server, and Ollama (whose runner is llama-server) with truncate off
    if prompt >= context:
        return (
            400,
            {
                "error": {
                    "code": 400,
                    "message": f"request ({prompt} tokens) exceeds the available context size ({context} tokens), "
                    "try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": prompt,
                    "n_ctx": context,
                }
            },
        ), 0
    return None, min(max_tokens, context - prompt)


def _vllm(message: str) -> ErrorAnswer:
    return 400, {"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}


def model_entry(flavour: str, name: str, context: int, created: int) -> dict[str, Any]:
    """One entry of ``GET /v1/models`` as the server lists it."""
    if flavour == "moonshot":
        return {
            "id": name,
            "object": "model",
            "owned_by": "moonshot",
            "created": created,
            "context_length": context,
        }
    if flavour == "vllm":
        return {
            "id": name,
            "object": "model",
            "owned_by": "vllm",
            "created": created,
            "max_model_len": context,
        }
    if flavour == "ollama":
        return {"id": f"{name}:latest", "object": "model", "owned_by": "library", "created": created}
    return {"id": name, "object": "model", "owned_by": "me", "permissions": []}


def props(flavour: str, models: dict[str, int]) -> dict[str, Any] | None:
    """llama-server's ``GET /props`` (one model per server), None for other servers."""
    if flavour != "llama-server" or not models:
        return None
    name, context = next(iter(models.items()))
    return {"default_generation_settings": {"n_ctx": context, "model": name}, "total_slots": 1}


def ollama_show(flavour: str, models: dict[str, int], name: str) -> dict[str, Any] | None:
    """Ollama's ``POST /api/show`` for a model whose Modelfile sets num_ctx, None elsewhere or when unknown."""
    if flavour != "ollama":
        return None
    context = models.get(name.removesuffix(":latest"))
    if context is None:
        return None
    return {"parameters": f"num_ctx                        {context}\nstop                           \"<|im_end|>\"",
            "model_info": {"llama.context_length": 8192}}  # fmt: skip
