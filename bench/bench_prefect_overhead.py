"""What Prefect adds to the wall time of `tome summarise` on a small document, idle and under added CPU load.

Run from the repo root:  .venv/bin/python bench/bench_prefect_overhead.py [--runs 5] [--busy 2]
    [--backend both|extractive|server] [--doc data/the_lighthouse_keeper.md] [--write]

Every case is a real `python -m flows summarise DOC` process, timed from spawn to exit, with a fresh TOME_HOME
(so no cached answers) and the same backend; the repeated cases take turns (a, c, e, b, a, c, ...) so that the
load of a shared machine falls on all of them alike:
  (a)  direct:      --no-prefect, the engine called without any orchestration;
  (c1) background, first run: nothing configured, a brand-new PREFECT_HOME: tome starts its local Prefect server
       in the background (database migrations included) and the run uses it (once per backend);
  (c)  background, later runs: nothing configured, tome finds that server running and reuses it; the flow run is
       recorded over the server's REST API (flows/prefect_rest.py), Prefect is not imported;
  (e)  the same server with TOME_PREFECT_CLIENT=prefect: Prefect's own client and flow engine;
  (b0) ephemeral, fresh PREFECT_HOME: TOME_PREFECT_SERVER=ephemeral, Prefect's temporary server in the process,
       migrating a new database (once);
  (b)  ephemeral, warm database: the same on later runs (at the machine's load only: ~15 s a run).
Then (a), (c) and (e) again in turns while ``--busy`` processes spin on the CPU (started here, killed by PID): a
machine busier than its cores, as a shared CI runner is. Backends: the offline extractive backend, or
``server``: the Moonshot-compatible test server with zero latency. Every background server started here is stopped
at the end. ``--write`` saves the tables to bench/results/prefect_overhead.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import flows  # noqa: E402,F401 - applies tome's Prefect settings before anything imports prefect
from flows.background_server import MODE_ENV, ServerFiles, stop  # noqa: E402
from flows.prefect_env import PREFECT_DEFAULTS  # noqa: E402
from flows.summarise_rest import CLIENT_ENV, PREFECT  # noqa: E402

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
    if label.startswith(("background", "engine")) and "/flow-runs/flow-run/" not in proc.stderr:
        raise RuntimeError(f"{label}: no flow-run address on stderr: {proc.stderr[-2000:]}")
    return elapsed


def measure_in_turns(cases: dict[str, Callable[[], float]], runs: int, tag: str) -> dict[str, list[float]]:
    """Each case ``runs`` times, taking turns, so that a shared machine's load falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for i in range(runs):
        for name, once in cases.items():
            t = once()
            times[name].append(t)
            print(f"  {tag} {name} run {i + 1}/{runs}: {t:.2f} s", file=sys.stderr, flush=True)
    return times


@contextlib.contextmanager
def busy_cpu(count: int) -> Iterator[None]:
    """``count`` processes spinning on the CPU (this benchmark's own, ended by PID)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(1.0)  # let the load average see them
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def loadavg() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return f"{load[0]:.1f}"


def row(name: str, times: list[float], direct: float | None) -> str:
    med = statistics.median(times)
    overhead = "" if direct is None else f"{med - direct:+.2f}"
    ratio = "" if direct is None else f"{med / direct:.2f}"
    return f"| {name} | {len(times)} | {med:.2f} | {min(times):.2f} | {max(times):.2f} | {overhead} | {ratio} |"


def backend_args(backend: str, env: dict[str, str], stack: ExitStack) -> list[str]:
    if backend == "extractive":
        return ["--backend", "extractive"]
    from pipeline.testing import Latency, MoonshotTestServer

    srv = stack.enter_context(MoonshotTestServer(latency=Latency.zero()))
    env["MOONSHOT_API_KEY"] = srv.api_key
    return ["--backend", "moonshot", "--base-url", srv.base_url, "--tier", "unlimited"]


CASES = {
    "direct": "(a) direct, `--no-prefect`",
    "background": "(c) nothing configured, later runs: tome's server, recorded over REST",
    "engine": "(e) the same server, `TOME_PREFECT_CLIENT=prefect` (Prefect's engine)",
    "ephemeral": "(b) `TOME_PREFECT_SERVER=ephemeral`, warm database",
}


def table(backend: str, results: dict[str, dict[str, list[float]]], loads: dict[str, str], busy: int) -> list[str]:
    label = "the offline extractive backend" if backend == "extractive" else (
        "the Moonshot-compatible test server (zero latency, real HTTP)"
    )
    lines = [
        f"## Backend: {label}",
        "",
        "| case | runs | median s | min s | max s | overhead vs (a) s | ratio to (a) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for tag, heading in (("idle", f"at the machine's own load (load average ~{loads['idle']})"),
                         ("busy", f"with {busy} busy-loop processes added (load average ~{loads.get('busy', '?')})")):  # fmt: skip
        if tag not in results:
            continue
        res = results[tag]
        d = statistics.median(res["direct"])
        lines.append(f"| **{heading}** | | | | | | |")
        lines.append(row(CASES["direct"], res["direct"], None))
        if tag == "idle":
            lines.append(row("(c1) nothing configured, first run: starts tome's background server", res["first"], d))
        lines += [row(CASES[name], res[name], d) for name in ("background", "engine", "ephemeral") if name in res]
        if tag == "idle":
            lines.append(row("(b0) `TOME_PREFECT_SERVER=ephemeral`, fresh PREFECT_HOME", res["cold"], d))
        overhead = statistics.median(res["background"]) - d
        verdicts.append(f"{heading}: {'met' if overhead <= TARGET_SERVER_OVERHEAD_S else 'NOT met'} ({overhead:+.2f} s)")
    return [*lines, "", f"Target for (c): within {TARGET_SERVER_OVERHEAD_S:.0f} s of (a) — " + "; ".join(verdicts) + ".", ""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--busy", type=int, default=2, help="busy-loop processes for the loaded round (0: none)")
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
            engine = {**background, CLIENT_ENV: PREFECT}
            ephemeral = {**env, MODE_ENV: "ephemeral", "PREFECT_HOME": str(work / f"prefect-ephemeral-{backend}")}
            envs = {"direct": env, "background": background, "engine": engine, "ephemeral": ephemeral}
            cases: dict[str, Callable[[], float]] = {
                name: functools.partial(
                    timed_run, [*args, "--no-prefect"] if name == "direct" else args, case_env, work, name
                )
                for name, case_env in envs.items()
            }
            results: dict[str, dict[str, list[float]]] = {}
            loads: dict[str, str] = {}
            print(f"{backend}: (c1) first run, starts the background server", file=sys.stderr)
            idle: dict[str, list[float]] = {"first": [timed_run(args, background, work, "background-first")]}
            print(f"{backend}: (b0) ephemeral, fresh PREFECT_HOME (migrations)", file=sys.stderr)
            idle["cold"] = [timed_run(args, ephemeral, work, "ephemeral-cold")]
            idle |= measure_in_turns(cases, opts.runs, "idle")
            loads["idle"] = loadavg()
            results["idle"] = idle
            if opts.busy:
                with busy_cpu(opts.busy):
                    busy_cases = {k: v for k, v in cases.items() if k != "ephemeral"}
                    results["busy"] = measure_in_turns(busy_cases, opts.runs, f"busy({opts.busy})")
                    loads["busy"] = loadavg()
            sections += table(backend, results, loads, opts.busy)

    lines = [
        "# Prefect's orchestration cost for `tome summarise`",
        "",
        f"Document: `{opts.doc.name}` ({opts.doc.stat().st_size:,} bytes). Wall time of a whole "
        "`python -m flows summarise` process (spawn to exit), a fresh TOME_HOME each run (no cached answers). "
        "Produced by `bench/bench_prefect_overhead.py --write`.",
        f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, prefect {version('prefect')} "
        "(a shared machine: other jobs ran at the same time; the load averages are the 1-minute ones at the end "
        "of each round).",
        "",
        *sections,
        "Where the time goes: with Prefect's engine (e), `import prefect` alone costs ~1 s of CPU, its flow engine "
        "~0.3 s more (its parameter encoder imports FastAPI), which a loaded machine stretches several times over. "
        "Recorded over REST (c), the run costs the pipeline's own imports plus ~11 HTTP calls to the server "
        "(the flow, the flow run, two calls per task run, the artifacts, the logs, the final state): ~0.2-0.3 s of "
        "CPU. An ephemeral run also starts a server subprocess (~5-6 s) and migrates a fresh database on first use "
        "(~6-8 s more); tome's background server does that once, in (c1).",
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
