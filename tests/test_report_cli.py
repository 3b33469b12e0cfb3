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
    # One level-0 node is the final summary: no section card repeating it; two nodes get theirs, titled.
    assert 'id="sections"' not in html
    second = {**data["tree"][0], "index": 1, "inputs": [1], "section": "T", "text": "Four. Five."}
    two = render_report({**data, "tree": [data["tree"][0], second]})
    assert 'id="sections"' in two and "<h3>S</h3>" in two and "<h3>T</h3>" in two
    # A node cut off and kept to its last complete sentence is marked cut off too, and counted in the usage.
    trimmed = {**data["tree"][0], "truncated": False, "trimmed": True}
    page = render_report({**data, "usage": {**data["usage"], "trimmed": 1}, "tree": [trimmed]})
    assert 'stroke="#d9363e"' in page and "<td>cut off, kept to its last sentence</td><td>1</td>" in page
    zh = render_report({**data, "language": "zh"})
    assert "用量与费用" in zh and 'lang="zh"' in zh
    # The page's language is the document's (kanji drawn as Japanese), with Japanese labels; others in English.
    ja = render_report({**data, "language": "ja"})
    assert 'lang="ja"' in ja and "使用量と費用" in ja and "用量与费用" not in ja
    fr = render_report({**data, "language": "fr"})
    assert 'lang="fr"' in fr and "Usage and cost" in fr
    assert 'lang="en"' in render_report({**data, "language": 'x"><b>'})
    # A model's citations (--cite) are notes on the sentence, not words of it.
    cited = {
        **data["tree"][0],
        "text": "One claim [1]. Two [1, 2].",
        "sentences": [{"span": [0, 14]}, {"span": [15, 26]}],
    }
    page = render_report({**data, "tree": [cited]})
    assert 'One claim<sup class="cite">[1]</sup>.</span>' in page and '<sup class="cite">[1, 2]</sup>' in page


def test_a_wide_tree_stays_legible():
    # A big book's level 0 has hundreds of nodes: the picture keeps them apart at its natural size (its box
    # scrolls) instead of shrinking them into specks.
    nodes = [
        {"level": 0, "index": i, "inputs": [i], "text": "x", "sentences": [], "context": "summary:0"}
        for i in range(400)
    ]
    nodes += [
        {"level": 1, "index": k, "inputs": list(range(k * 20, k * 20 + 20)), "text": "y"} for k in range(20)
    ]
    nodes.append({"level": 2, "index": 0, "inputs": list(range(20)), "text": "z", "sentences": []})
    html = render_report({"title": "t", "language": "en", "tree": nodes})
    width = float(re.search(r'<svg viewBox="0 0 ([\d.]+) ', html).group(1))
    assert re.search(
        rf'<svg [^>]*style="min-width:{width:g}px"', html
    )  # never drawn smaller than 1 px a unit
    boxes = [
        (float(x), float(w))
        for x, w in re.findall(
            r'<rect class="node" data-node="0:\d+" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', html
        )
    ]
    assert len(boxes) == 400
    assert all(w >= 6 and x + w <= nx for (x, w), (nx, _) in zip(boxes, boxes[1:], strict=False))


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


def test_report_of_a_run_id_is_rebuilt_from_the_cache_without_a_call(
    tmp_path: Path, moonshot_server, monkeypatch
) -> None:
    import json

    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    doc = REPO / "data" / "the_lighthouse_keeper.md"
    args = ["--base-url", moonshot_server.base_url, "--no-prefect", "--no-progress"]
    ran = runner.invoke(app, ["summarise", str(doc), *args, "--json"])
    assert ran.exit_code == 0, ran.stderr
    final = json.loads(ran.stdout)["final"]
    sent = len(moonshot_server.chat_log())
    run_id = json.loads(runner.invoke(app, ["runs", "--json", "-n", "1"]).stdout)["id"]
    made = runner.invoke(app, ["report", run_id[:8]])
    assert made.exit_code == 0, made.stderr
    page = tmp_path / "the_lighthouse_keeper.summary.html"
    assert Path(made.stdout.strip()).resolve() == page
    html = page.read_text(encoding="utf-8")
    first_words = " ".join(final.split()[:6])
    assert run_id in html and first_words in html and "Usage and cost" in html
    assert len(moonshot_server.chat_log()) == sent  # rebuilt from the cache: nothing sent
    # Without the cached answers nothing is sent either: one line, exit 2.
    assert runner.invoke(app, ["cache", "clear", "--yes"]).exit_code == 0
    refused = runner.invoke(app, ["report", run_id, "-o", str(tmp_path / "again.html")])
    assert refused.exit_code == 2 and len(refused.stderr.splitlines()) == 1
    assert "no longer all in the cache" in refused.stderr and not (tmp_path / "again.html").exists()
    assert len(moonshot_server.chat_log()) == sent
    unknown = runner.invoke(app, ["report", "0000dead"])
    assert unknown.exit_code == 2 and unknown.stderr.startswith("Error: No run '0000dead'")
