"""Unix conventions of `tome summarise`: - reads stdin, --json is one JSON document, -o is a file or a folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.commands.stdin_input import sniff_format

REPO = Path(__file__).resolve().parents[1]
ZH = REPO / "data" / "zh_shanju_ji.txt"
runner = CliRunner()


def summarise(*args: str, input: bytes | str | None = None):
    return runner.invoke(app, ["summarise", "--no-prefect", "--no-progress", *args], input=input)


def test_stdin_is_summarised_under_its_name(lighthouse: Path) -> None:
    from_file = summarise(str(lighthouse), "--json")
    piped = summarise("-", "--name", "keeper", "--json", input=lighthouse.read_bytes())
    assert piped.exit_code == 0, piped.stderr
    a, b = json.loads(from_file.stdout), json.loads(piped.stdout)
    assert b["final"] == a["final"] and b["title"] == a["title"]  # markdown sniffed: the same sections
    assert b["document"] == "-" and b["outcome"]["name"] == "keeper.md" and b["outcome"]["path"] == "-"


def test_stdin_markdown_output_and_format_option(lighthouse: Path, tmp_path: Path) -> None:
    text = lighthouse.read_text(encoding="utf-8").replace("#", "")  # no headings: sniffed as plain text
    result = summarise("-", input=text)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# Summary: ")
    out = tmp_path / "out"
    named = summarise("-", "--name", "notes", "--format", "md", "-o", str(out), input=text)
    assert named.exit_code == 0, named.stderr
    assert (out / "notes.summary.md").is_file() and (out / "notes.summary.json").is_file()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-"], b"", "Error: Nothing came on stdin"),
        (["-"], b"\x00\x01binary\x00", "Error: Cannot tell the format of the document on stdin; pass --format"),
        (["-", "--format", "docx"], b"text", "Error: Unknown --format 'docx'; use one of: txt, md, pdf, epub."),
        (["-", "-"], b"text", "Error: Only one - (stdin) can be given."),
        (["{doc}", "--name", "x"], b"", "Error: --name and --format name the document read from stdin"),
    ],
)
def test_stdin_errors_are_one_line_exit_2(lighthouse: Path, args: list[str], stdin: bytes, message: str) -> None:
    result = summarise(*[a.replace("{doc}", str(lighthouse)) for a in args], input=stdin)
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
    assert result.stdout == ""


def test_sniffing_formats() -> None:
    assert sniff_format(b"%PDF-1.7\n...") == "pdf"
    assert sniff_format(b"PK\x03\x04" + b"\x00" * 26 + b"mimetypeapplication/epub+zip") == "epub"
    assert sniff_format(b"PK\x03\x04 a zip of something else") is None
    assert sniff_format("第一章\n\n正文。".encode()) == "txt"
    assert sniff_format(b"Intro\n\n## Part 1\n\ntext") == "md"


def test_json_is_one_document_with_final_sections_usage_and_run_id(lighthouse: Path) -> None:
    result = summarise(str(lighthouse), "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert {"final", "sections", "usage", "run_id", "tree", "outcome"} <= set(payload)
    assert payload["final"] and payload["usage"]["calls"] + payload["usage"]["cached_calls"] >= 1
    runs = [json.loads(line) for line in runner.invoke(app, ["runs", "--json"]).stdout.splitlines()]
    assert runs[0]["id"] == payload["run_id"] == payload["outcome"]["run_id"]


def test_json_for_several_documents_is_a_list(lighthouse: Path) -> None:
    if not ZH.is_file():
        pytest.skip("data/zh_shanju_ji.txt is absent")
    result = summarise(str(lighthouse), str(ZH), "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert [p["outcome"]["name"] for p in payload] == ["the_lighthouse_keeper.md", "zh_shanju_ji.txt"]


@pytest.mark.parametrize("suffix", [".md", ".json", ".txt"])
def test_output_with_a_file_suffix_is_a_file(lighthouse: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / "sub" / f"summary{suffix}"
    result = summarise(str(lighthouse), "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert target.is_file() and result.stdout == "" and f"Wrote {target}" in result.stderr
    text = target.read_text(encoding="utf-8")
    if suffix == ".json":
        assert json.loads(text)["final"]
    elif suffix == ".md":
        assert text.startswith("# Summary: The Lighthouse Keeper")
    else:
        assert text.startswith("The Lighthouse Keeper\n\n") and "#" not in text.splitlines()[0]


def test_output_without_a_file_suffix_is_a_folder(lighthouse: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.d"
    result = summarise(str(lighthouse), "-o", str(target))
    assert result.exit_code == 0, result.stderr
    assert (target / "the_lighthouse_keeper.summary.md").is_file()


def test_output_file_takes_one_document(lighthouse: Path, tmp_path: Path) -> None:
    result = summarise(str(lighthouse), str(lighthouse), "-o", str(tmp_path / "a.md"))
    assert result.exit_code == 2 and "pass a folder instead" in result.stderr
    assert not (tmp_path / "a.md").exists()


def test_real_pipe_from_cat(lighthouse: Path, tmp_path: Path) -> None:
    env = {**os.environ, "TOME_HOME": str(tmp_path / "home")}
    env.pop("MOONSHOT_API_KEY", None)
    with lighthouse.open("rb") as fh:
        out = subprocess.run(
            [sys.executable, "-m", "flows", "summarise", "-", "--no-prefect", "--json"],
            stdin=fh, capture_output=True, env=env, cwd=REPO, timeout=120,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()
    assert json.loads(out.stdout)["document"] == "-"
