"""What Prefect adds to the wall time of `tome summarise` on a small document.

Run from the repo root:  .venv/bin/python bench/bench_prefect_overhead.py [--runs 5] [--backend both|extractive|server]
    [--doc data/the_lighthouse_keeper.md] [--write]

Every case is a real `python -m flows summarise DOC` process, timed from spawn to exit, with a fresh TOME_HOME
(so no cached answers) and the same backend; the repeated cases take turns (a, c, b, a, c, b, ...) so that the
load of a shared machine falls on all of them alike:
  (a)  direct:      --no-prefect, the engine called without any orchestration;
  (c1) background, first run: nothing configured, a brand-new PREFECT_HOME: tome starts its local Prefect server
       in the background (database migrations included) and the run uses it (once per backend);
  (c)  background, later runs: nothing configured, tome finds that server running and reuses it;
  (b0) ephemeral, fresh PREFECT_HOME: TOME_PREFECT_SERVER=ephemeral, Prefect's temporary server in the process,
       migrating a new database (once);
  (b)  ephemeral, warm database: the same on later runs.
Backends: the offline extractive backend, or ``server``: the Moonshot-compatible test server with zero latency.
Every background server started here is stopped at the end. ``--write`` saves the tables to
bench/results/prefect_overhead.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flows  # noqa: E402,F401 - applies tome's Prefect settings before anything imports prefect
from flows.background_server import MODE_ENV, ServerFiles, stop  # noqa: E402
from flows.prefect_env import PREFECT_DEFAULTS  # noqa: E402

RESULTS = REPO / "bench" / "results" / "prefect_overhead.md"
TARGET_SERVER_OVERHEAD_S = 3.0


def base_env(work: Path) -> dict[str, str]:
    """A clean environment: tome's Prefect defaults, no API URL, no keys, no opt-out."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and not k.endswith("_API_KEY") and k != MODE_ENV
    }  # fmt: skip
    env.update(PREFECT_DEFAULTS)
    return env


def timed_run(args: list[str], env: dict[str, str], work: Path, label: str) -> float:
    """Wall seconds of one `tome summarise` process (fresh TOME_HOME); raises if it fails."""
    run_env = dict(env)
    run_env["TOME_HOME"] = tempfile.mkdtemp(prefix=f"{label}-", dir=work)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "flows", "summarise", *args], cwd=REPO, env=run_env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0 or not proc.stdout.startswith("# "):
        raise RuntimeError(f"{label} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    if label.startswith("background") and "/flow-runs/flow-run/" not in proc.stderr:
        raise RuntimeError(f"{label}: no flow-run address on stderr: {proc.stderr[-2000:]}")
    return elapsed


def measure_in_turns(cases: dict[str, Callable[[], float]], runs: int) -> dict[str, list[float]]:
    """Each case ``runs`` times, taking turns, so that a shared machine's load falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs):
        for name, once in cases.items():
            t = once()
            times[name].append(t)
            print(f"  {name} run {i + 1}/{runs}: {t:.2f} s", file=sys.stderr, flush=True)
    return times


def row(name: str, times: list[float], direct: float | None) -> str:
    med = statistics.median(times)
    overhead = "" if direct is None else f"{med - direct:+.2f}"
    return f"| {name} | {len(times)} | {med:.2f} | {min(times):.2f} | {max(times):.2f} | {overhead} |"


def backend_args(backend: str, env: dict[str, str], stack: ExitStack) -> list[str]:
    if backend == "extractive":
        return ["--backend", "extractive"]
    from pipeline.testing import Latency, MoonshotTestServer

    srv = stack.enter_context(MoonshotTestServer(latency=Latency.zero()))
    env["MOONSHOT_API_KEY"] = srv.api_key
    return ["--backend", "moonshot", "--base-url", srv.base_url, "--tier", "unlimited"]


def repeated_cases(
    args: list[str], direct: dict[str, str], background: dict[str, str], ephemeral: dict[str, str], work: Path
) -> dict[str, Callable[[], float]]:
    return {
        "direct": lambda: timed_run([*args, "--no-prefect"], direct, work, "direct"),
        "background": lambda: timed_run(args, background, work, "background"),
        "ephemeral": lambda: timed_run(args, ephemeral, work, "ephemeral"),
    }


def table(backend: str, results: dict[str, list[float]]) -> list[str]:
    d = statistics.median(results["direct"])
    overhead = statistics.median(results["background"]) - d
    label = "the offline extractive backend" if backend == "extractive" else (
        "the Moonshot-compatible test server (zero latency, real HTTP)"
    )
    return [
        f"## Backend: {label}",
        "",
        "| case | runs | median s | min s | max s | overhead vs direct (median) s |",
        "|---|---:|---:|---:|---:|---:|",
        row("(a) direct, `--no-prefect`", results["direct"], None),
        row("(c1) nothing configured, first run: starts tome's background server", results["first"], d),
        row("(c) nothing configured, later runs: reuse that server", results["background"], d),
        row("(b0) `TOME_PREFECT_SERVER=ephemeral`, fresh PREFECT_HOME", results["cold"], d),
        row("(b) `TOME_PREFECT_SERVER=ephemeral`, warm database", results["ephemeral"], d),
        "",
        f"Target for (c): within {TARGET_SERVER_OVERHEAD_S:.0f} s of (a) — "
        f"{'met' if overhead <= TARGET_SERVER_OVERHEAD_S else 'NOT met'} ({overhead:+.2f} s).",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--doc", type=Path, default=REPO / "data" / "the_lighthouse_keeper.md")
    parser.add_argument("--backend", choices=("extractive", "server", "both"), default="both")
    parser.add_argument("--write", action="store_true")
    opts = parser.parse_args()
    backends = ["extractive", "server"] if opts.backend == "both" else [opts.backend]

    sections: list[str] = []
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tome-bench-prefect-")))
        for backend in backends:
            env = base_env(work)
            args = [str(opts.doc.resolve()), "--no-progress", *backend_args(backend, env, stack)]
            background = {**env, "PREFECT_HOME": str(work / f"prefect-background-{backend}")}
            stack.callback(stop, ServerFiles(Path(background["PREFECT_HOME"])))  # whatever happens below
            ephemeral = {**env, MODE_ENV: "ephemeral", "PREFECT_HOME": str(work / f"prefect-ephemeral-{backend}")}
            results: dict[str, list[float]] = {}
            print(f"{backend}: (c1) first run, starts the background server", file=sys.stderr)
            results["first"] = [timed_run(args, background, work, "background-first")]
            print(f"{backend}: (b0) ephemeral, fresh PREFECT_HOME (migrations)", file=sys.stderr)
            results["cold"] = [timed_run(args, ephemeral, work, "ephemeral-cold")]
            print(f"{backend}: (a) direct, (c) background server, (b) ephemeral, in turns", file=sys.stderr)
            results |= measure_in_turns(repeated_cases(args, env, background, ephemeral, work), opts.runs)
            sections += table(backend, results)

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    lines = [
        "# Prefect's orchestration cost for `tome summarise`",
        "",
        f"Document: `{opts.doc.name}` ({opts.doc.stat().st_size:,} bytes). Wall time of a whole "
        "`python -m flows summarise` process (spawn to exit), a fresh TOME_HOME each run (no cached answers). "
        "Produced by `bench/bench_prefect_overhead.py --write`.",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, prefect "
        f"{__import__('prefect').__version__}, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        "(a shared machine: other jobs ran at the same time).",
        "",
        *sections,
        "Where the time goes: `import prefect` alone takes ~1.1 s of (c), creating the flow run and its two "
        "artifacts ~0.3 s; tome exits without tearing the interpreter down (~0.6 s saved with Prefect loaded, "
        "~0.3 s without). An ephemeral run also starts a server subprocess (~5-6 s) and migrates a fresh database "
        "on first use (~6-8 s more); tome's background server does that once, in (c1).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if opts.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")
        print(f"wrote {RESULTS.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
