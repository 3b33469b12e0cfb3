"""Context-length refusals of every server tome talks to map to ContextLengthError with the numbers they state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import errors as E
from pipeline.llm.error_bodies import context_numbers
from pipeline.llm.error_mapping import error_from_response

FIXTURES = Path(__file__).parent / "fixtures" / "servers" / "context"
MOONSHOT = Path(__file__).parent / "fixtures" / "moonshot" / "errors"

# fixture -> (window, requested = prompt + completion, prompt) as the body states them (None: not stated)
EXPECTED: dict[str, tuple[int | None, int | None, int | None]] = {
    "openai_requested": (8192, 9150, 8550),
    "openai_messages": (128000, None, 131420),
    "deepseek": (65536, 70100, 69500),
    "vllm_legacy": (4096, 4700, 4100),
    "vllm_input": (2048, None, 2300),
    "vllm_max_tokens": (2048, 2300, 1700),
    "llama_cpp_python": (2048, 3232, 2632),
    "llama_server": (2048, None, 2300),
    "llama_server_500": (1024, None, 1500),
    "ollama_no_truncate": (4096, None, 5000),
    "ollama_no_shift": (None, None, None),
    "ollama_embed": (None, None, None),
    "openrouter": (8192, 9000, 8400),
}


def _load(path: Path) -> tuple[int, str]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    text = doc["body_text"] if "body_text" in doc else json.dumps(doc["body"], ensure_ascii=False)
    return doc["status"], text


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_refusal_maps_to_context_length_error_with_its_numbers(name: str) -> None:
    status, body = _load(FIXTURES / f"{name}.json")
    err = error_from_response(status, body, {})
    assert isinstance(err, E.ContextLengthError), (name, type(err), str(err))
    assert (err.limit, err.requested, err.prompt_tokens) == EXPECTED[name]
    assert err.status == status
    # The message names what the server said, once, on one line.
    assert "\n" not in str(err) and "exceeded the model's context" in str(err)


@pytest.mark.parametrize(
    ("name", "numbers"),
    [("400_token_limit", (8192, 13347, None)), ("400_token_limit_2024", (8192, None, None)),
     ("400_input_too_long", (None, None, None))],
)  # fmt: skip
def test_moonshot_refusals_keep_their_numbers(name: str, numbers: tuple[int | None, ...]) -> None:
    status, body = _load(MOONSHOT / f"{name}.json")
    err = error_from_response(status, body, {})
    assert isinstance(err, E.ContextLengthError)
    assert (err.limit, err.requested, err.prompt_tokens) == numbers


def test_requested_is_the_sum_when_only_the_parts_are_named() -> None:
    message = "This model's maximum context length is 4096 tokens and your request has 3900 input tokens (600 > 4096 - 3900)."
    assert context_numbers(f"'max_tokens' is too large: 600. {message}") == (4096, 4500, 3900)


def test_fields_win_over_wording() -> None:
    # llama-server states the numbers as fields; a message with other numbers must not override them.
    fields = {"n_ctx": 1024, "n_prompt_tokens": 1500}
    assert context_numbers("request (9 tokens) exceeds the available context size (8 tokens)", fields) == (
        1024,
        None,
        1500,
    )


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error"}}),
        (500, {"error": {"message": "model crashed", "type": "server_error"}}),
        (400, {"error": "the model failed to load"}),
    ],
)
def test_other_errors_are_not_context_refusals(status: int, body: dict) -> None:
    err = error_from_response(status, json.dumps(body), {})
    assert not isinstance(err, E.ContextLengthError)
