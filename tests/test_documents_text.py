"""Text and Markdown loading: encodings, normalisation, Gutenberg furniture, headings, language, errors."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import pytest

from pipeline.documents import SUPPORTED_SUFFIXES, detect_language, load_document, looks_like_chapter
from pipeline.documents.gutenberg import drop_illustrations, strip_boilerplate
from pipeline.documents.headings import build_sections, find_headings
from pipeline.documents.model import Document
from pipeline.documents.normalise import normalise_text, strip_page_furniture
from pipeline.errors import (
    DocumentEncodingError,
    DocumentNotFoundError,
    EmptyDocumentError,
    UnsupportedDocumentError,
)

SIMPLIFIED = (
    "第一章 山居\n\n山里的清晨总是来得很早。老李推开木门，看见雾气从山谷里慢慢升起，远处传来几声鸟叫。"
    "他把水桶挑在肩上，沿着石阶走向山泉。\n\n第二章 来客\n\n中午的时候，一个背着书包的年轻人走进了院子，"
    "说他是从城里来的学生，想在这里住几天，看看山上的星星。"
)
TRADITIONAL = (
    "第一章 山居\n\n山裡的清晨總是來得很早。老李推開木門，看見霧氣從山谷裡慢慢升起，遠處傳來幾聲鳥叫。"
    "他把水桶挑在肩上，沿著石階走向山泉。\n\n第二章 來客\n\n中午的時候，一個背著書包的年輕人走進了院子，"
    "說他是從城裡來的學生，想在這裡住幾天，看看山上的星星。"
)
PARAGRAPH = "The keeper climbed the stairs every evening and lit the lamp before the sun went down. " * 2


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def assert_sections_cover(doc: Document) -> None:
    """Sections are sorted, contiguous, non-empty and cover the whole text."""
    assert doc.sections, "a document always has at least one section"
    assert doc.sections[0].start == 0
    assert doc.sections[-1].end == len(doc.text)
    for before, after in zip(doc.sections, doc.sections[1:], strict=False):
        assert before.end == after.start
    for section in doc.sections:
        assert section.end > section.start
        assert doc.text[section.start : section.end].strip()


# --- encodings ---------------------------------------------------------------------------------------


def test_utf8_text_loads(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "story.txt", "Hello, wörld — “quotes”.\n"))
    assert doc.text == "Hello, wörld — “quotes”."
    assert doc.source_format == "txt"
    assert doc.path == tmp_path / "story.txt"


def test_utf8_bom_is_removed(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "bom.txt", codecs.BOM_UTF8 + "Café au lait.".encode()))
    assert doc.text == "Café au lait."


def test_utf16_with_bom(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "wide.txt", "Wide text here.".encode("utf-16")))
    assert doc.text == "Wide text here."


@pytest.mark.parametrize(
    ("sample", "codec"),
    [(SIMPLIFIED, "gb18030"), (TRADITIONAL, "gb18030"), (TRADITIONAL, "big5")],
)
def test_chinese_codecs_are_told_apart(tmp_path: Path, sample: str, codec: str) -> None:
    data = sample.encode(codec)
    # Big5 bytes also decode as GB18030 (to the wrong characters): the detector must not be fooled.
    if codec == "big5":
        assert data.decode("gb18030", errors="replace") != sample
    doc = load_document(write(tmp_path, f"zh_{codec}.txt", data))
    assert doc.text == sample
    assert doc.language == "zh"
    assert [s.title for s in doc.sections] == [sample[:6], sample.split("\n\n")[2]]


def test_legacy_single_byte_text_falls_back_to_detector(tmp_path: Path) -> None:
    text = "Le café était fermé, mais la crème brûlée restait délicieuse à déguster. " * 20
    doc = load_document(write(tmp_path, "fr.txt", text.encode("cp1252")))
    assert "crème brûlée" in doc.text


def test_binary_file_is_an_encoding_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentEncodingError, match="UTF-8"):
        load_document(write(tmp_path, "blob.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))))


def test_random_bytes_are_an_encoding_error(tmp_path: Path) -> None:
    rng = random.Random(7)
    data = bytes(rng.randrange(1, 256) for _ in range(4000))
    with pytest.raises(DocumentEncodingError, match="UTF-8"):
        load_document(write(tmp_path, "noise.txt", data))


def test_invalid_bytes_after_utf8_bom_are_an_encoding_error(tmp_path: Path) -> None:
    with pytest.raises(DocumentEncodingError):
        load_document(write(tmp_path, "bad.txt", codecs.BOM_UTF8 + b"ok \xff\xfe broken"))


# --- file-level errors -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentNotFoundError, match="No such file"):
        load_document(tmp_path / "nope.txt")


def test_directory_is_not_a_document(tmp_path: Path) -> None:
    with pytest.raises(DocumentNotFoundError, match="is not a file"):
        load_document(tmp_path)


def test_unsupported_extension_lists_supported_types(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDocumentError) as info:
        load_document(write(tmp_path, "report.docx", b"PK\x03\x04"))
    for suffix in (".txt", ".md", ".pdf", ".epub"):
        assert suffix in str(info.value)
    assert set(SUPPORTED_SUFFIXES) >= {".txt", ".md", ".pdf", ".epub"}


@pytest.mark.parametrize("content", ["", "   \n\t\n\r\n  ", "\ufeff\n\n"])
def test_empty_text_is_an_error(tmp_path: Path, content: str) -> None:
    with pytest.raises(EmptyDocumentError, match="no text"):
        load_document(write(tmp_path, "empty.txt", content))


def test_gutenberg_boilerplate_only_is_empty(tmp_path: Path) -> None:
    text = "Title: Nothing\n\n*** START OF THE PROJECT GUTENBERG EBOOK NOTHING ***\n\n*** END OF THE PROJECT GUTENBERG EBOOK NOTHING ***\nlicence\n"
    with pytest.raises(EmptyDocumentError):
        load_document(write(tmp_path, "pg.txt", text))


# --- normalisation -----------------------------------------------------------------------------------


def test_newlines_spaces_and_trailing_whitespace() -> None:
    raw = "First  line\twith   gaps   \r\nsecond line\r\n\r\n\r\n\r\nNext\u00a0paragraph.  \rEnd"
    assert normalise_text(raw) == "First line with gaps second line\n\nNext paragraph. End"


def test_paragraph_breaks_are_exactly_two_newlines() -> None:
    text = normalise_text("one\n\n\n\n\ntwo\n \n\t\nthree")
    assert text == "one\n\ntwo\n\nthree"
    assert "\n\n\n" not in text


def test_hard_wrapped_lines_are_joined() -> None:
    raw = (
        "Alice was beginning to get very tired of sitting by her sister on the\n"
        "bank, and of having nothing to do: once or twice she had peeped into\n"
        "the book her sister was reading.\n\nA new paragraph.\n"
    )
    assert normalise_text(raw) == (
        "Alice was beginning to get very tired of sitting by her sister on the bank, and of having "
        "nothing to do: once or twice she had peeped into the book her sister was reading.\n\n"
        "A new paragraph."
    )


def test_one_paragraph_a_line_keeps_each_line_and_its_titles_apart() -> None:
    # A dataset's "\n"-joined paragraphs (no blank lines): lines longer than any hard wrap are paragraphs, and
    # a section title between them does not run into the next paragraph's first sentence.
    first = "The agency reviewed every grant made in the last five years and found most of them late. " * 2
    second = "Officials said the delays came from a shortage of staff and an outdated tracking system. " * 2
    text = f"{first.strip()}\nFindings\n{second.strip()}"
    assert normalise_text(text).split("\n\n") == [first.strip(), "Findings", second.strip()]
    # Hard-wrapped prose (short lines) is still one paragraph.
    wrapped = "The agency reviewed every grant made\nin the last five years and found\nmost of them late."
    assert normalise_text(wrapped) == "The agency reviewed every grant made in the last five years and found most of them late."


def test_transcript_turns_are_not_rejoined_but_a_form_of_fields_is() -> None:
    # One line per speaker turn (a meeting written out): each turn stays a paragraph of its own.
    meeting = "Project Manager: So we start .\nMarketing: Okay .\nProject Manager: The budget is tight .\nMarketing: Right ."
    assert normalise_text(meeting).split("\n\n") == meeting.split("\n")
    # A parliamentary record names the speaker's role in parentheses.
    house = (
        "The Chair (Hon. Anthony Rota (Nipissing, Lib.)): I call the meeting to order.\n"
        "Right Hon. Justin Trudeau (Prime Minister): Fraud is unacceptable.\n"
        "The Chair: Mr. Scheer, go ahead.\nRight Hon. Justin Trudeau: We have measures in place."
    )
    assert normalise_text(house).split("\n\n") == house.split("\n")
    zh = "王经理：好，我们开始吧。\n小李：他说在路上。\n王经理：行，那我们先开。\n小李：好的。"
    assert normalise_text(zh).split("\n\n") == zh.split("\n")
    # Labels that never come back are a form's fields wrapped like prose, not speakers.
    form = "AGENCY: Federal Aviation\nAdministration.\nACTION: Final rule.\nDATES: Effective today.\nSUMMARY: The rule"
    assert "Federal Aviation Administration." in normalise_text(form)


def test_hyphenation_across_lines_is_rejoined_but_real_hyphens_stay() -> None:
    raw = "This is an exam-\nple of a well-known rule for self-\nEvident and Lucene-\nBM25 cases."
    assert normalise_text(raw) == (
        "This is an example of a well-known rule for self-Evident and Lucene-BM25 cases."
    )


def test_double_hyphen_dash_at_line_end_is_not_a_hyphenation() -> None:
    assert normalise_text("in the sect--\nfairly large") == "in the sect-- fairly large"


def test_soft_hyphen_at_line_end_joins_word() -> None:
    assert normalise_text("light\u00ad\nhouse keeper\u00adship") == "lighthouse keepership"


def test_cjk_lines_join_without_space() -> None:
    raw = "蓋聞天地之數，有十二萬九千六百歲為一元。將一元分為十二會，乃子、丑、寅\n、卯、辰、巳、午、未\n申時晡。"
    assert normalise_text(raw) == (
        "蓋聞天地之數，有十二萬九千六百歲為一元。將一元分為十二會，乃子、丑、寅、卯、辰、巳、午、未申時晡。"
    )


def test_ideographic_indent_starts_a_paragraph() -> None:
    raw = "　　詩曰：\n　　　　混沌未分天地亂，茫茫渺渺無人見。\n　　　　自從盤古破鴻濛，開闢從茲清濁辨。"
    assert normalise_text(raw) == "詩曰：\n\n混沌未分天地亂，茫茫渺渺無人見。\n\n自從盤古破鴻濛，開闢從茲清濁辨。"


def test_heading_lines_are_never_joined_into_paragraphs() -> None:
    raw = "CHAPTER IV\nThe keeper woke early that day\nand went down to the shore."
    assert normalise_text(raw) == "CHAPTER IV\n\nThe keeper woke early that day and went down to the shore."


def test_markdown_headings_and_list_items_stay_separate() -> None:
    raw = "# Title\nSome text\ncontinues here.\n- one item\n- another item\n## Next"
    assert normalise_text(raw, markdown=True) == (
        "# Title\n\nSome text continues here.\n\n- one item\n\n- another item\n\n## Next"
    )


def test_ligatures_and_invisible_characters() -> None:
    assert normalise_text("e\ufb03cient \ufb01rst\u200b line\x07") == "efficient first line"


def test_pdf_lines_short_sentence_end_closes_paragraph() -> None:
    long_line = "word " * 14
    raw = "\n".join([long_line, long_line, "the end of it.", long_line, long_line + "done"])
    paragraphs = normalise_text(raw, pdf_lines=True).split("\n\n")
    assert len(paragraphs) == 2
    assert paragraphs[0].endswith("the end of it.")


def test_running_headers_and_page_numbers_are_dropped() -> None:
    topics = ["harbours", "ferries", "weather", "lamps", "budgets"]
    pages = [f"Annual Report 2024\nThis page is about {t}.\nMore on {t}.\nPage {n} of 5" for n, t in enumerate(topics, 1)]
    pages[2] = "Annual Report 2024\nBody of page three.\n- 3 -"
    pages[3] = "3\nQuarterly numbers went up.\nAnnual Report 2024 appears here too.\n4"
    cleaned = strip_page_furniture(pages)
    assert cleaned[0] == "This page is about harbours.\nMore on harbours."
    assert cleaned[2] == "Body of page three."
    # Only page edges are touched: the repeated phrase inside the body stays.
    assert cleaned[3] == "Quarterly numbers went up.\nAnnual Report 2024 appears here too."


def test_running_line_detection_needs_enough_pages() -> None:
    pages = ["Same top line\nfirst page body", "Same top line\nsecond page body"]
    assert strip_page_furniture(pages) == pages


# --- Gutenberg -----------------------------------------------------------------------------------------


def test_gutenberg_header_and_licence_are_dropped(tmp_path: Path) -> None:
    text = (
        "The Project Gutenberg eBook of The Sea Light\n\nTitle: The Sea Light\n\nAuthor: Someone\n\n"
        "*** START OF THE PROJECT GUTENBERG EBOOK THE SEA LIGHT ***\n\n"
        f"CHAPTER I.\nThe Storm\n\n{PARAGRAPH}\n\nCHAPTER II.\nThe Calm\n\n{PARAGRAPH}\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK THE SEA LIGHT ***\n\n"
        "Updated editions will replace the previous one. START: FULL LICENSE\n" + "licence text\n" * 50
    )
    doc = load_document(write(tmp_path, "pg.txt", text))
    assert doc.title == "The Sea Light"
    assert "Project Gutenberg" not in doc.text
    assert "licence" not in doc.text
    assert [s.title for s in doc.sections] == ["CHAPTER I. The Storm", "CHAPTER II. The Calm"]


def test_old_style_gutenberg_end_line() -> None:
    body = "第一回 甲\n\n" + "正文。" * 100
    text, title = strip_boilerplate(body + "\n\nEnd of the Project Gutenberg EBook of X\n\nlicence")
    assert text.strip() == body
    assert title is None


def test_illustrations_are_dropped_but_wrapped_chapter_heading_is_kept() -> None:
    raw = (
        "[Illustration: ·PRIDE·\n\n\n\nChapter I.]\n\nIt is a truth.\n\n[Illustration]\n\n"
        "[Illustration:\n\n  “He came down”\n\n[_Copyright 1894 by George Allen._]]\n\nMore text."
    )
    cleaned = normalise_text(drop_illustrations(raw))
    assert cleaned == "Chapter I.\n\nIt is a truth.\n\nMore text."


# --- headings and sections -----------------------------------------------------------------------------


def test_markdown_sections_and_title(tmp_path: Path) -> None:
    text = f"# The Keeper\n\n## Chapter 1: Fog\n\n{PARAGRAPH}\n\n## Chapter 2: Light\n\n{PARAGRAPH}\n"
    doc = load_document(write(tmp_path, "keeper.md", text))
    assert doc.title == "The Keeper"
    assert doc.source_format == "md"
    # The bare title line folds into the first chapter instead of becoming an empty section.
    assert [(s.title, s.level) for s in doc.sections] == [("Chapter 1: Fog", 2), ("Chapter 2: Light", 2)]
    assert_sections_cover(doc)


def test_markdown_front_matter_section_has_document_title(tmp_path: Path) -> None:
    text = f"# The Keeper\n\n{PARAGRAPH}\n\n## Chapter 1\n\n{PARAGRAPH}\n"
    doc = load_document(write(tmp_path, "keeper.md", text))
    assert [s.title for s in doc.sections] == ["The Keeper", "Chapter 1"]


def test_hash_lines_in_plain_text_are_not_headings(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "notes.txt", f"# not a heading\n\n{PARAGRAPH}"))
    assert len(doc.sections) == 1


@pytest.mark.parametrize(
    ("heading", "title"),
    [
        ("CHAPTER IV", "CHAPTER IV"),
        ("Chapter 4", "Chapter 4"),
        ("CHAPTER XII.", "CHAPTER XII"),
        ("Chapter Twenty-One", "Chapter Twenty-One"),
        ("Chapter 7: The Long Night", "Chapter 7. The Long Night"),
        ("CHAPTER I.\nDown the Rabbit-Hole", "CHAPTER I. Down the Rabbit-Hole"),
        ("CHAPTER XI.\nWho Stole the Tarts?", "CHAPTER XI. Who Stole the Tarts?"),
        ("第一回 靈根育孕源流出　心性修持大道生", "第一回 靈根育孕源流出　心性修持大道生"),
        ("第一○○回     徑回東土　五聖成真", "第一○○回 徑回東土　五聖成真"),
        ("第三章", "第三章"),
        ("第三章\n归来", "第三章 归来"),
    ],
)
def test_heading_forms(heading: str, title: str) -> None:
    text = normalise_text(f"Opening words of the book, long enough to be front matter here.\n\n{heading}\n\n{PARAGRAPH}")
    sections = build_sections(text, find_headings(text), front_title="Front matter")
    assert [s.title for s in sections] == ["Front matter", title]
    assert looks_like_chapter(title)


@pytest.mark.parametrize(
    "line",
    [
        "Chapter 4 of the report describes the budget",
        "Part of the reason was simple",
        "Book I read yesterday",
        "第一章讲的是一个很长的故事，我们明天再说。",
    ],
)
def test_prose_is_not_a_heading(line: str) -> None:
    text = normalise_text(f"{PARAGRAPH}\n\n{line}\n\n{PARAGRAPH}")
    assert find_headings(text) == []


def test_chapter_subtitle_is_not_taken_from_a_sentence() -> None:
    text = normalise_text(f"CHAPTER II.\n\nMr. Bennet was among the earliest.\n\n{PARAGRAPH}")
    assert [h.title for h in find_headings(text)] == ["CHAPTER II"]


def test_contents_block_does_not_become_empty_sections(tmp_path: Path) -> None:
    titles = ["Down the Rabbit-Hole", "The Pool of Tears", "A Caucus-Race", "The Little Bill"]
    romans = ["I", "II", "III", "IV"]
    contents = "\n".join(f" CHAPTER {r}.     {t}" for r, t in zip(romans, titles, strict=True))
    body = "\n\n\n".join(f"CHAPTER {r}.\n{t}\n\n{PARAGRAPH}" for r, t in zip(romans, titles, strict=True))
    text = f"Alice’s Adventures\n\nby Lewis Carroll\n\nContents\n\n{contents}\n\n\n\n{body}\n"
    doc = load_document(write(tmp_path, "alice.txt", text))
    assert doc.title == "Alice’s Adventures"
    chapters = [s for s in doc.sections if looks_like_chapter(s.title)]
    assert [s.title for s in chapters] == [f"CHAPTER {r}. {t}" for r, t in zip(romans, titles, strict=True)]
    assert doc.sections[0].title == "Alice’s Adventures"
    assert "Contents" in doc.text[doc.sections[0].start : doc.sections[0].end]
    assert_sections_cover(doc)


def test_contents_block_followed_by_preface_drops_its_last_entry(tmp_path: Path) -> None:
    contents = "\n".join(f"Chapter {n}" for n in range(1, 5))
    body = "\n\n".join(f"Chapter {n}\n\n{PARAGRAPH}" for n in range(1, 5))
    text = f"Contents\n\n{contents}\n\nPreface words that run on for a while about the book.\n\n{PARAGRAPH}\n\n{body}"
    doc = load_document(write(tmp_path, "book.txt", text))
    chapters = [s.title for s in doc.sections if looks_like_chapter(s.title)]
    assert chapters == ["Chapter 1", "Chapter 2", "Chapter 3", "Chapter 4"]
    assert_sections_cover(doc)


def test_no_headings_means_one_section(tmp_path: Path) -> None:
    doc = load_document(write(tmp_path, "plain_notes.txt", PARAGRAPH))
    assert [(s.title, s.start, s.end) for s in doc.sections] == [("Front matter", 0, len(doc.text))]
    assert doc.title == "plain notes"
    # The untitled opening is named in the document's language where the report's labels are in it too.
    zh = "山里的清晨总是来得很早，雾气从谷底慢慢升起，村里的人们已经开始一天的劳作。" * 4
    doc = load_document(write(tmp_path, "plain_zh.txt", f"{zh}\n\n{zh}"))
    assert doc.language == "zh" and [s.title for s in doc.sections] == ["卷首"]


# --- language ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (PARAGRAPH, "en"),
        (SIMPLIFIED, "zh"),
        (TRADITIONAL, "zh"),
        ("本模板基于基础的 book 文类，所以 book 的选项对于本模板也是有效的 ElegantBook LaTeX。", "zh"),
        ("これは日本語の文章です。ひらがなとカタカナがたくさんあります。", "ja"),
        ("Der Leuchtturmwärter stieg jeden Abend die Treppe hinauf und zündete die Lampe an.", "de"),
        ("12345 67890 !!!", "und"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def _gutenberg(title: str, body: str) -> str:
    return (
        f"The Project Gutenberg eBook of {title}\r\n\r\nTitle: {title}\r\n\r\nAuthor: Someone\r\n\r\n"
        f"*** START OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\r\n\r\n{body}\r\n\r\n"
        f"*** END OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\r\n\r\n"
        "Section 1. General Terms of Use and Redistributing Project Gutenberg electronic works\r\n" * 3
    )


def test_every_book_of_a_multi_book_gutenberg_file_is_kept(tmp_path: Path) -> None:
    first = "CHAPTER I.\r\n\r\nThe first book begins with a long walk by the sea, and a storm that does not end."
    second = "CHAPTER I.\r\n\r\nThe second book opens in a city at night, where nobody sleeps and the bells ring."
    path = write(tmp_path, "two_books.txt", _gutenberg("Sea Tales", first) + _gutenberg("City Tales", second))
    doc = load_document(path)
    assert "long walk by the sea" in doc.text and "city at night" in doc.text
    assert "General Terms of Use" not in doc.text and "START OF THE PROJECT" not in doc.text
    assert doc.title == "Sea Tales"


def test_title_comes_from_the_gutenberg_header_not_the_file_name(tmp_path: Path) -> None:
    body = "Chapter 1\r\n\r\nIt is a truth universally acknowledged, that a single man must be in want of a wife."
    doc = load_document(write(tmp_path, "en_pride_and_prejudice_pg1342.txt", _gutenberg("Pride and Prejudice", body)))
    assert doc.title == "Pride and Prejudice"


def test_a_contents_list_is_not_a_section_moby_dick(tmp_path: Path) -> None:
    contents = "\n".join(f"CHAPTER {n}. {name}." for n, name in enumerate(["Loomings", "The Carpet-Bag", "The Spouter-Inn"], 1))
    etymology = "ETYMOLOGY.\n\n" + "The pale Usher dusted his old lexicons and grammars with a queer handkerchief. " * 5
    chapters = "\n\n".join(
        f"CHAPTER {n}. {name}.\n\n" + f"Call me Ishmael, said the {name} chapter, and the sea went on. " * 8
        for n, name in enumerate(["Loomings", "The Carpet-Bag", "The Spouter-Inn"], 1)
    )
    epilogue = "Epilogue\n\n" + "The drama's done. Why then here does any one step forth? " * 5
    text = f"MOBY-DICK\n\nCONTENTS\n\n{contents}\nEpilogue\n\n{etymology}\n\n{chapters}\n\n{epilogue}\n"
    doc = load_document(write(tmp_path, "moby.txt", text))
    titles = [s.title for s in doc.sections]
    assert titles.count("Epilogue") == 1 and titles[-1] == "Epilogue"
    epilogue_section = doc.sections[-1]
    assert "pale Usher" not in doc.text[epilogue_section.start : epilogue_section.end]
    assert [t for t in titles if t.startswith("CHAPTER")] == [
        "CHAPTER 1. Loomings.", "CHAPTER 2. The Carpet-Bag.", "CHAPTER 3. The Spouter-Inn."
    ]  # fmt: skip


def test_an_end_line_between_books_of_a_compilation_is_only_a_separator() -> None:
    book_a = "CHAPTER I.\n\n" + "The first story runs along the river and does not stop. " * 30
    book_b = "CHAPTER I.\n\n" + "The second story climbs the hill behind the town at dawn. " * 30
    licence = "Updated editions will replace the previous one.\n\nSTART: FULL LICENSE\n\nSection 1. General Terms"
    text = (
        "*** START OF THE PROJECT GUTENBERG EBOOK TWO STORIES ***\n\n"
        f"{book_a}\n\nEnd of the Project Gutenberg EBook of Story A\n\n{book_b}\n\n"
        f"*** END OF THE PROJECT GUTENBERG EBOOK TWO STORIES ***\n\n{licence}\n"
    )
    kept, _ = strip_boilerplate(text)
    assert "river" in kept and "hill behind the town" in kept
    assert "End of the Project Gutenberg" not in kept and "FULL LICENSE" not in kept
