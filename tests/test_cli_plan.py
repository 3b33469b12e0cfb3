"""`tome plan`: the readable table, --json, options, and one-line errors with exact exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

WORDS = [
    "river",
    "stone",
    "lantern",
    "harbour",
    "meadow",
    "orchard",
    "valley",
    "candle",
    "letter",
    "window",
    "garden",
    "winter",
]


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A markdown book of 12 chapters, about 30k tokens: several chunks and a merge level."""
    lines = ["# The Lantern Book", ""]
    for chapter in range(1, 13):
        lines += [f"## Chapter {chapter}", ""]
        for p in range(14):
            sentence = " ".join(WORDS[(chapter + p + k) % len(WORDS)] for k in range(9))
            lines += [" ".join(f"The {sentence} number {p}.{k}." for k in range(10)), ""]
    path = tmp_path / "lantern.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def invoke(*args: str):
    return runner.invoke(app, ["plan", *args])


def test_plan_prints_the_readable_report(book):
    result = invoke(str(book))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("Plan for", "sections found", "Chunk budget", "6,916 input tokens per chunk", "6,287 local"):
        assert text in out
    assert "Least wall time" in out and "bound by" in out
    assert "Cost: at most" in out and "CNY" in out
    assert result.stderr == ""


def test_plan_json_lists_every_chunk_and_the_tree(book):
    result = invoke(str(book), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    chunks = data["chunks"]
    assert len(chunks) > 3
    assert chunks[0]["start"] == 0 and chunks[-1]["end"] == data["document"]["chars"]
    assert all(a["end"] == b["start"] for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(c["token_count"] <= data["budget"]["max_local_tokens"] for c in chunks)
    assert all(c["section_title"].startswith("Chapter") for c in chunks[1:])
    levels = data["levels"]
    assert levels[0]["calls"] == len(chunks)
    assert levels[-1]["calls"] == 1
    assert data["totals"]["calls"] == sum(lv["calls"] for lv in levels)
    assert data["wall_time"]["binding"] in ("latency", "concurrency", "context", "rpm", "tpm", "tpd")


def test_plan_options_change_the_plan(book):
    data = json.loads(
        invoke(
            str(book),
            "--json",
            "--model",
            "moonshot-v1-32k",
            "--context",
            "none",
            "--length",
            "300",
            "--tier",
            "tier0",
        ).stdout
    )
    assert data["model"] == "moonshot-v1-32k"
    assert data["budget"]["context_tokens"] == 32768
    assert data["budget"]["carried_context_tokens"] == 0
    assert data["target_tokens"] == 300
    assert data["levels"][-1]["output_tokens"] <= 300
    assert data["limits"] == {"concurrency": 1, "rpm": 3, "tpm": 500_000, "tpd": 1_500_000}


def error_case(tmp_path: Path, name: str) -> list[str]:
    if name == "missing":
        return [str(tmp_path / "nope.txt")]
    if name == "unsupported":
        (tmp_path / "report.docx").write_bytes(b"PK\x03\x04")
        return [str(tmp_path / "report.docx")]
    if name == "empty":
        (tmp_path / "empty.txt").write_text("  \n\n", encoding="utf-8")
        return [str(tmp_path / "empty.txt")]
    ok = tmp_path / "ok.txt"
    ok.write_text("A short text. It has two sentences.\n", encoding="utf-8")
    return {
        "model": [str(ok), "--model", "gpt-9"],
        "tier": [str(ok), "--tier", "tier9"],
        "context": [str(ok), "--context", "sometimes"],
        "length": [str(ok), "--length", "lengthy"],
    }[name]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "No such file"),
        ("unsupported", "cannot read '.docx'"),
        ("empty", "no text"),
        ("model", "Unknown model 'gpt-9'"),
        ("tier", "Unknown tier 'tier9'"),
        ("context", "Unknown context strategy 'sometimes'"),
        ("length", "Invalid length 'lengthy'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(tmp_path, case, message):
    result = invoke(*error_case(tmp_path, case))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("encrypted_userpw_openpassword_libreoffice.pdf", [], "password"),
        ("encrypted_userpw_openpassword_libreoffice.pdf", ["--password", "wrong"], "password"),
        ("scanned_en_huckleberry_finn_p22.pdf", [], "OCR"),
        ("corrupt_header_and_eof_only.pdf", [], "damaged"),
        ("corrupt_truncated_60pct_federal_register.pdf", [], "damaged"),
    ],
)
def test_each_pdf_failure_is_one_line_with_exit_2(corpus, name, extra, message):
    result = invoke(str(corpus / "pdfs" / name), *extra)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


@pytest.mark.corpus
def test_encrypted_pdf_plans_with_its_password(corpus):
    path = corpus / "pdfs" / "encrypted_userpw_openpassword_libreoffice.pdf"
    result = invoke(str(path), "--password", "openpassword", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["document"]["pages"] == 1


def test_raise_errors_env_shows_the_real_exception_and_keeps_the_exit_code(tmp_path, monkeypatch):
    monkeypatch.setenv("TOME_RAISE_ERRORS", "1")
    result = invoke(str(tmp_path / "nope.txt"))
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "DocumentNotFoundError" in result.stderr


def test_usage_errors_exit_2():
    assert invoke().exit_code == 2
    assert invoke("a.txt", "--no-such-flag").exit_code == 2


def test_help_lists_plan():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "plan" in result.stdout


def test_console_script_plans_without_importing_prefect(book):
    code = (
        "import sys\n"
        "from flows.cli import app\n"
        f"sys.argv = ['tome', 'plan', {str(book)!r}, '--json']\n"
        "try:\n    app()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "sys.stderr.write(f'exit={code} prefect={\"prefect\" in sys.modules}')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert "exit=0 prefect=False" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)["totals"]["calls"] >= 2


def test_plan_takes_the_provider_options_and_asks_a_local_server_its_window(book, moonshot_server_factory):
    srv = moonshot_server_factory(keys=(), models={"qwen2.5-0.5b": 4096}, flavour="vllm")
    result = invoke(
        str(book), "--backend", "local", "--base-url", srv.base_url, "--model", "qwen2.5-0.5b",
        "--tier", "unlimited", "--concurrency", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["budget"]["context_tokens"] == 4096
    assert data["model"] == "qwen2.5-0.5b" and data["tier"] == "unlimited"
    assert data["limits"]["concurrency"] == 2
    assert srv.stats().requests == 0  # planning asks for the window, never for a summary


def test_plan_of_a_model_a_local_server_does_not_serve_is_one_line(book, moonshot_server_factory):
    srv = moonshot_server_factory(keys=(), models={"smollm2": 2048}, flavour="llama-server")
    result = invoke(str(book), "--backend", "local", "--base-url", srv.base_url, "--model", "phi-9")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "smollm2" in result.stderr and 'models."phi-9"' in result.stderr
