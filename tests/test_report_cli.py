"""The HTML report without a browser: self-contained, escaped, bilingual; written by `-o` and by `tome report`."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from pipeline.report import render_report

REPO = Path(__file__).resolve().parents[1]


def test_report_is_self_contained_and_escapes_the_document(tmp_path: Path) -> None:
    data = {
        "title": "A </script><b>bold</b> title",
        "language": "en",
        "backend": "extractive",
        "model": "m",
        "run_id": "r",
        "final": "x",
        "usage": {"calls": 3, "cost": 0.5, "currency": "CNY"},
        "tree": [
            {
                "level": 0,
                "index": 0,
                "inputs": [0],
                "section": "S",
                "text": "One </script> two. Three.",
                "tokens": 5,
                "cached": False,
                "truncated": True,
                "calls": 2,
                "context": "none",
                "sentences": [
                    {"span": [0, 18], "supports": [], "sources": []},
                    {"span": [19, 25], "supports": [], "sources": []},
                ],
            }
        ],
    }
    html = render_report(data)
    assert html.count("</script>") == 2  # the data block and the code, never the document's text
    assert "<b>bold</b>" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "0.5000 CNY" in html and 'stroke="#d9363e"' in html  # cost, and the cut-off node is marked
    zh = render_report({**data, "language": "zh"})
    assert "用量与费用" in zh and 'lang="zh"' in zh


def test_cli_writes_the_report_with_the_summary_and_tome_report_rebuilds_it(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    doc = REPO / "data" / "zh_shanju_ji.txt"
    result = runner.invoke(
        app,
        ["summarise", "--no-prefect", "--backend", "extractive", "--no-progress", str(doc), "-o", str(out)],
    )
    assert result.exit_code == 0, result.stderr
    page = out / "zh_shanju_ji.summary.html"
    assert page.is_file() and "分章摘要" in page.read_text(encoding="utf-8")
    page.unlink()
    again = runner.invoke(app, ["report", str(out / "zh_shanju_ji.summary.json")])
    assert again.exit_code == 0, again.stderr
    assert page.is_file() and again.stdout.strip() == str(page)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    refused = runner.invoke(app, ["report", str(bad)])
    assert (
        refused.exit_code == 2
        and refused.stderr.startswith("Error: ")
        and len(refused.stderr.splitlines()) == 1
    )


def test_report_without_a_price_or_counts_still_renders() -> None:
    data = {
        "title": "t",
        "language": "en",
        "backend": "extractive",
        "model": None,
        "usage": {"cost": None},
        "tree": [],
    }
    html = render_report(data)
    assert "<table" in html and "None" not in html
