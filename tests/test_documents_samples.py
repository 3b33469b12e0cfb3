"""The sample documents in data/ load with the structure `make run` and the docs rely on."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.documents import load_document, looks_like_chapter

DATA = Path(__file__).resolve().parents[1] / "data"


def test_lighthouse_keeper_story() -> None:
    doc = load_document(DATA / "the_lighthouse_keeper.md")
    assert doc.title == "The Lighthouse Keeper"
    assert doc.language == "en"
    assert 9_000 <= len(doc.text.split()) <= 11_000
    titles = [s.title for s in doc.sections]
    assert len(titles) == 8 and all(looks_like_chapter(t) for t in titles)
    assert titles[0] == "Chapter 1: The Last Keeper"
    assert min(s.end - s.start for s in doc.sections) > 3_000


def test_chinese_story() -> None:
    doc = load_document(DATA / "zh_shanju_ji.txt")
    assert doc.title == "山居记"
    assert doc.language == "zh"
    assert 6_000 <= len(doc.text) <= 8_000
    assert [s.title for s in doc.sections] == [
        "第一章 进山", "第二章 旧学堂", "第三章 小梅的书单", "第四章 大雨", "第五章 三天", "第六章 读书声",
    ]  # fmt: skip
    # Apart from heading lines, no stray spaces between Chinese characters.
    for section in doc.sections:
        body = doc.text[section.start : section.end].replace(section.title, "")
        assert re.search(r"[\u4e00-\u9fff] [\u4e00-\u9fff]", body) is None


def test_readme_lists_every_sample() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for path in DATA.iterdir():
        if path.name != "README.md":
            assert f"`{path.name}`" in readme
