"""The HTML report: self-contained, and in a real headless Chromium a clicked sentence shows its source page.

The browser is Debian's chromium driven by playwright (never a downloaded browser). Without one the browser
tests skip locally and FAIL under CI=1 (.ci/chromium.sh installs it there).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.documents.model import Document
from pipeline.extractive import ExtractiveBackend
from pipeline.report import render_report
from pipeline.store import Store
from tests.test_engine import _engine, chinese_document, generated_document
from tests.test_provenance import with_pages

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium_path() -> str | None:
    for candidate in (os.environ.get("TOME_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}: CI must run the browser tests (.ci/chromium.sh installs chromium)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium under playwright, headless, with no network features."""
    path = _chromium_path()
    if path is None:
        _unavailable("no chromium at /usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _report_of(doc: Document, tmp_path: Path) -> tuple[Path, dict]:
    """Summarise ``doc`` offline and write its report (in a thread: playwright's sync API owns this one's loop)."""
    store = Store(f"sqlite:///{tmp_path / 'tome.db'}")
    engine = _engine(ExtractiveBackend(language=doc.language), store, length="short")
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, engine.summarise(doc)).result()
    data = json.loads(json.dumps(result.to_json_dict(), ensure_ascii=False))
    page = tmp_path / f"{doc.path.stem}.summary.html"
    page.write_text(render_report(data), encoding="utf-8")
    return page, data


def _first_passage(data: dict, doc: Document) -> tuple[str, tuple[int, int] | None, str]:
    """The source passage, pages and section the first final sentence's chain ends at (following first supports)."""
    nodes = {(n["level"], n["index"]): n for n in data["tree"]}
    level = max(n["level"] for n in data["tree"])
    node, j = nodes[(level, 0)], 0
    while True:
        support = node["sentences"][j]["supports"][0]
        if support["node"] is None:
            return support["text"], tuple(support["pages"]) if support["pages"] else None, support["section"]
        level -= 1
        node, j = nodes[(level, support["node"])], support["sentence"]


def _open_and_click(browser, page_path: Path, viewport: dict, shot: Path):
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(page_path.as_uri())
    first = page.locator("#final .s").first
    first.click()
    passage = page.locator("#chain .passage").first
    passage.wait_for(state="visible")
    page.screenshot(path=str(shot), full_page=True)
    return page, passage, errors, requests


@pytest.mark.parametrize(
    ("make", "page_label"),
    [
        (lambda: with_pages(generated_document(chapters=30)), "p. {}"),
        (lambda: with_pages(chinese_document(chapters=40), size=1500), "第{}页"),
    ],
    ids=["english", "chinese"],
)
def test_clicking_a_sentence_shows_its_source_passage_and_page(
    browser, tmp_path: Path, make, page_label: str, record_property
) -> None:
    doc = make()
    html_path, data = _report_of(doc, tmp_path)
    text, pages, section = _first_passage(data, doc)
    assert pages is not None and section
    shot = tmp_path / f"{doc.path.stem}-report.png"
    page, passage, errors, requests = _open_and_click(
        browser, html_path, {"width": 1200, "height": 900}, shot
    )
    record_property("screenshot", str(shot))
    print(f"screenshot: {shot}")
    shown = passage.inner_text()
    expected = page_label.format(pages[0]) if pages[0] == pages[1] else None
    if expected:
        assert expected in shown
    assert "".join(text.split()) in "".join(shown.split())
    assert page.locator("#chain .where").first.inner_text().endswith(section)  # the passage's own section
    assert page.locator("#final .s.active").count() == 1
    # The chain's intermediate sentences are highlighted where they appear (section summaries = level 0).
    if max(n["level"] for n in data["tree"]) >= 1:
        assert page.locator("#sections .s.hl").count() >= 1
    assert errors == []
    assert all(u.startswith(("file:", "data:", "about:")) for u in requests), requests
    assert shot.stat().st_size > 10_000
    page.close()


def test_report_is_readable_on_a_phone(browser, tmp_path: Path, record_property) -> None:
    doc = with_pages(generated_document(chapters=30))
    html_path, _ = _report_of(doc, tmp_path)
    shot = tmp_path / "phone.png"
    page, passage, errors, _ = _open_and_click(browser, html_path, {"width": 390, "height": 844}, shot)
    record_property("screenshot", str(shot))
    # One column: nothing wider than the screen, and the sources come right below the summary (before the
    # section summaries, which run long for a book).
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    final_box = page.locator("#final").bounding_box()
    sources_box = page.locator("#sources").bounding_box()
    sections_box = page.locator("#sections").bounding_box()
    assert final_box and sources_box and sections_box and sources_box["width"] <= 390
    assert final_box["y"] < sources_box["y"] < sections_box["y"]
    assert passage.is_visible() and errors == []
    page.close()
