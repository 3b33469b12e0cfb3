"""Joining a document's normalised pieces into its one text while holding it about once, whatever its width.

Python stores a str at the width of its widest character (1, 2 or 4 bytes), so a big text with one emoji is 4
bytes a character; the raw text and its normalised pieces together would be two such copies. Pieces are kept as
UTF-8 (1-3 bytes a character for most scripts) until the end, and character offsets are counted as they come.
"""

from __future__ import annotations


class TextBuilder:
    """Pieces appended in order, joined by ``text()``; ``offset`` is the text's length so far in characters."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self.offset = 0

    def append(self, piece: str) -> None:
        self._pieces.append(piece.encode("utf-8", "surrogatepass"))
        self.offset += len(piece)

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def text(self) -> str:
        """The joined text (the pieces are released first, so the text and its UTF-8 bytes are all that is held)."""
        data = b"".join(self._pieces)
        self._pieces.clear()
        text = data.decode("utf-8", "surrogatepass")
        if len(text) != self.offset:  # cannot happen for str pieces; offsets would all be wrong if it did
            raise AssertionError("TextBuilder: the joined text's length differs from the pieces' total")
        return text
