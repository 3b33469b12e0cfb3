"""`tome runs show`: a run's settings and tree, each call's prompt and answer from the cache; and one definition
of calls, cached calls and splits that progress, tables, `tome runs`, `runs show` and the JSON all agree on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.config import load_catalog
from tests.conftest import tome

REPO = Path(__file__).resolve().parents[1]
ZH = REPO / "data" / "zh_shanju_ji.txt"


def _moonshot_run(doc: Path, srv, monkeypatch: pytest.MonkeyPatch, *extra: str) -> dict:
    monkeypatch.setenv("MOONSHOT_API_KEY", srv.api_key)
    result = tome("summarise", str(doc), "--base-url", srv.base_url, "--no-prefect", "--json", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_runs_show_prints_settings_and_the_tree_level_by_level(lighthouse: Path, moonshot_server, monkeypatch) -> None:
    payload = _moonshot_run(lighthouse, moonshot_server, monkeypatch)
    shown = tome("runs", "show", payload["run_id"][:8])
    assert shown.exit_code == 0, shown.stderr
    out = shown.stdout
    assert f"run       {payload['run_id']}" in out and "status    done" in out
    versions = load_catalog().prompt_versions
    map_v, reduce_v = versions["map"], versions["reduce"]
    assert "backend=moonshot" in out and "model=moonshot-v1-8k" in out
    assert f"prompts   map={map_v}, reduce={reduce_v}" in out
    levels = re.findall(r"^level (\d+): (\d+) summaries, (\d+) calls, (\d+) cached$", out, re.MULTILINE)
    tree = payload["tree"]
    assert [int(lv) for lv, *_ in levels] == sorted({n["level"] for n in tree})
    for lv, nodes, calls, cached in levels:
        at = [n for n in tree if n["level"] == int(lv)]
        assert int(nodes) == len(at)
        assert int(calls) == sum(n["calls"] for n in at) and int(cached) == sum(n["cached_calls"] for n in at)
    rows = [line.split() for line in out.splitlines() if re.match(r"^\d+\.\d+ ", line)]
    assert len(rows) == payload["usage"]["calls"]
    first = rows[0]
    assert first[:5] == ["0.0", "chunk", "0", "map", map_v] and first[5] == "answer" and first[-1] == "no"
    assert first[-2].startswith("¥")
    assert any(r[0].startswith("1.") and r[2] == "reduce" and r[3] == reduce_v for r in rows)  # inputs "0.0-2"
    again = tome("runs", "show", "latest")
    assert again.stdout == out  # "latest" is the same run


def test_runs_show_call_prints_the_exact_prompt_and_answer(lighthouse: Path, moonshot_server, monkeypatch) -> None:
    payload = _moonshot_run(lighthouse, moonshot_server, monkeypatch)
    node = next(n for n in payload["tree"] if n["level"] == 0 and n["index"] == 1)
    result = tome("runs", "show", payload["run_id"], "--call", "0.1")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    map_v = load_catalog().prompt_versions["map"]
    assert out.startswith(f"== call 0.1, request 1 of 1: map, prompt {map_v}, answer, ")
    assert "--- system ---" in out and "--- user ---" in out and "<text>" in out
    assert out.split("--- answer ---\n")[1].strip() == node["text"].strip()
    as_json = json.loads(tome("runs", "show", payload["run_id"], "--call", "0.1", "--json").stdout)
    assert as_json[0]["messages"][0]["role"] == "system" and as_json[0]["answer"].strip() == node["text"].strip()
    # nothing stored holds the key: not the prompts, not the run's settings
    db = Path(str(tome("cache", "stats").stdout.split("sqlite:///")[1].split()[0]))
    assert moonshot_server.api_key.encode() not in db.read_bytes()
    for wal in db.parent.glob(db.name + "-wal"):
        assert moonshot_server.api_key.encode() not in wal.read_bytes()


def test_a_rerun_shows_cached_calls(lighthouse: Path, moonshot_server, monkeypatch) -> None:
    first = _moonshot_run(lighthouse, moonshot_server, monkeypatch)
    second = _moonshot_run(lighthouse, moonshot_server, monkeypatch)
    assert second["usage"]["calls"] == 0 and second["usage"]["cached_calls"] == first["usage"]["calls"]
    out = tome("runs", "show", second["run_id"]).stdout
    rows = [line.split() for line in out.splitlines() if re.match(r"^\d+\.\d+ ", line)]
    assert rows and all("cached" in r and r[-1] == "yes" and r[-2] == "¥0.00" for r in rows)
    call = tome("runs", "show", second["run_id"], "--call", "0.0").stdout
    assert ", from the cache ==" in call and "--- answer ---" in call


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "show", "nope"], "Error: No run 'nope'."),
        (["runs", "show", "latest", "--call", "9.9"], "Error: Run "),
        (["runs", "show", "latest", "--call", "x"], "Error: --call x: write LEVEL.INDEX"),
    ],
)
def test_runs_show_errors_are_one_line_exit_2(lighthouse: Path, args: list[str], message: str) -> None:
    assert tome("summarise", str(lighthouse), "--no-prefect", "--no-progress").exit_code == 0
    result = tome(*args)
    assert result.exit_code == 2 and result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1


def _done_line(stderr: str, name: str) -> tuple[int, int, int]:
    line = next(x for x in stderr.splitlines() if x.startswith(f"{name}: done, "))
    m = re.match(rf"{re.escape(name)}: done, ([\d,]+) calls, ([\d,]+) cached(?:, ([\d,]+) splits?)?", line)
    assert m, line
    return tuple(int((g or "0").replace(",", "")) for g in m.groups())  # type: ignore[return-value]


def _agree(stderr: str, name: str, payload: dict, table_row: list[str] | None) -> None:
    """Progress, the JSON usage, the tree, `tome runs --json` and `tome runs show` count the same."""
    calls, cached, splits = _done_line(stderr, name)
    usage = payload["usage"]
    assert (calls, cached, splits) == (usage["calls"], usage["cached_calls"], usage["splits"])
    assert calls == sum(n["calls"] for n in payload["tree"])
    assert cached == sum(n["cached_calls"] for n in payload["tree"])
    run = next(json.loads(x) for x in tome("runs", "--json").stdout.splitlines() if payload["run_id"] in x)
    assert (run["calls"], run["cached_calls"]) == (calls, cached)
    shown = tome("runs", "show", payload["run_id"]).stdout
    assert f"usage     {calls:,} calls, {cached:,} cached, " in shown
    per_level = re.findall(r"^level \d+: \d+ summaries, (\d+) calls, (\d+) cached$", shown, re.MULTILINE)
    assert (sum(int(a) for a, _ in per_level), sum(int(b) for _, b in per_level)) == (calls, cached)
    if table_row is not None:
        assert table_row[2:4] == [str(calls), str(cached)]


@pytest.mark.parametrize("rerun", [False, True])
def test_counts_agree_on_the_chinese_sample(lighthouse: Path, rerun: bool) -> None:
    if not ZH.is_file():
        pytest.skip("data/zh_shanju_ji.txt is absent")
    if rerun:
        assert tome("summarise", str(ZH), "--no-prefect").exit_code == 0
    # Two documents: the table is printed too (stderr), and --json gives both results.
    result = tome("summarise", str(ZH), str(lighthouse), "--no-prefect", "--json")
    assert result.exit_code == 0, result.stderr
    payloads = {p["outcome"]["name"]: p for p in json.loads(result.stdout)}
    rows = [line.split() for line in result.stderr.splitlines()]
    table = {r[0]: r for r in rows if len(r) > 3 and r[0] in ("zh_shanju_ji.txt", "the_lighthouse_keeper.md") and r[1] == "done"}
    for name, payload in payloads.items():
        _agree(result.stderr, name, payload, table[name])
    zh = payloads["zh_shanju_ji.txt"]["usage"]
    assert (zh["calls"] == 0) == rerun and zh["cached_calls"] + zh["calls"] >= 1


def test_counts_agree_when_the_server_rejects_a_call_as_too_long(
    lighthouse: Path, moonshot_server, monkeypatch
) -> None:
    # The prompt alone (20,000 - max_tokens) is over the window: the call is split (not sent again with less room).
    moonshot_server.gateway.inject("context_length", requested=20000)
    monkeypatch.setenv("MOONSHOT_API_KEY", moonshot_server.api_key)
    result = tome("summarise", str(lighthouse), "--base-url", moonshot_server.base_url, "--no-prefect", "--json")
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["usage"]["splits"] >= 1
    assert payload["usage"]["calls"] == moonshot_server.stats().requests  # the rejected request counts
    _agree(result.stderr, "the_lighthouse_keeper.md", payload, None)
    shown = tome("runs", "show", payload["run_id"]).stdout
    assert re.search(r"^0\.\d+·1 .* rejected ", shown, re.MULTILINE)
