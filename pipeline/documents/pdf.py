"""PDF text extraction with pypdf: pages, metadata title, outline; encryption and damage as tome errors."""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PyPdfError
from pypdf.generic import Destination

from pipeline.errors import CorruptDocumentError, DocumentError, NoTextLayerError, PasswordRequiredError

logger = logging.getLogger("tome.documents.pdf")

# A complete PDF ends with "%%EOF" (maybe followed by a little whitespace or junk); an interrupted
# download does not. pypdf would otherwise rebuild what it can and return half a document.
_EOF_MARKER = b"%%EOF"
_EOF_WINDOW_BYTES = 2048
_MAX_OUTLINE_DEPTH = 3
# Errors pypdf (and the parsers under it) raise on damaged files.
_DAMAGE = (PyPdfError, ValueError, KeyError, IndexError, TypeError, AttributeError, AssertionError,
           RecursionError, OSError, EOFError, ZeroDivisionError)  # fmt: skip


@dataclass(frozen=True, slots=True)
class OutlineEntry:
    """A bookmark: its title, the 0-based page it points to, and its depth (1 = top level)."""

    title: str
    page_index: int
    level: int


@dataclass(frozen=True, slots=True)
class PdfContent:
    """Raw text of each page (index = page number - 1), the metadata title and the outline."""

    pages: list[str]
    title: str | None
    outline: list[OutlineEntry]


def read_pdf(path: Path, *, password: str | None = None) -> PdfContent:
    """Extract the text of every page of the PDF at ``path``.

    Raises:
        PasswordRequiredError: encrypted with a user password and ``password`` is missing or wrong.
        NoTextLayerError: no page has extractable text (a scan).
        CorruptDocumentError: truncated or damaged file.
    """
    data = path.read_bytes()
    if _EOF_MARKER not in data[-_EOF_WINDOW_BYTES:]:
        raise CorruptDocumentError(
            f"{path} is damaged or truncated (it has no PDF end-of-file marker); "
            "download or export it again."
        )
    with _quiet_pypdf():
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                _decrypt(reader, path, password)
            pages = [page.extract_text() or "" for page in reader.pages]
            title = _metadata_title(reader)
            outline = _outline(reader)
        except DocumentError:
            raise
        except DependencyError as exc:
            raise DocumentError(
                f"{path} uses encryption that needs the 'cryptography' package: pip install 'pypdf[crypto]'."
            ) from exc
        except _DAMAGE as exc:
            raise CorruptDocumentError(
                f"{path} is damaged and could not be read as a PDF ({exc}); download or export it again."
            ) from exc
    if not any(page.strip() for page in pages):
        raise NoTextLayerError(
            f"the PDF has no text layer; it needs OCR (e.g. `ocrmypdf {path.name} out.pdf`), or pass "
            f"--server-extract to let Moonshot's file-extract service read it: {path}"
        )
    return PdfContent(pages=pages, title=title, outline=outline)


def _decrypt(reader: PdfReader, path: Path, password: str | None) -> None:
    """Open an encrypted PDF: the given password, else the empty user password many PDFs use."""
    if password and reader.decrypt(password) != PasswordType.NOT_DECRYPTED:
        return
    # An empty user password opens the file even when a wrong one was given: it was not needed.
    if reader.decrypt("") != PasswordType.NOT_DECRYPTED:
        return
    if password:
        raise PasswordRequiredError(f"The password for {path} is wrong; pass the right one with --password.")
    raise PasswordRequiredError(f"{path} is encrypted and needs a password; pass it with --password.")


def _metadata_title(reader: PdfReader) -> str | None:
    metadata = reader.metadata
    if metadata is None:
        return None
    title = metadata.title
    if not isinstance(title, str):
        return None
    title = " ".join(title.split())
    return title or None


def _outline(reader: PdfReader) -> list[OutlineEntry]:
    """Flatten the bookmarks (top levels only) into entries with page indexes."""
    entries: list[OutlineEntry] = []

    def walk(items: list[object], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                if level < _MAX_OUTLINE_DEPTH:
                    walk(item, level + 1)
            elif isinstance(item, Destination):
                page = reader.get_destination_page_number(item)
                title = " ".join(str(item.title or "").split())
                if title and page is not None and page >= 0:
                    entries.append(OutlineEntry(title=title, page_index=page, level=level))

    walk(list(reader.outline), 1)
    return entries


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Route pypdf's warnings (damaged xref, missing fontTools, ...) to our DEBUG log, not stderr."""
    pypdf_logger = logging.getLogger("pypdf")
    handler = _ForwardHandler()
    old_propagate = pypdf_logger.propagate
    pypdf_logger.addHandler(handler)
    pypdf_logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        pypdf_logger.removeHandler(handler)
        pypdf_logger.propagate = old_propagate


class _ForwardHandler(logging.Handler):
    """Re-log pypdf records at DEBUG under tome's logger."""

    def emit(self, record: logging.LogRecord) -> None:
        logger.debug("pypdf: %s", record.getMessage())
