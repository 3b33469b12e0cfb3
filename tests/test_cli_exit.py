"""`tome` exits without tearing the interpreter down (flows.cli.main), yet as Python would otherwise: the exit
code, exit handlers, thread pools left running, and everything written to stdout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tome_main(tmp_path: Path, args: list[str], before: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import sys\n{before}\nsys.argv = ['tome', *{args!r}]\nfrom flows.cli import main\nmain()\n"
    env = {"PATH": "/usr/bin:/bin", "TOME_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_exit_codes_and_output_are_those_of_the_command(tmp_path: Path) -> None:
    helped = _tome_main(tmp_path, ["--help"])
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: tome") and "server" in helped.stdout
    missing = _tome_main(tmp_path, ["summarise", str(tmp_path / "nope.md")])
    assert missing.returncode == 2 and missing.stderr.strip().endswith("nope.md: no such file.")
    assert _tome_main(tmp_path, ["no-such-command"]).returncode == 2


def test_exit_handlers_run_and_thread_pools_left_running_are_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "atexit-ran"
    before = (
        "import atexit, concurrent.futures, pathlib\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "pool = concurrent.futures.ThreadPoolExecutor(2); pool.submit(print, 'from the pool').result()"
    )
    done = _tome_main(tmp_path, ["--help"], before=before)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("from the pool\nUsage: tome")
    assert marker.read_text() == "yes"
