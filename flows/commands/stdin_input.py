"""`tome summarise -`: a document read from stdin, its format sniffed (or given), kept in a temporary file.

The readers work on files (page-aware PDF, EPUB zip), so stdin is written to ``<name>.<format>`` in a private
temporary folder for the length of the run; the name is what progress, tables and outputs call it.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import ConfigError, EmptyDocumentError, UnsupportedDocumentError

FORMATS = ("txt", "md", "pdf", "epub")
STDIN = "-"
_MARKDOWN_HEADING = re.compile(rb"^#{1,6} \S", re.MULTILINE)
_SAFE_NAME = re.compile(r"[^\w.\- ]+", re.UNICODE)


def sniff_format(head: bytes) -> str | None:
    """The format of a document from its first bytes: pdf, epub, md (a Markdown heading) or txt; None if binary."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return "epub" if b"application/epub+zip" in head[:200] else None
    if b"\x00" in head[:4096]:
        return None  # binary, and not a type tome reads (UTF-16 text included: tome reads UTF-8/GB18030/Big5)
    return "md" if _MARKDOWN_HEADING.search(head[:8192]) else "txt"


def safe_name(name: str) -> str:
    """A file-name-safe version of --name (no folders, no dots at the start)."""
    cleaned = _SAFE_NAME.sub("_", Path(name).name).strip(" .")
    return cleaned or "stdin"


@contextmanager
def stdin_document(stream: BinaryIO, *, name: str | None, fmt: str | None) -> Iterator[Path]:
    """Yield a temporary file holding ``stream``'s bytes as ``<name>.<format>``; removed afterwards.

    Raises:
        ConfigError: --format is not one tome reads.
        EmptyDocumentError: nothing came on stdin.
        UnsupportedDocumentError: the format cannot be told from the bytes and --format was not given.
    """
    if fmt is not None and fmt.lower().lstrip(".") not in FORMATS:
        raise ConfigError(f"Unknown --format '{fmt}'; use one of: {', '.join(FORMATS)}.")
    data = stream.read()
    if not data.strip():
        raise EmptyDocumentError("Nothing came on stdin: pipe a document in, e.g. `cat book.txt | tome summarise -`.")
    kind = fmt.lower().lstrip(".") if fmt else sniff_format(data)
    if kind is None:
        raise UnsupportedDocumentError(
            "Cannot tell the format of the document on stdin; pass --format txt, md, pdf or epub."
        )
    stem = safe_name(name) if name else "stdin"
    if stem.lower().endswith(f".{kind}"):
        stem = stem[: -len(kind) - 1]
    with tempfile.TemporaryDirectory(prefix="tome-stdin-") as folder:
        path = Path(folder) / f"{stem}.{kind}"
        path.write_bytes(data)
        yield path
