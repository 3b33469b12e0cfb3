"""The error answers of Moonshot's gateway, word for word (shared/moonshot-api.md), as the server sends them.

Each function returns ``(status, body)``; ``body`` is the JSON envelope ``{"error":{"message","type"}}``
except for the 504 page, which is HTML like the real gateway's.
"""

from __future__ import annotations

from typing import Any

ErrorAnswer = tuple[int, dict[str, Any]]


def envelope(message: str, error_type: str) -> dict[str, Any]:
    """Moonshot's error envelope: message and type only (no code, no param)."""
    return {"error": {"message": message, "type": error_type}}


def invalid_authentication() -> ErrorAnswer:
    return 401, envelope("Invalid Authentication", "invalid_authentication_error")


def incorrect_api_key() -> ErrorAnswer:
    return 401, envelope("Incorrect API key provided", "incorrect_api_key_error")


def account_not_active(uid: str, ak: str) -> ErrorAnswer:
    return 403, envelope(
        f"Your account {uid}<{ak}> is not active, current state: suspended, "
        "please check your plan and billing details",
        "exceeded_current_quota_error",
    )


def model_not_found(model: str) -> ErrorAnswer:
    return 404, envelope(f"Not found the model {model} or Permission denied", "resource_not_found_error")


def token_limit(limit: int, requested: int) -> ErrorAnswer:
    """prompt + max_tokens over the context (2026 form, with the requested total)."""
    return 400, envelope(
        f"Invalid request: Your request exceeded model token limit: {limit} (requested: {requested})",
        "invalid_request_error",
    )


def input_too_long() -> ErrorAnswer:
    """The prompt alone is over the context."""
    return 400, envelope("Input token length too long", "invalid_request_error")


def empty_message(position: int, role: str) -> ErrorAnswer:
    return 400, envelope(
        f"Invalid request: the message at position {position} with role '{role}' must not be empty",
        "invalid_request_error",
    )


def invalid_request(detail: str) -> ErrorAnswer:
    """Other request errors (wording unconfirmed)."""
    return 400, envelope(f"Invalid request: {detail}", "invalid_request_error")


def content_filter() -> ErrorAnswer:
    return 400, envelope("The request was rejected because it was considered high risk", "content_filter")


def engine_overloaded() -> ErrorAnswer:
    return 429, envelope("The engine is currently overloaded, please try again later", "engine_overloaded_error")


def token_quota(credit: str) -> ErrorAnswer:
    return 429, envelope(
        f"You exceeded your current token quota: {credit}, please check your account balance",
        "exceeded_current_quota_error",
    )


def account_suspended(uid: str, ak: str) -> ErrorAnswer:
    return 429, envelope(
        f"Your account {uid}<{ak}> is suspended, please check your plan and billing details",
        "exceeded_current_quota_error",
    )


def max_concurrency(uid: str, ak: str, concurrency: int, wait_s: int) -> ErrorAnswer:
    return 429, envelope(
        f"Your account {uid}<{ak}> request reached max concurrency: {concurrency}, "
        f"please try again after {wait_s} seconds",
        "rate_limit_reached_error",
    )


def max_rpm(uid: str, ak: str, rpm: int, wait_s: int) -> ErrorAnswer:
    return 429, envelope(
        f"Your account {uid}<{ak}> request reached max request: {rpm}, please try again after {wait_s} seconds",
        "rate_limit_reached_error",
    )


def tpm_limit(uid: str, ak: str, current: int, limit: int) -> ErrorAnswer:
    return 429, envelope(
        f"Your account {uid}<{ak}> request reached TPM rate limit, current:{current}, limit:{limit}",
        "rate_limit_reached_error",
    )


def tpd_limit(uid: str, ak: str, current: int, limit: int) -> ErrorAnswer:
    # The real message has no space after the comma here, unlike the TPM one.
    return 429, envelope(
        f"Your account {uid}<{ak}> request reached TPD rate limit,current:{current}, limit:{limit}",
        "rate_limit_reached_error",
    )


def unexpected_output() -> ErrorAnswer:
    return 500, envelope("invalid state transition", "unexpected_output")


def extract_failed(reason: str) -> ErrorAnswer:
    return 500, envelope(f"Failed to extract file: {reason}", "server_error")


def file_not_found(file_id: str) -> ErrorAnswer:
    return 404, envelope(f"file {file_id} not found", "resource_not_found_error")


GATEWAY_TIMEOUT_HTML = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
