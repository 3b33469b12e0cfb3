"""EPUB reading with ebooklib + BeautifulSoup: spine documents in order, each with its heading."""

from __future__ import annotations

import logging
import posixpath
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import ebooklib
from bs4 import BeautifulSoup, XMLParsedAsHTMLWarning
from bs4.element import NavigableString, PageElement, Tag
from ebooklib import epub

from pipeline.errors import CorruptDocumentError, TomeError

logger = logging.getLogger("tome.documents.epub")

_BLOCK_TAGS = (
    "p", "div", "section", "article", "aside", "header", "footer", "blockquote", "pre", "li", "dt", "dd",
    "tr", "table", "figure", "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
)  # fmt: skip
_DROP_TAGS = ("script", "style", "head", "noscript", "svg", "math")
_HTML_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class EpubPart:
    """One spine document: its heading and its text (paragraphs separated by blank lines)."""

    title: str
    text: str


@dataclass(frozen=True, slots=True)
class EpubContent:
    """The book's metadata title, its spine documents in reading order, and what the zip lacked."""

    title: str | None
    parts: list[EpubPart]
    missing: tuple[str, ...] = ()  # manifest items absent from the archive (fonts, images, CSS, ...)
    missing_text: tuple[str, ...] = ()  # of those, spine documents: text the book should have had


class _LenientReader(epub.EpubReader):
    """ebooklib's reader, except that a manifest item missing from the zip reads as empty and is recorded.

    Readers open such books (a font or cover listed but never packed); only the container and the package
    document are required.
    """

    def __init__(self, name: str, options: dict[str, object]) -> None:
        super().__init__(name, options)
        self.missing: list[str] = []

    def read_file(self, name: str) -> bytes:
        try:
            data: bytes = super().read_file(name)
            return data
        except KeyError:
            if name == "META-INF/container.xml" or name == getattr(self, "opf_file", None):
                raise
            self.missing.append(name)
            # An empty XHTML body keeps ebooklib's own parsing (navigation, NCX) from failing on b"".
            return _EMPTY_XHTML if name.lower().endswith(_MARKUP_SUFFIXES) else b""


_EMPTY_XHTML = (
    b'<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"><head><title/></head>'
    b'<body><nav epub:type="toc"><ol></ol></nav></body></html>'
)
_MARKUP_SUFFIXES = (".xhtml", ".html", ".htm", ".xml", ".ncx")


def read_epub(path: Path) -> EpubContent:
    """Read the spine of the EPUB at ``path`` in order (the navigation document is skipped).

    Manifest items missing from the zip are read as empty and listed in ``missing``.

    Raises:
        CorruptDocumentError: not a valid EPUB (no container.xml, broken zip or package).
    """
    with warnings.catch_warnings():
        # ebooklib warns about its own defaults on every read.
        warnings.simplefilter("ignore")
        try:
            reader = _LenientReader(str(path), {"ignore_ncx": True})
            book = reader.load()
            reader.process()
        except TomeError:
            raise
        except Exception as exc:  # ebooklib raises KeyError, BadZipFile, lxml and its own errors alike
            raise CorruptDocumentError(
                f"{path} is not a valid EPUB ({exc}); export or download it again."
            ) from exc
    toc_titles = _toc_titles(book.toc)
    parts: list[EpubPart] = []
    missing_text: list[str] = []
    for number, (idref, _linear) in enumerate(book.spine, start=1):
        item = book.get_item_with_id(idref)
        if item is None or isinstance(item, epub.EpubNav) or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        if posixpath.normpath(posixpath.join(reader.opf_dir, item.get_name())) in reader.missing:
            missing_text.append(item.get_name())
            continue
        with warnings.catch_warnings():
            # XHTML through the lenient HTML parser is deliberate: real EPUBs are often not valid XML.
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            soup = BeautifulSoup(item.get_content(), "lxml")
        item.content = b""  # the markup is parsed: the book need not keep it while the rest is read
        heading = _heading(soup)
        title = heading or toc_titles.get(item.get_name()) or _page_title(soup) or f"Part {number}"
        parts.append(EpubPart(title=title, text=_text(soup)))
        soup.decompose()  # a tree's parent links are cycles: free it now, not at the next collection
    return EpubContent(
        title=_metadata_title(book),
        parts=parts,
        missing=tuple(dict.fromkeys(reader.missing)),
        missing_text=tuple(missing_text),
    )


def _metadata_title(book: epub.EpubBook) -> str | None:
    values = book.get_metadata("DC", "title")
    if not values:
        return None
    title = " ".join(str(values[0][0]).split())
    return title or None


def _toc_titles(toc: object) -> dict[str, str]:
    """href (without #fragment) -> the first table-of-contents title pointing at that file."""
    titles: dict[str, str] = {}

    def walk(entries: object) -> None:
        if not isinstance(entries, list | tuple):
            return
        for entry in entries:
            if isinstance(entry, tuple) and len(entry) == 2:
                walk([entry[0]])
                walk(entry[1])
                continue
            href = getattr(entry, "href", None)
            title = " ".join(str(getattr(entry, "title", "") or "").split())
            if href and title:
                titles.setdefault(href.split("#", 1)[0], title)

    walk(toc)
    return titles


def _heading(soup: BeautifulSoup) -> str | None:
    for name in ("h1", "h2"):
        tag = soup.find(name)
        if tag is not None:
            title = " ".join(tag.get_text(" ").split())
            if title:
                return title
    return None


def _page_title(soup: BeautifulSoup) -> str | None:
    tag = soup.find("title")
    if tag is None:
        return None
    return " ".join(tag.get_text(" ").split()) or None


def _text(soup: BeautifulSoup) -> str:
    """Visible text with a blank line before and after every block element and a newline for <br>.

    One walk over the tree, leaving it as it is (inserting into a parent of n children costs O(n) in bs4, so
    marking a chapter's thousands of paragraphs in place took seconds per MB). The strings taken are those
    ``get_text`` takes: plain NavigableStrings, not comments, scripts or ruby annotations.
    """
    pieces: list[str] = []
    root = soup.body or soup
    # (node, inside <pre>); None closes a block element.
    stack: list[tuple[PageElement | None, bool]] = [(child, False) for child in reversed(root.contents)]
    while stack:
        node, pre = stack.pop()
        if node is None:
            pieces.append("\n\n")
        elif isinstance(node, Tag):
            if node.name in _DROP_TAGS:
                continue
            if node.name == "br":
                pieces.append("\n")
                continue
            if node.name in _BLOCK_TAGS:
                pieces.append("\n\n")
                stack.append((None, pre))
            inner = pre or node.name == "pre"
            stack.extend((child, inner) for child in reversed(node.contents))
        elif type(node) is NavigableString:
            # HTML source line breaks and indentation are not text; <pre> keeps its lines.
            pieces.append(str(node) if pre else _HTML_SPACE.sub(" ", node))
    return "".join(pieces)
