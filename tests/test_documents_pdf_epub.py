"""PDF and EPUB loading on files generated here: pages, furniture, outline, encryption, damage, spine."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pytest
from ebooklib import epub

from pipeline.documents import load_document
from pipeline.errors import (
    CorruptDocumentError,
    NoTextLayerError,
    PasswordRequiredError,
)
from tests.fixtures.documents.make_pdfs import (
    encrypted,
    image_only_pdf,
    text_pdf,
    truncated,
    with_outline_and_title,
)

PAGES = [
    [
        "The Harbour Light",
        "Mara Quill kept the lamp on Gannet Rock for eleven years. Each",
        "evening she climbed the hundred and six steps and trimmed the wick",
        "before the fishing boats came round the point. This was a well-known",
        "ritual in the village below, and the children timed their suppers by it.",
    ],
    [
        "Winter came early that year. A storm tore the slates from the roof of",
        "the store and the supply boat could not land for nine days. Mara ratio-",
        "ned the oil and kept the light burning through every night of the gale.",
    ],
    [
        "When the boat finally came, the skipper brought a letter from the",
        "board: the light was to be automated in the spring. Mara folded the",
        "letter, put it in her coat, and went up to trim the wick as always.",
    ],
]
HEADER = "Coastal Tales Quarterly"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def story_pdf() -> bytes:
    return text_pdf(PAGES, header=HEADER, page_numbers=True)


def test_pdf_pages_text_and_furniture(tmp_path: Path, story_pdf: bytes) -> None:
    doc = load_document(write(tmp_path, "story.pdf", story_pdf))
    assert doc.source_format == "pdf"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert HEADER not in doc.text
    assert "- 2 -" not in doc.text
    page2 = doc.text[doc.pages[1].start : doc.pages[1].end]
    assert page2.startswith("Winter came early that year.")
    assert "Mara rationed the oil" in page2  # hyphenated across lines
    assert "well-known ritual" in doc.text  # a real hyphen stays
    assert doc.pages_for(doc.text.index("the skipper"), doc.text.index("the skipper") + 5) == (3, 3)
    assert doc.language == "en"
    assert doc.title == "story"


def test_pdf_page_spans_cover_all_text(tmp_path: Path, story_pdf: bytes) -> None:
    doc = load_document(write(tmp_path, "story.pdf", story_pdf))
    covered = "".join(doc.text[p.start : p.end] for p in doc.pages)
    assert covered.replace(" ", "") == doc.text.replace("\n", "").replace(" ", "")
    for before, after in zip(doc.pages, doc.pages[1:], strict=False):
        assert before.end <= after.start


def test_pdf_outline_becomes_sections_and_metadata_title(tmp_path: Path, story_pdf: bytes) -> None:
    data = with_outline_and_title(
        story_pdf, title="The Harbour Light", outline=[("The Harbour Light", 0), ("The Storm", 1), ("The Letter", 2)]
    )
    doc = load_document(write(tmp_path, "outlined.pdf", data))
    assert doc.title == "The Harbour Light"
    assert [s.title for s in doc.sections] == ["The Harbour Light", "The Storm", "The Letter"]
    # "The Storm" is not on page 2's text, so its section starts at the page start.
    assert doc.sections[1].start == doc.pages[1].start
    assert doc.sections[0].start == 0
    assert doc.sections[-1].end == len(doc.text)


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-256"])
def test_pdf_with_empty_user_password_opens_without_asking(
    tmp_path: Path, story_pdf: bytes, algorithm: str
) -> None:
    path = write(tmp_path, "open.pdf", encrypted(story_pdf, user_password="", algorithm=algorithm))
    doc = load_document(path)
    assert "Mara Quill" in doc.text
    # A password the file did not need does not get in the way.
    assert load_document(path, password="whatever").text == doc.text


def test_pdf_with_user_password(tmp_path: Path, story_pdf: bytes) -> None:
    path = write(tmp_path, "locked.pdf", encrypted(story_pdf, user_password="s3cret"))
    with pytest.raises(PasswordRequiredError, match="--password"):
        load_document(path)
    with pytest.raises(PasswordRequiredError, match="wrong"):
        load_document(path, password="guess")
    assert "Mara Quill" in load_document(path, password="s3cret").text


def test_image_only_pdf_needs_ocr(tmp_path: Path) -> None:
    with pytest.raises(NoTextLayerError, match="the PDF has no text layer; it needs OCR"):
        load_document(write(tmp_path, "scan.pdf", image_only_pdf(2)))


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_pdf_is_corrupt(tmp_path: Path, story_pdf: bytes, fraction: float) -> None:
    with pytest.raises(CorruptDocumentError, match="damaged or truncated"):
        load_document(write(tmp_path, "cut.pdf", truncated(story_pdf, fraction=fraction)))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"%PDF-1.4\n%%EOF\n",
        b"this is not a pdf at all\n%%EOF",
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\nstartxref\n999999\n%%EOF\n",
    ],
)
def test_damaged_pdf_is_corrupt_and_quiet(
    tmp_path: Path, data: bytes, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with pytest.raises(CorruptDocumentError, match="again"):
        load_document(write(tmp_path, "broken.pdf", data))
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""
    # pypdf's complaints go to tome's DEBUG log, not to WARNING-level handlers.
    assert [r for r in caplog.records if r.name.startswith("pypdf")] == []


def test_pypdf_logger_is_restored(tmp_path: Path, story_pdf: bytes) -> None:
    pypdf_logger = logging.getLogger("pypdf")
    handlers, propagate = list(pypdf_logger.handlers), pypdf_logger.propagate
    load_document(write(tmp_path, "story.pdf", story_pdf))
    with pytest.raises(CorruptDocumentError):
        load_document(write(tmp_path, "bad.pdf", b"%PDF-1.4\n%%EOF\n"))
    assert pypdf_logger.handlers == handlers
    assert pypdf_logger.propagate == propagate


# --- EPUB ----------------------------------------------------------------------------------------------


def make_epub(path: Path, chapters: list[tuple[str, str, str]], *, title: str = "The Harbour Light") -> Path:
    """An EPUB 3 whose chapters are (h1 heading or "", table-of-contents title, body paragraphs)."""
    book = epub.EpubBook()
    book.set_identifier("tome-test-harbour")
    book.set_title(title)
    book.set_language("en")
    items = []
    for number, (heading, toc_title, body) in enumerate(chapters, start=1):
        item = epub.EpubHtml(title=toc_title, file_name=f"chap_{number}.xhtml", lang="en")
        heading_html = f"<h1>{heading}</h1>" if heading else ""
        paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n\n"))
        item.content = f"<html><head><title>Book</title></head><body>{heading_html}\n  {paragraphs}</body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)
    return path


def test_epub_spine_in_order_with_chapter_sections(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = make_epub(
        tmp_path / "harbour.epub",
        [
            ("Chapter 1: The Rock", "The Rock", "Mara Quill kept the lamp\n    on Gannet Rock.\n\nShe climbed <em>every</em> evening."),
            ("Chapter 2: The Storm", "The Storm", "Winter came early.<br/>The boat could not land."),
            ("", "The Letter", "The board wrote that the light would be automated."),
        ],
    )
    capfd.readouterr()
    doc = load_document(path)
    assert doc.source_format == "epub"
    assert doc.title == "The Harbour Light"
    assert doc.language == "en"
    # h1 wins; a document without a heading takes its table-of-contents title.
    assert [s.title for s in doc.sections] == ["Chapter 1: The Rock", "Chapter 2: The Storm", "The Letter"]
    first = doc.text[doc.sections[0].start : doc.sections[0].end]
    assert "Mara Quill kept the lamp on Gannet Rock.\n\nShe climbed every evening." in first
    assert "Winter came early. The boat could not land." in doc.text  # <br> is a line break, not a paragraph
    assert doc.text.index("Mara") < doc.text.index("Winter") < doc.text.index("automated")
    assert doc.sections[0].start == 0 and doc.sections[-1].end == len(doc.text)
    assert all(a.end == b.start for a, b in zip(doc.sections, doc.sections[1:], strict=False))
    assert capfd.readouterr().err == ""


def test_zip_without_container_is_corrupt_epub(tmp_path: Path) -> None:
    path = tmp_path / "fake.epub"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "not an epub")
    with pytest.raises(CorruptDocumentError, match="not a valid EPUB"):
        load_document(path)


def test_non_zip_epub_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptDocumentError):
        load_document(write(tmp_path, "plain.epub", b"just some bytes"))


def _drop_from_zip(path: Path, drop: set[str]) -> None:
    """Rewrite the EPUB at ``path`` without the named members (as a badly packed real book would be)."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for info, data in members:
            if info.filename not in drop:
                target.writestr(info, data)


def _epub_with_resources(path: Path) -> Path:
    book = epub.EpubBook()
    book.set_identifier("tome-test-resources")
    book.set_title("The Keeper's Log")
    book.set_language("en")
    chapters = []
    for number, body in enumerate(
        ["Mara Quill kept the lamp on Gannet Rock for eleven years.", "Winter came early and the boat could not land."],
        start=1,
    ):
        item = epub.EpubHtml(title=f"Chapter {number}", file_name=f"Text/chap_{number}.xhtml", lang="en")
        item.content = f"<html><body><h1>Chapter {number}</h1><p>{body}</p></body></html>"
        book.add_item(item)
        chapters.append(item)
    book.add_item(epub.EpubItem(uid="font", file_name="Fonts/DejaVuSans.ttf", media_type="font/ttf", content=b"\0font"))
    book.add_item(epub.EpubImage(uid="logo", file_name="img/logo.jpg", media_type="image/jpeg", content=b"\xff\xd8"))
    book.add_item(epub.EpubItem(uid="css", file_name="Styles/book.css", media_type="text/css", content=b"p{}"))
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)
    return path


def test_epub_missing_fonts_images_css_loads_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _epub_with_resources(tmp_path / "log.epub")
    _drop_from_zip(path, {"EPUB/Fonts/DejaVuSans.ttf", "EPUB/img/logo.jpg", "EPUB/Styles/book.css"})
    with caplog.at_level(logging.WARNING, logger="tome.documents"):
        doc = load_document(path)
    assert doc.title == "The Keeper's Log"
    assert "Mara Quill kept the lamp" in doc.text and "Winter came early" in doc.text
    assert [s.title for s in doc.sections] == ["Chapter 1", "Chapter 2"]
    assert len(doc.warnings) == 1
    assert "3 item(s)" in doc.warnings[0] and "DejaVuSans.ttf" in doc.warnings[0]
    assert any("DejaVuSans.ttf" in record.getMessage() for record in caplog.records)


def test_epub_missing_navigation_and_one_chapter_keeps_the_rest(tmp_path: Path) -> None:
    path = _epub_with_resources(tmp_path / "log.epub")
    _drop_from_zip(path, {"EPUB/nav.xhtml", "EPUB/Text/chap_1.xhtml"})
    doc = load_document(path)
    assert "Winter came early" in doc.text and "Mara Quill" not in doc.text
    assert "1 of them chapters" in doc.warnings[0]


def test_epub_whose_text_is_all_missing_is_refused(tmp_path: Path) -> None:
    path = _epub_with_resources(tmp_path / "log.epub")
    _drop_from_zip(path, {"EPUB/Text/chap_1.xhtml", "EPUB/Text/chap_2.xhtml"})
    with pytest.raises(CorruptDocumentError, match="no readable text"):
        load_document(path)


def test_epub_without_its_package_document_is_still_corrupt(tmp_path: Path) -> None:
    path = _epub_with_resources(tmp_path / "log.epub")
    _drop_from_zip(path, {"EPUB/content.opf"})
    with pytest.raises(CorruptDocumentError, match="not a valid EPUB"):
        load_document(path)


def test_real_epub_with_its_logo_and_stylesheet_missing_loads(corpus, tmp_path: Path) -> None:
    source = corpus / "epub" / "epub30_spec_idpf_sample.epub"
    path = tmp_path / "idpf.epub"
    path.write_bytes(source.read_bytes())
    _drop_from_zip(path, {"EPUB/img/idpflogo_web_125.jpg", "EPUB/css/epub-spec.css"})
    doc = load_document(path)
    assert doc.title == "EPUB 3.0 Specification" and len(doc.text) > 100_000
    assert "idpflogo_web_125.jpg" in doc.warnings[0]
