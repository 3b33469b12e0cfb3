"""EPUB reading with ebooklib + BeautifulSoup: spine documents in order, each with its heading."""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import ebooklib
from bs4 import BeautifulSoup, NavigableString, XMLParsedAsHTMLWarning
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
    """The book's metadata title and its spine documents in reading order."""

    title: str | None
    parts: list[EpubPart]


def read_epub(path: Path) -> EpubContent:
    """Read the spine of the EPUB at ``path`` in order (the navigation document is skipped).

    Raises:
        CorruptDocumentError: not a valid EPUB (no container.xml, broken zip or package).
    """
    with warnings.catch_warnings():
        # ebooklib warns about its own defaults on every read.
        warnings.simplefilter("ignore")
        try:
            book = epub.read_epub(str(path), options={"ignore_ncx": True})
        except TomeError:
            raise
        except Exception as exc:  # ebooklib raises KeyError, BadZipFile, lxml and its own errors alike
            raise CorruptDocumentError(
                f"{path} is not a valid EPUB ({exc}); export or download it again."
            ) from exc
    toc_titles = _toc_titles(book.toc)
    parts: list[EpubPart] = []
    for number, (idref, _linear) in enumerate(book.spine, start=1):
        item = book.get_item_with_id(idref)
        if item is None or isinstance(item, epub.EpubNav) or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        with warnings.catch_warnings():
            # XHTML through the lenient HTML parser is deliberate: real EPUBs are often not valid XML.
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            soup = BeautifulSoup(item.get_content(), "lxml")
        heading = _heading(soup)
        title = heading or toc_titles.get(item.get_name()) or _page_title(soup) or f"Part {number}"
        parts.append(EpubPart(title=title, text=_text(soup)))
    return EpubContent(title=_metadata_title(book), parts=parts)


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
    """Visible text with a blank line after every block element and a newline for <br>."""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for string in soup.find_all(string=True):
        # HTML source line breaks and indentation are not text; <pre> keeps its lines.
        if type(string) is NavigableString and string.find_parent("pre") is None:
            string.replace_with(NavigableString(_HTML_SPACE.sub(" ", string)))
    for tag in soup.find_all("br"):
        tag.replace_with(NavigableString("\n"))
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before(NavigableString("\n\n"))
        tag.append(NavigableString("\n\n"))
    body = soup.body or soup
    return body.get_text("")
