"""Every error tome raises, rooted at :class:`TomeError`.

TomeError                       exit 1 unless stated
├── ConfigError                 exit 2: bad configuration, unknown model/tier, missing key
├── DocumentError               exit 2: the input document cannot be used
│   ├── DocumentNotFoundError
│   ├── UnsupportedDocumentError
│   ├── EmptyDocumentError
│   ├── DatasetError              an evaluation dataset cannot be read
│   ├── DocumentEncodingError
│   ├── CorruptDocumentError
│   ├── PasswordRequiredError   (encrypted PDF, no / wrong password)
│   └── NoTextLayerError        (image-only PDF, needs OCR)
├── ChunkingError
├── StoreError                  the SQLite/SQL store failed
├── DepthLimitError             recursion did not converge (last resort)
├── JudgeFormatError            the judge model's answer could not be parsed (tome eval --judge)
└── LLMError                    anything between us and the model
    ├── LLMConnectionError      connect failure, dropped connection
    │   └── ServerUnreachableError  connection refused / DNS failure: nothing listens at the URL
    ├── LLMTimeoutError
    ├── StreamInterruptedError  SSE ended without [DONE]
    └── LLMStatusError          the server answered with an error status
        ├── AuthenticationError       401, exit 2
        ├── PermissionDeniedError     403
        ├── ModelNotFoundError        404, exit 2
        ├── InvalidRequestError       400
        │   ├── ContextLengthError    prompt + max_tokens over the context
        │   └── ContentFilterError
        ├── RateLimitError            429 rate_limit_reached_error (concurrency/RPM/TPM)
        ├── OverloadedError           429 engine_overloaded_error
        ├── QuotaExhaustedError       TPD / balance exhausted, exit 3 (resumable)
        └── ServerError               5xx
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class TomeError(Exception):
    """Base of every error tome raises; the message is written for the user."""

    exit_code: int = 1


class ConfigError(TomeError):
    """The configuration is invalid or incomplete."""

    exit_code = 2


class DocumentError(TomeError):
    """The input document cannot be read or used."""

    exit_code = 2


class DocumentNotFoundError(DocumentError):
    """The input file does not exist."""


class UnsupportedDocumentError(DocumentError):
    """The file type is not one tome reads."""


class EmptyDocumentError(DocumentError):
    """The document contains no text."""


class DatasetError(DocumentError):
    """An evaluation dataset cannot be read: not JSONL, or a record without a document or references."""


class DocumentEncodingError(DocumentError):
    """The text file's encoding could not be determined."""


class CorruptDocumentError(DocumentError):
    """The file is damaged or truncated."""


class PasswordRequiredError(DocumentError):
    """The PDF is encrypted and the password is missing or wrong."""


class NoTextLayerError(DocumentError):
    """The PDF has no text layer (scanned images); it needs OCR."""


class ChunkingError(TomeError):
    """The document could not be split to fit the prompt room."""


class StoreError(TomeError):
    """The cache/run database failed."""


class DamagedDatabaseError(StoreError):
    """The SQLite file is damaged; the message names it and the way out (`tome cache repair`, or moving it)."""

    exit_code = 2


class DepthLimitError(TomeError):
    """The summary tree did not converge within the depth limit."""


class JudgeFormatError(TomeError):
    """The judge model answered in a form that could not be parsed, even after a stricter reminder."""


class LLMError(TomeError):
    """A call to the model failed."""


class LLMConnectionError(LLMError):
    """The server could not be reached, or the connection dropped."""


class ServerUnreachableError(LLMConnectionError):
    """Nothing listens at the base URL (connection refused) or its host name does not resolve."""

    def __init__(self, message: str, *, url: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.cause = cause  # "connection refused" | "DNS failure"


class LLMTimeoutError(LLMError):
    """The server did not answer in time."""


class StreamInterruptedError(LLMError):
    """A streamed answer ended before ``data: [DONE]``."""


class LLMStatusError(LLMError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.request_id = request_id


class AuthenticationError(LLMStatusError):
    """The API key was rejected (401)."""

    exit_code = 2


class PermissionDeniedError(LLMStatusError):
    """The account may not use this resource (403)."""


class ModelNotFoundError(LLMStatusError):
    """The model does not exist or is not available to this key (404)."""

    exit_code = 2


class InvalidRequestError(LLMStatusError):
    """The server rejected the request as invalid (400)."""


class ContextLengthError(InvalidRequestError):
    """Prompt + max_tokens exceeded the model's context; split the input smaller."""

    def __init__(
        self,
        message: str,
        *,
        limit: int | None = None,
        requested: int | None = None,
        prompt_tokens: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.limit = limit  # the server's window (prompt + completion), when it says
        self.requested = requested  # prompt + max_tokens as the server counted them, when it says
        self.prompt_tokens = prompt_tokens  # the prompt alone as the server counted it, when it says


class ContentFilterError(InvalidRequestError):
    """The provider's content filter rejected the input."""


class RateLimitError(LLMStatusError):
    """A rate limit (concurrency, RPM or TPM) was hit (429)."""

    def __init__(
        self,
        message: str,
        *,
        limit_kind: str | None = None,
        retry_after: float | None = None,
        limit_value: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.limit_kind = limit_kind  # "concurrency" | "rpm" | "tpm" | None
        self.retry_after = retry_after
        self.limit_value = limit_value  # the account's real limit when the message states it


class OverloadedError(LLMStatusError):
    """The provider's engine is overloaded (429); retry later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class QuotaExhaustedError(LLMStatusError):
    """A quota (tokens per day, balance) is used up; the run can resume later."""

    exit_code = 3

    def __init__(
        self, message: str, *, quota: str | None = None, resets_at: datetime | None = None, **kw: Any
    ) -> None:
        kw.setdefault("status", 429)
        super().__init__(message, **kw)
        self.quota = quota  # "tpd" | "balance" | None
        self.resets_at = resets_at


class ServerError(LLMStatusError):
    """The server failed (5xx)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after
