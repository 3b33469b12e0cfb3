"""Every bad setting: exit 2, one line naming the key and the file, no traceback, before any call."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import LIGHTHOUSE

runner = CliRunner()


def _one_line_exit_2(result, *needles: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _with_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | str) -> Path:
    path = tmp_path / "tome.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    monkeypatch.setenv("TOME_CONFIG", str(path))
    return path


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ('[models."m"]\nprovider = "local"\ncontext_tokens = "lots"\n', ['[models.m] context_tokens = \'lots\'', "integer"]),
        ('[defaults]\nmodle = "moonshot-v1-8k"\n', ["unknown key [defaults] modle", "did you mean 'model'"]),
        ("[defaults]\nmax_depth = -1\n", ["[defaults] max_depth = -1", "greater than or equal to 1"]),
        ("[defaults]\nchunk_output_tokens = -100\n", ["[defaults] chunk_output_tokens = -100"]),
        ("[defaults]\ncontext_strategy = 'sometimes'\n", ["[defaults] context_strategy"]),
        ("[limits]\nrpm = -5\n", ["[limits] rpm = -5"]),
        ('[providers.p]\nbase_url = "https://user:secret@example.com/v1"\napi_key_env = "K"\n', ["user name or password"]),
        (b"\x89\xfe\x00\x01 random bytes \xff", ["not UTF-8 text"]),
        ("[defaults\nmodel=", ["not valid TOML"]),
    ],
)
def test_bad_tome_toml_is_one_line_exit_2(tmp_path, monkeypatch, content, needles) -> None:
    path = _with_config(tmp_path, monkeypatch, content)
    for command in (["plan", str(LIGHTHOUSE)], ["summarise", "--no-prefect", "--backend", "extractive", str(LIGHTHOUSE)]):
        result = runner.invoke(app, command)
        _one_line_exit_2(result, str(path), *needles)
        assert "secret" not in result.stderr


def test_length_larger_than_the_model_can_write(tmp_path) -> None:
    result = runner.invoke(app, ["plan", str(LIGHTHOUSE), "--length", "10000000"])
    _one_line_exit_2(result, "--length 10000000", "moonshot-v1-8k")


def test_base_url_with_credentials_is_refused_and_never_echoed(tmp_path) -> None:
    result = runner.invoke(
        app,
        ["summarise", "--no-prefect", "--backend", "local", "--base-url", "http://bob:hunter2@127.0.0.1:9/v1",
         str(LIGHTHOUSE)],
    )  # fmt: skip
    _one_line_exit_2(result, "user name or password")
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize("kind", ["file", "proc"])
def test_tome_home_that_is_not_a_writable_directory(tmp_path, monkeypatch, kind) -> None:
    home = tmp_path / "afile" if kind == "file" else Path("/proc/tome-home")
    if kind == "file":
        home.write_text("x")
    monkeypatch.setenv("TOME_HOME", str(home))
    result = runner.invoke(app, ["summarise", "--no-prefect", "--backend", "extractive", str(LIGHTHOUSE)])
    _one_line_exit_2(result, "TOME_HOME", str(home))


def test_database_url_without_its_driver(monkeypatch) -> None:
    monkeypatch.setenv("TOME_DATABASE_URL", "postgresql+nosuchdriver://u@127.0.0.1:1/tome")
    result = runner.invoke(app, ["summarise", "--no-prefect", "--backend", "extractive", str(LIGHTHOUSE)])
    _one_line_exit_2(result, "database URL", "postgresql+nosuchdriver")


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_output_that_is_not_a_writable_folder_is_refused_before_any_call(tmp_path, kind) -> None:
    if kind == "file":
        out = tmp_path / "taken"
        out.write_text("x")
    else:
        out = Path("/proc/tome-out")
    result = runner.invoke(
        app, ["summarise", "--no-prefect", "--backend", "extractive", "-o", str(out), str(LIGHTHOUSE)]
    )
    _one_line_exit_2(result, str(out))
    runs = runner.invoke(app, ["runs"])
    assert "done" not in runs.stdout  # nothing ran


def test_raise_errors_keeps_the_exit_code(monkeypatch) -> None:
    monkeypatch.setenv("TOME_RAISE_ERRORS", "1")
    result = runner.invoke(app, ["plan", str(LIGHTHOUSE), "--length", "3"])
    assert result.exit_code == 2
    assert "Traceback" in result.stderr


def test_config_file_that_cannot_be_read(tmp_path, monkeypatch) -> None:
    if os.geteuid() == 0:
        path = _with_config(tmp_path, monkeypatch, "")
        path.unlink()
        path.mkdir()  # root reads any file; a directory in its place cannot be read by anyone
    else:
        path = _with_config(tmp_path, monkeypatch, "[defaults]\n")
        path.chmod(0)
    result = runner.invoke(app, ["plan", str(LIGHTHOUSE)])
    _one_line_exit_2(result, str(path))


def test_unknown_language_is_refused(tmp_path, monkeypatch) -> None:
    result = runner.invoke(app, ["summarise", "--no-prefect", "--backend", "extractive", "--language", "klingon",
                                 str(LIGHTHOUSE)])  # fmt: skip
    _one_line_exit_2(result, "Unknown --language 'klingon'")
    path = _with_config(tmp_path, monkeypatch, '[defaults]\nlanguage = "elvish"\n')
    planned = runner.invoke(app, ["plan", str(LIGHTHOUSE)])
    _one_line_exit_2(planned, "[defaults] language 'elvish'")
    assert path.is_file()


def test_language_option_by_name_is_resolved_to_its_code(tmp_path) -> None:
    import json

    out = tmp_path / "out"
    result = runner.invoke(app, ["summarise", "--no-prefect", "--backend", "extractive", "--no-progress",
                                 "--language", "French", "-o", str(out), str(LIGHTHOUSE)])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    payload = json.loads((out / "the_lighthouse_keeper.summary.json").read_text(encoding="utf-8"))
    assert payload["language"] == "fr"
