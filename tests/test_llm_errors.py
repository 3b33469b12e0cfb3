"""Every status, error body and httpx exception maps to a typed tome error (pipeline.llm: error_mapping, transport_errors)."""

from __future__ import annotations

import inspect
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from pipeline import errors as E
from pipeline.llm.error_bodies import retry_after_from_headers, retry_after_from_message
from pipeline.llm.error_mapping import error_from_response
from pipeline.llm.transport_errors import error_from_transport
from pipeline.utc import next_utc_midnight

FIXTURES = Path(__file__).parent / "fixtures" / "moonshot" / "errors"
NOW = datetime(2026, 3, 5, 17, 30, tzinfo=UTC)

# fixture file -> (error class, attributes it must carry)
EXPECTED: dict[str, tuple[type[E.TomeError], dict[str, object]]] = {
    "400_token_limit": (E.ContextLengthError, {"limit": 8192, "requested": 13347, "status": 400}),
    "400_token_limit_2024": (E.ContextLengthError, {"limit": 8192, "requested": None}),
    "400_input_too_long": (E.ContextLengthError, {"limit": None}),
    "400_empty_message": (E.InvalidRequestError, {"error_type": "invalid_request_error"}),
    "400_content_filter": (E.ContentFilterError, {"error_type": "content_filter"}),
    "401_invalid_authentication": (E.AuthenticationError, {"status": 401}),
    "401_incorrect_api_key": (E.AuthenticationError, {"error_type": "incorrect_api_key_error"}),
    "403_not_active": (E.QuotaExhaustedError, {"quota": "balance", "status": 403}),
    "404_model_not_found": (E.ModelNotFoundError, {"status": 404}),
    "429_engine_overloaded": (E.OverloadedError, {"retry_after": None}),
    "429_token_quota": (E.QuotaExhaustedError, {"quota": "balance", "resets_at": None}),
    "429_suspended": (E.QuotaExhaustedError, {"quota": "balance"}),
    "429_max_concurrency": (E.RateLimitError, {"limit_kind": "concurrency", "retry_after": 1.0}),
    "429_max_rpm": (E.RateLimitError, {"limit_kind": "rpm", "retry_after": 20.0}),
    "429_tpm": (E.RateLimitError, {"limit_kind": "tpm", "retry_after": None}),
    "429_tpd": (E.QuotaExhaustedError, {"quota": "tpd", "resets_at": datetime(2026, 3, 6, tzinfo=UTC)}),
    "500_unexpected_output": (E.ServerError, {"status": 500, "error_type": "unexpected_output"}),
    "500_extract_failed": (E.CorruptDocumentError, {}),
    "504_gateway_timeout_html": (E.ServerError, {"status": 504, "error_type": None}),
}


def load_fixture(name: str) -> tuple[int, str, str]:
    """(status, content type, body text) of a recorded error answer."""
    doc = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    text = doc["body_text"] if "body_text" in doc else json.dumps(doc["body"], ensure_ascii=False)
    return doc["status"], doc["content_type"], text


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_error_maps_to_its_type(name: str) -> None:
    status, ctype, body = load_fixture(name)
    cls, attrs = EXPECTED[name]
    err = error_from_response(status, body, {"content-type": ctype, "Msh-Request-Id": "rid-1"}, now=NOW)
    assert type(err) is cls
    for attr, value in attrs.items():
        assert getattr(err, attr) == value, attr
    if isinstance(err, E.LLMStatusError):
        assert err.request_id == "rid-1"


def test_quota_messages_name_the_quota_and_say_how_to_resume() -> None:
    tpd = error_from_response(*load_fixture("429_tpd")[::2], now=NOW)
    assert "TPD" in str(tpd) and "2026-03-06 00:00 UTC" in str(tpd) and "resumes" in str(tpd)
    assert tpd.exit_code == 3
    balance = error_from_response(*load_fixture("429_token_quota")[::2], now=NOW)
    assert "balance" in str(balance) and "Top up" in str(balance)


def test_auth_error_names_the_key_variable() -> None:
    err = error_from_response(401, json.dumps({"error": {"message": "Invalid Authentication"}}), key_env="OPENAI_API_KEY")
    assert "OPENAI_API_KEY" in str(err)


def test_html_504_does_not_crash_and_says_what_it_was() -> None:
    status, _ctype, body = load_fixture("504_gateway_timeout_html")
    err = error_from_response(status, body.encode())
    assert "504 Gateway Time-out" in str(err) and "<html>" not in str(err)


@pytest.mark.parametrize("status", range(400, 600))
def test_every_error_status_maps_to_a_tome_error(status: int) -> None:
    for body in (b"", b"<html>oops</html>", b'{"error":{"message":"x","type":"y"}}', b"[1,2]", b'{"error":"flat"}'):
        err = error_from_response(status, body)
        assert isinstance(err, E.TomeError)
        assert str(err)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 599])
def test_5xx_is_a_server_error(status: int) -> None:
    assert isinstance(error_from_response(status, b"bad gateway"), E.ServerError)


def _httpx_exceptions() -> list[type[Exception]]:
    return [
        obj
        for _name, obj in inspect.getmembers(httpx, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__.startswith("httpx")
    ]


def _instance(cls: type[Exception]) -> Exception:
    request = httpx.Request("POST", "https://api.moonshot.cn/v1/chat/completions")
    if issubclass(cls, httpx.HTTPStatusError):
        response = httpx.Response(503, request=request, text="down")
        return cls("boom", request=request, response=response)
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    if issubclass(cls, httpx.StreamError):
        return cls() if cls is not httpx.StreamError else cls("boom")
    return cls("boom")


@pytest.mark.parametrize("cls", _httpx_exceptions(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("in_stream", [False, True])
def test_every_httpx_exception_maps_to_a_tome_error(cls: type[Exception], in_stream: bool) -> None:
    err = error_from_transport(_instance(cls), url="https://api.moonshot.cn/v1/chat/completions", in_stream=in_stream)
    assert isinstance(err, E.TomeError)
    assert "api.moonshot.cn" in str(err) or isinstance(err, E.LLMStatusError | E.ConfigError)


@pytest.mark.parametrize(
    ("exc", "in_stream", "expected"),
    [
        (httpx.ReadTimeout("t"), False, E.LLMTimeoutError),
        (httpx.ConnectTimeout("t"), False, E.LLMTimeoutError),
        (httpx.PoolTimeout("t"), True, E.LLMTimeoutError),
        (httpx.ConnectError("refused"), False, E.LLMConnectionError),
        (httpx.RemoteProtocolError("peer closed"), False, E.LLMConnectionError),
        (httpx.RemoteProtocolError("peer closed"), True, E.StreamInterruptedError),
        (httpx.ReadError("reset"), True, E.StreamInterruptedError),
        (httpx.ReadError("reset"), False, E.LLMConnectionError),
        (httpx.UnsupportedProtocol("ftp"), False, E.ConfigError),
    ],
)
def test_transport_error_table(exc: Exception, in_stream: bool, expected: type[E.TomeError]) -> None:
    assert type(error_from_transport(exc, url="http://x/v1", in_stream=in_stream)) is expected


def test_key_is_redacted_from_server_messages() -> None:
    key = "sk-secret-key-123456"
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}", "type": "x"}})
    err = error_from_response(401, body, redact=lambda s: s.replace(key, "sk-***"))
    assert key not in str(err) and "sk-***" in str(err)


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("request reached max concurrency: 1, please try again after 1 seconds", 1.0),
        ("please try again after 20 seconds", 20.0),
        ("Please try again after 2.5 second", 2.5),
        ("The engine is currently overloaded, please try again later", None),
    ],
)
def test_retry_after_from_message(message: str, seconds: float | None) -> None:
    assert retry_after_from_message(message) == seconds


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "x", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "Thu, 05 Mar 2026 17:30:30 GMT"}, 30.0),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_from_headers(headers, now=NOW) == seconds


def test_header_hint_used_when_message_has_none() -> None:
    body = json.dumps({"error": {"message": "slow down", "type": "rate_limit_reached_error"}})
    err = error_from_response(429, body, {"Retry-After": "9"})
    assert isinstance(err, E.RateLimitError) and err.retry_after == 9.0


def test_next_utc_midnight() -> None:
    assert next_utc_midnight(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("message", "kind", "value"),
    [
        ("Your account u<ak> request reached max concurrency: 4, please try again after 1 seconds", "concurrency", 4),
        ("Your account u<ak> request reached max request: 30, please try again after 12 seconds", "rpm", 30),
        ("Your account u<ak> request reached TPM rate limit, current:46229, limit:40000", "tpm", 40000),
        ("The engine is currently overloaded, please try again later", None, None),
    ],
)
def test_rate_limit_messages_state_the_real_limit(message: str, kind: str | None, value: int | None) -> None:
    from pipeline.llm.error_bodies import stated_limit

    assert stated_limit(message, kind) == value
