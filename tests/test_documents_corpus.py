"""Every real document in ../shared/corpus loads (or fails with its specific error); skipped without it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.documents import load_document, looks_like_chapter
from pipeline.documents.model import Document
from pipeline.errors import CorruptDocumentError, NoTextLayerError, PasswordRequiredError

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
BOOKS = CORPUS / "books"
PDFS = CORPUS / "pdfs"
EPUBS = CORPUS / "epub"

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present"),
]
# Loading is one step of planning, which must finish P&P in < 2 s and 西遊記 in < 4 s; these bounds
# leave room for a busy shared machine while still catching a per-character slowdown.
MAX_LOAD_SECONDS = 1.5


def check_structure(doc: Document) -> None:
    """Sections sorted, contiguous, non-empty, covering the text; pages sorted and inside it."""
    assert doc.text.strip()
    assert "\n\n\n" not in doc.text
    assert doc.sections[0].start == 0
    assert doc.sections[-1].end == len(doc.text)
    for before, after in zip(doc.sections, doc.sections[1:], strict=False):
        assert before.end == after.start
    for section in doc.sections:
        assert section.start < section.end
        assert doc.text[section.start : section.end].strip(), f"empty section {section.title!r}"
    for before, after in zip(doc.pages, doc.pages[1:], strict=False):
        assert before.end <= after.start and before.number < after.number
    if doc.pages:
        covered = sum(p.end - p.start for p in doc.pages)
        separators = 2 * (len(doc.pages) - 1)
        assert covered + separators == len(doc.text)


def chapters(doc: Document) -> list[str]:
    return [s.title for s in doc.sections if looks_like_chapter(s.title)]


@pytest.mark.parametrize(
    ("name", "count", "language", "first", "last"),
    [
        ("en_alice_in_wonderland_pg11.txt", 12, "en", "CHAPTER I. Down the Rabbit-Hole", "CHAPTER XII. Alice’s Evidence"),
        ("en_pride_and_prejudice_pg1342.txt", 61, "en", "Chapter I", "CHAPTER LXI"),
        ("zh_xiyouji_pg23962.txt", 100, "zh", "第一回 靈根育孕源流出　心性修持大道生", "第一○○回 徑回東土　五聖成真"),
    ],
)
def test_books_chapters(name: str, count: int, language: str, first: str, last: str) -> None:
    started = time.perf_counter()
    doc = load_document(BOOKS / name)
    elapsed = time.perf_counter() - started
    check_structure(doc)
    found = chapters(doc)
    assert len(found) == count
    assert (found[0], found[-1]) == (first, last)
    assert doc.language == language
    assert elapsed < MAX_LOAD_SECONDS, f"loading {name} took {elapsed:.2f}s"
    # Every chapter has real body text, not a contents entry.
    assert min(s.end - s.start for s in doc.sections if looks_like_chapter(s.title)) > 1000


def test_alice_contents_and_illustrations_stay_out_of_chapters() -> None:
    doc = load_document(BOOKS / "en_alice_in_wonderland_pg11.txt")
    assert doc.title == "Alice’s Adventures in Wonderland"
    front = doc.sections[0]
    assert front.title == doc.title
    assert "Contents" in doc.text[front.start : front.end]
    assert "[Illustration" not in doc.text
    assert doc.text.rstrip().endswith("THE END")


def test_xiyouji_gutenberg_footer_is_dropped() -> None:
    doc = load_document(BOOKS / "zh_xiyouji_pg23962.txt")
    assert "Project Gutenberg" not in doc.text
    # Hard-wrapped Chinese lines are joined without spaces.
    assert "乃子、丑、寅、卯、辰" in doc.text


@pytest.mark.parametrize(
    "name",
    [
        "cjk_zh_elegantbook_manual_15p.pdf",
        "en_paper_dpr_2col_arxiv2004.04906.pdf",
        "en_report_dmca_summary_us_copyright_office_1998.pdf",
        "en_report_federal_register_2020-17221_3col.pdf",
    ],
)
def test_text_pdfs_load(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    doc = load_document(PDFS / name)
    check_structure(doc)
    assert doc.pages
    assert doc.source_format == "pdf"
    assert capfd.readouterr().err == ""  # pypdf's font and xref warnings stay off stderr


def test_empty_user_password_rc4_pdf_opens() -> None:
    doc = load_document(PDFS / "en_report_dmca_summary_us_copyright_office_1998.pdf")
    assert doc.title == "The Digital Millennium Copyright Act of 1998"
    assert len(doc.pages) == 18
    assert doc.language == "en"
    # The running header "Copyright Office Summary December 1998 Page N" is gone.
    assert "Page 2" not in doc.text


def test_federal_register_running_lines_removed() -> None:
    doc = load_document(PDFS / "en_report_federal_register_2020-17221_3col.pdf")
    assert "VerDate" not in doc.text
    assert "Federal Register / Vol. 85" not in doc.text


def test_chinese_pdf_outline_sections() -> None:
    doc = load_document(PDFS / "cjk_zh_elegantbook_manual_15p.pdf")
    assert doc.language == "zh"
    titles = [s.title for s in doc.sections]
    assert "1 ElegantLaTeX 系列模板介绍" in titles
    assert len(titles) >= 9


def test_password_pdf() -> None:
    path = PDFS / "encrypted_userpw_openpassword_libreoffice.pdf"
    with pytest.raises(PasswordRequiredError, match="--password"):
        load_document(path)
    with pytest.raises(PasswordRequiredError):
        load_document(path, password="not-it")
    doc = load_document(path, password="openpassword")
    check_structure(doc)
    assert doc.pages


def test_scanned_pdf_needs_ocr() -> None:
    with pytest.raises(NoTextLayerError, match="no text layer"):
        load_document(PDFS / "scanned_en_huckleberry_finn_p22.pdf")


@pytest.mark.parametrize(
    "name", ["corrupt_header_and_eof_only.pdf", "corrupt_truncated_60pct_federal_register.pdf"]
)
def test_corrupt_pdfs(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CorruptDocumentError):
        load_document(PDFS / name)
    assert capfd.readouterr().err == ""


def test_epub_sample_loads_in_spine_order(capfd: pytest.CaptureFixture[str]) -> None:
    doc = load_document(EPUBS / "epub30_spec_idpf_sample.epub")
    check_structure(doc)
    assert doc.title == "EPUB 3.0 Specification"
    titles = [s.title for s in doc.sections]
    assert titles[0] == "EPUB 3.0 Specification"
    assert titles.index("EPUB 3 Overview") < titles.index("EPUB Publications 3.0")
    assert len(titles) >= 9
    assert capfd.readouterr().err == ""


def test_invalid_epub_is_corrupt() -> None:
    with pytest.raises(CorruptDocumentError, match="not a valid EPUB"):
        load_document(EPUBS / "invalid_zip_not_an_epub.epub")
