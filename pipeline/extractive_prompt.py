"""What a summary prompt gives the extractive backend to read, and where that material lies in the document."""

from __future__ import annotations

import re

_TEXT_BLOCK = re.compile(r"<text>\n(.*?)\n</text>", re.DOTALL)
_SUMMARY_BLOCK = re.compile(r"<summary\b[^>]*>\n(.*?)\n</summary>", re.DOTALL)
_CONTEXT_BLOCK = re.compile(r"<context>.*?</context>", re.DOTALL)


def material(prompt: str) -> str:
    """What a prompt asks to summarise: its <text> block, else its <summary> blocks, else all but <context>."""
    found = _TEXT_BLOCK.findall(prompt) or _SUMMARY_BLOCK.findall(prompt)
    return "\n\n".join(found) if found else _CONTEXT_BLOCK.sub("", prompt)


_PART = re.compile(r"It is part (\d+) of (\d+) of|它是《.*?》的第(\d+)部分（共(\d+)部分）")
_FINAL = ("write the final summary of the whole", "全书的最终摘要")


def where_in_document(prompt: str) -> tuple[float, float] | None:
    """Where the material of a prompt lies in the document: (start, share) of its length, else None.

    A map prompt names its part ("part 3 of 10"); a final merge covers the whole document; other merges do not
    say, and get no position prior.
    """
    match = _PART.search(prompt)
    if match:
        part, parts = (int(g) for g in (match.group(1) or match.group(3), match.group(2) or match.group(4)))
        if parts >= 1 and 1 <= part <= parts:
            return (part - 1) / parts, 1 / parts
    if any(phrase in prompt for phrase in _FINAL):
        return 0.0, 1.0
    return None
