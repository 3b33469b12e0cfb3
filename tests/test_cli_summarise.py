"""`tome summarise`: stdout is the summary, stderr the notice and progress; exact exit codes 0/1/2/3.

These run the engine directly (``--no-prefect``); tests/test_flows_prefect.py runs the same commands through
Prefect against a real server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.config import RateLimits
from pipeline.store import Store
from tests.test_flows_runner import CHINESE_STORY

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_password_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """--password is handed on through the environment; put it back after each test."""
    monkeypatch.setenv("TOME_PDF_PASSWORD", "")
    monkeypatch.delenv("TOME_PDF_PASSWORD")


def summarise(*args: str):
    return runner.invoke(app, ["summarise", "--no-prefect", *args])


def test_extractive_summary_on_stdout_notice_and_progress_on_stderr(lighthouse: Path) -> None:
    result = summarise(str(lighthouse))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# ")
    assert "Elias" in result.stdout  # the extractive backend keeps the document's own sentences
    assert "level 0:" not in result.stdout and "MOONSHOT_API_KEY" not in result.stdout
    err = result.stderr.splitlines()
    assert err[0].startswith("MOONSHOT_API_KEY is not set: using the offline extractive backend")
    assert any(line.startswith("the_lighthouse_keeper.md · level 0: 0/") for line in err)
    assert err[-1].startswith("the_lighthouse_keeper.md: done, ")


def test_output_folder_gets_markdown_and_json(lighthouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = summarise(str(lighthouse), "-o", str(out), "--no-progress", "--length", "short")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    md, js = out / "the_lighthouse_keeper.summary.md", out / "the_lighthouse_keeper.summary.json"
    assert f"Wrote {md}, {js}, {out / 'the_lighthouse_keeper.summary.html'}" in result.stderr
    assert "level 0" not in result.stderr  # --no-progress
    payload = json.loads(js.read_text(encoding="utf-8"))
    assert payload["source"]["options"] == {"backend": "auto", "length": "short", "server_extract": False, "cite": False}
    assert payload["settings"]["target_tokens"] == 250


def test_chinese_document_with_the_extractive_backend() -> None:
    doc = REPO / "data" / "zh_shanju_ji.txt"
    if not doc.is_file():
        pytest.skip("data/zh_shanju_ji.txt is not there yet")
    result = summarise(str(doc), "--backend", "extractive", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert "Using the offline extractive backend" in result.stderr
    assert result.stdout.startswith("# ") and "山居记" in result.stdout.splitlines()[0]
    assert "周远" in result.stdout
    hanzi = sum("\u4e00" <= ch <= "\u9fff" for ch in result.stdout)
    assert hanzi > 200


def test_moonshot_backend_against_the_local_server(lighthouse: Path, moonshot_server, monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    result = summarise(str(lighthouse), "--base-url", moonshot_server.base_url, "--tier", "unlimited")
    assert result.exit_code == 0, result.stderr
    assert f"Using moonshot (moonshot-v1-8k) at {moonshot_server.base_url}" in result.stderr
    assert moonshot_server.stats().requests >= 2
    assert "¥" in result.stderr  # cost so far, in the model's currency
    assert moonshot_server.api_key not in result.stderr + result.stdout


def test_several_files_print_each_summary_and_a_table(lighthouse: Path, tmp_path: Path) -> None:
    zh = tmp_path / "dengta.txt"
    zh.write_text(CHINESE_STORY, encoding="utf-8")
    result = summarise(str(lighthouse), str(zh), "--no-progress")
    assert result.exit_code == 0, result.stderr
    titles = [line for line in result.stdout.splitlines() if line.startswith("# ")]
    assert len(titles) == 2 and "Lighthouse" in titles[0] and "灯塔" in titles[1]
    assert "the_lighthouse_keeper.md  done" in result.stderr and "dengta.txt" in result.stderr


# --- exit codes -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.txt"], "missing.txt: no such file."),
        (["{doc}", "--length", "tiny"], "Invalid length 'tiny'"),
        (["{doc}", "--backend", "gpt"], "Unknown backend 'gpt'"),
        (["{doc}", "--model", "gpt-17"], "Unknown model 'gpt-17'"),
        (["{doc}", "--tier", "tier9"], "Unknown tier 'tier9'"),
        (["{doc}", "--context", "sometimes"], "Unknown context strategy 'sometimes'"),
        (["{doc}", "--backend", "moonshot"], "Set MOONSHOT_API_KEY (the API key for provider 'moonshot')"),
        (["{doc}", "--backend", "deepseek"], "Set DEEPSEEK_API_KEY"),
        (["{empty}"], "empty"),
        (["{broken}"], "broken.pdf"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("A short document. It has two sentences.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    args = [a.format(doc=doc, empty=tmp_path / "empty.txt", broken=tmp_path / "broken.pdf") for a in args]
    os.chdir(tmp_path)
    result = summarise(*args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    err = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(err) == 1 and message.lower() in err[0].lower(), result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_prefect_api_exits_2_before_prefect_starts(lighthouse: Path, monkeypatch) -> None:
    from flows.prefect_server import free_port

    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    result = runner.invoke(app, ["summarise", str(lighthouse)])  # through Prefect: no --no-prefect
    assert result.exit_code == 2
    assert result.stderr == (
        f"Error: The Prefect API at {url} does not answer (ConnectError). Start it (`prefect server start`), "
        "unset PREFECT_API_URL to let tome start its own in the background, or pass --no-prefect.\n"
    )


def test_rejected_key_exits_2(lighthouse: Path, moonshot_server, monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-not-the-right-key")
    result = summarise(str(lighthouse), "--backend", "moonshot", "--base-url", moonshot_server.base_url)
    assert result.exit_code == 2, result.stderr
    assert "sk-not-the-right-key" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


def test_provider_failure_exits_1(lighthouse: Path, moonshot_server, monkeypatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    moonshot_server.inject("content_filter", times=100)
    result = summarise(str(lighthouse), "--base-url", moonshot_server.base_url, "--no-progress")
    assert result.exit_code == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


def test_quota_exhausted_exits_3_and_a_rerun_resumes(lighthouse: Path, moonshot_server_factory, monkeypatch) -> None:
    srv = moonshot_server_factory(limits=RateLimits(concurrency=0, tpd=9000))  # one level-0 call, not two
    monkeypatch.setenv("MOONSHOT_API_KEY", srv.api_key)
    first = summarise(str(lighthouse), "--base-url", srv.base_url, "--no-progress")
    assert first.exit_code == 3, first.stderr
    assert first.stdout == ""
    assert first.stderr.strip().splitlines()[-1].startswith("Error: The daily token quota (TPD) is used up")
    assert srv.stats().requests >= 1
    srv.configure(limits=RateLimits(concurrency=0))  # the quota is back (a new day, or a top-up)
    second = summarise(str(lighthouse), "--base-url", srv.base_url, "--no-progress")
    assert second.exit_code == 0, second.stderr
    assert second.stdout.startswith("# ")
    runs = Store().list_runs()
    assert [r.status for r in runs[:2]] == ["done", "quota"]
    assert runs[0].cached_calls >= 1  # what the first run finished was not asked again


@pytest.mark.corpus
def test_encrypted_pdf_needs_its_password(corpus: Path) -> None:
    pdf = corpus / "pdfs" / "encrypted_userpw_openpassword_libreoffice.pdf"
    assert summarise(str(pdf), "--no-progress").exit_code == 2
    result = summarise(str(pdf), "--no-progress", "--password", "openpassword")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# ")


@pytest.mark.corpus
def test_chinese_pdf_from_the_corpus(corpus: Path) -> None:
    result = summarise(str(corpus / "pdfs" / "cjk_zh_elegantbook_manual_15p.pdf"), "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in result.stdout) > 50


def test_real_process_keeps_stdout_clean_and_prints_progress_lines(lighthouse: Path, tmp_path: Path) -> None:
    """A real subprocess with pipes (not a terminal): plain progress lines on stderr, only the summary on stdout."""
    doc = tmp_path / "lighthouse.md"
    shutil.copy(lighthouse, doc)
    env = {**os.environ, "TOME_HOME": str(tmp_path / "home")}
    env.pop("MOONSHOT_API_KEY", None)
    proc = subprocess.run(
        [sys.executable, "-m", "flows", "summarise", "--no-prefect", str(doc)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# ") and "level 0" not in proc.stdout
    assert "lighthouse.md · level 0: " in proc.stderr and "lighthouse.md: done" in proc.stderr
    assert "\x1b[" not in proc.stderr  # no terminal control codes when stderr is a pipe
    missing = subprocess.run(
        [sys.executable, "-m", "flows", "summarise", "--no-prefect", str(tmp_path / "nope.md")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 2
    assert missing.stderr == f"Error: {tmp_path / 'nope.md'}: no such file.\n"


def test_any_openai_compatible_server_by_base_url_and_model(
    lighthouse: Path, moonshot_server_factory, tmp_path: Path, monkeypatch
) -> None:
    # A local server (vLLM / Ollama / llama.cpp style): no API key, a model tome's catalog does not ship,
    # declared in the user's tome.toml with its context window.
    srv = moonshot_server_factory(keys=(), models={"llama3.1-8b-instruct": 16384})
    user = tmp_path / "tome.toml"
    user.write_text('[models."llama3.1-8b-instruct"]\nprovider = "local"\ncontext_tokens = 16384\n', encoding="utf-8")
    monkeypatch.setenv("TOME_CONFIG", str(user))
    result = summarise(
        str(lighthouse), "--backend", "local", "--base-url", srv.base_url,
        "--model", "llama3.1-8b-instruct", "--tier", "unlimited",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip()
    log = srv.chat_log()
    assert log and all(r.model == "llama3.1-8b-instruct" for r in log)


SCAN_TEXT = (
    "The keeper of Skerry Point light wrote the weather in his log every night for forty years. "
    "When the sandbar moved, his granddaughter plotted its bearings and the harbour changed its channel."
)


@pytest.fixture
def scanned_pdf(tmp_path: Path) -> Path:
    from tests.fixtures.documents.make_pdfs import image_only_pdf

    path = tmp_path / "scan.pdf"
    path.write_bytes(image_only_pdf(2))
    return path


def test_scanned_pdf_without_server_extract_says_how_to_read_it(scanned_pdf: Path) -> None:
    result = summarise(str(scanned_pdf))
    assert result.exit_code == 2
    assert "no text layer" in result.stderr and "--server-extract" in result.stderr


def test_server_extract_reads_a_scanned_pdf_through_moonshot(
    scanned_pdf: Path, moonshot_server, monkeypatch
) -> None:
    moonshot_server.gateway.ocr_text = SCAN_TEXT
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    result = summarise(
        str(scanned_pdf), "--server-extract", "--base-url", moonshot_server.base_url, "--tier", "unlimited"
    )
    assert result.exit_code == 0, result.stderr
    assert "Skerry Point" in result.stdout
    endpoints = moonshot_server.stats().endpoints
    assert endpoints.get("files") == 1 and endpoints.get("chat", 0) >= 1
    assert not moonshot_server.gateway.files  # the upload was deleted afterwards


def test_server_extract_needs_the_moonshot_backend(scanned_pdf: Path) -> None:
    result = summarise(str(scanned_pdf), "--server-extract", "--backend", "extractive")
    assert result.exit_code == 2
    assert "needs the Moonshot backend" in result.stderr
