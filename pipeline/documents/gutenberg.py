"""Project Gutenberg furniture: the licence header/footer and ``[Illustration]`` markers."""

from __future__ import annotations

import re

from pipeline.documents.headings import is_heading_line

_START = re.compile(
    r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?(?:BOOK|TEXT)[^\n]*$", re.IGNORECASE | re.MULTILINE
)
_END = re.compile(
    r"^(?:\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG"
    r"|End of (?:the )?Project Gutenberg(?:'s|’s)? (?:E-?book|E-?text))",
    re.IGNORECASE | re.MULTILINE,
)
_TITLE = re.compile(r"^Title:[ \t]*(?P<title>\S[^\n]*)$", re.MULTILINE)
# "[Illustration]", "[Illustration: caption]" and multi-line captions with one level of nested [...].
_ILLUSTRATION = re.compile(r"\[Illustration(?:[^\[\]]|\[[^\[\]]*\])*+\]")


def strip_boilerplate(text: str) -> tuple[str, str | None]:
    """Cut the Gutenberg header (up to "*** START OF ...") and licence (from "*** END OF ...").

    Returns:
        The book text, and the title from the header's "Title:" line when there was one.
    """
    title: str | None = None
    start = _START.search(text)
    if start is not None:
        header = text[: start.start()]
        found = _TITLE.search(header)
        if found is not None:
            title = found["title"].strip()
        text = text[start.end() :]
    end = _END.search(text)
    if end is not None:
        text = text[: end.start()]
    return text, title


def drop_illustrations(text: str) -> str:
    """Remove illustration markers, keeping any chapter heading a caption block wraps ("Chapter I.]")."""
    if "[Illustration" not in text:
        return text
    return _ILLUSTRATION.sub(_kept_headings, text)


def _kept_headings(match: re.Match[str]) -> str:
    inner = match.group(0)[len("[Illustration") : -1].lstrip(":")
    kept = [line.strip() for line in inner.split("\n") if is_heading_line(line.strip())]
    return "\n\n".join(kept)
