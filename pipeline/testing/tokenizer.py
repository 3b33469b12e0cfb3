"""The test server's own tokenizer: a fixed character rule, deliberately not cl100k, scalable for tests."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.scripts import CJK_PUNCTUATION, HAN, KANA

# Han, kana, CJK punctuation and full-width forms count as CJK characters.
CJK = re.compile(f"[{CJK_PUNCTUATION}{KANA}{HAN}]")
_SPACE_OR_CJK = re.compile(rf"[\s{CJK_PUNCTUATION}{KANA}{HAN}]")

MESSAGE_OVERHEAD = 3  # per message (role and separators)
CHAT_OVERHEAD = 3  # the chat endpoint counts ~3 more than the estimate endpoint for the same messages


@dataclass(frozen=True)
class ServerTokenizer:
    """~1 token per ``chars_per_token`` non-space non-CJK characters and per ``cjk_chars_per_token`` CJK ones.

    With the defaults English counts land within a few percent of cl100k; ``token_scale`` > 1 makes the
    server count more than a client using cl100k (tests use 1.15).
    """

    token_scale: float = 1.0
    chars_per_token: float = 3.25
    cjk_chars_per_token: float = 1.5

    def count(self, text: str) -> int:
        cjk = len(CJK.findall(text))
        other = len(_SPACE_OR_CJK.sub("", text))
        return math.ceil((other / self.chars_per_token + cjk / self.cjk_chars_per_token) * self.token_scale)

    def count_messages(self, messages: Iterable[Mapping[str, object]]) -> int:
        """What the estimate-token-count endpoint answers."""
        return sum(self.count(str(m.get("content") or "")) + MESSAGE_OVERHEAD for m in messages)

    def prompt_tokens(self, messages: Iterable[Mapping[str, object]]) -> int:
        """What the chat endpoint reports as usage.prompt_tokens (and counts at admission)."""
        return self.count_messages(messages) + CHAT_OVERHEAD

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` counting at most ``max_tokens`` (cut at a word edge when possible)."""
        if self.count(text) <= max_tokens:
            return text
        lo, hi = 0, len(text)
        while lo < hi:  # largest prefix length whose count fits
            mid = (lo + hi + 1) // 2
            if self.count(text[:mid]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        cut = text[:lo]
        space = cut.rfind(" ")
        if space > len(cut) // 2 and not CJK.search(cut[-1:] or " "):
            cut = cut[:space]
        return cut.rstrip()
