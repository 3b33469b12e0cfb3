"""The real-server tier: `tome summarise --backend local` against llama-cpp-python serving SmolLM2-135M.

.ci/llama.sh starts the server (n_ctx 2048) and exports TOME_LLAMA_URL, TOME_LLAMA_MODEL, TOME_LLAMA_CTX and
TOME_LLAMA_LOG. A 135M model writes poorly, so nothing here reads its prose: the tests assert the tree's
structure, tome's counts and the server's own access log. Locally they skip without a server; with CI set
they fail, so the tier cannot silently stop running.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.llama]

REPO = Path(__file__).resolve().parents[2]
_ACCESS = re.compile(r'"POST /v1/chat/completions HTTP/1\.1" (\d{3})')


@dataclass(frozen=True)
class LlamaServer:
    url: str
    model: str
    context: int
    log: Path

    def mark(self) -> int:
        """Where the server's log ends now (requests after this are the next run's)."""
        return self.log.stat().st_size

    def chat_statuses(self, since: int) -> list[int]:
        """The status of every chat request the server logged after ``since``."""
        with self.log.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode("utf-8", errors="replace")
        return [int(m.group(1)) for m in _ACCESS.finditer(text)]


@pytest.fixture(scope="module")
def llama() -> LlamaServer:
    url = os.environ.get("TOME_LLAMA_URL")
    if not url:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(
                "CI is set but TOME_LLAMA_URL is not: .ci/llama.sh did not start the llama.cpp server"
            )
        pytest.skip("no llama.cpp server (run `bash .ci/llama.sh --foreground` and export TOME_LLAMA_*)")
    return LlamaServer(
        url=url,
        model=os.environ.get("TOME_LLAMA_MODEL", "smollm2"),
        context=int(os.environ.get("TOME_LLAMA_CTX", "2048")),
        log=Path(os.environ["TOME_LLAMA_LOG"]),
    )


def _excerpt(source: Path, target: Path, chars: int) -> Path:
    """The first ``chars`` characters of a sample, cut at a paragraph (a short story the 135M model gets through)."""
    text = source.read_text(encoding="utf-8")
    cut = text.rfind("\n\n", 0, chars)
    target.write_text(text[: cut if cut > chars // 2 else chars], encoding="utf-8")
    return target


# Both over the server's 2048-token window in SmolLM2's tokens, so the over-declared window is refused.
SAMPLES = {
    "english": (REPO / "data" / "the_lighthouse_keeper.md", 9000),
    "chinese": (REPO / "data" / "zh_shanju_ji.txt", 1200),
}
DECLARED = 8192  # what tome.toml says: four times the server's --n_ctx, the commonest local mistake


def _summarise(
    llama: LlamaServer, doc: Path, home: Path, out: Path
) -> tuple[subprocess.CompletedProcess, dict]:
    config = home / "tome.toml"
    config.write_text(
        f'[models."{llama.model}"]\nprovider = "local"\ncontext_tokens = {DECLARED}\n', encoding="utf-8"
    )
    env = {
        **os.environ,
        "TOME_HOME": str(home),
        "TOME_CONFIG": str(config),
        "PREFECT_HOME": str(home / "prefect"),
    }
    cmd = [
        sys.executable, "-m", "flows", "summarise", str(doc), "--backend", "local", "--base-url", llama.url,
        "--model", llama.model, "--tier", "unlimited", "--length", "short", "--no-prefect", "--no-progress",
        "-o", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=2400, cwd=home)
    result_file = out / f"{doc.stem}.summary.json"
    result = json.loads(result_file.read_text(encoding="utf-8")) if result_file.is_file() else {}
    return proc, result


def _assert_complete_tree(result: dict, doc: Path) -> None:
    tree = result["tree"]
    levels = [[n for n in tree if n["level"] == lv] for lv in range(result["levels"])]
    assert levels and all(levels), "every level has nodes"
    chars = len(doc.read_text(encoding="utf-8"))
    spans = [n["span"] for n in levels[0]]
    assert spans[0][0] == 0 and spans[-1][1] >= chars - 2, "level 0 covers the whole document"
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False)), "level 0 has no gap or overlap"
    for below, level in zip(levels, levels[1:], strict=False):
        used = [i for n in level for i in n["inputs"]]
        assert used == list(range(len(below))), "each summary is merged exactly once, in order"
    assert len(levels[-1]) == 1 and result["final"].strip(), "one final summary"


@pytest.mark.parametrize("sample", sorted(SAMPLES))
def test_summarise_with_a_real_llama_server(llama: LlamaServer, tmp_path: Path, sample: str) -> None:
    source, chars = SAMPLES[sample]
    doc = _excerpt(source, tmp_path / f"{sample}{source.suffix}", chars)
    home = tmp_path / "home"
    home.mkdir()
    mark = llama.mark()
    proc, result = _summarise(llama, doc, home, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-3000:]
    _assert_complete_tree(result, doc)
    statuses = llama.chat_statuses(mark)
    refusals = statuses.count(400)
    # The over-declared window is refused (the server names its 2048) at most once per level of the tree.
    assert 1 <= refusals <= result["levels"], (statuses, result["levels"])
    assert set(statuses) <= {200, 400}
    assert len(statuses) == result["usage"]["calls"], "every request the server saw is one tome counted"
    assert f"{llama.context}-token window" in proc.stderr and str(DECLARED) in proc.stderr  # warned

    # A rerun answers from the cache: the server sees no request at all.
    mark = llama.mark()
    proc, again = _summarise(llama, doc, home, tmp_path / "again")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert llama.chat_statuses(mark) == []
    assert again["usage"]["calls"] == 0 and again["final"] == result["final"]
