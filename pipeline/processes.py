"""Whether a process recorded by its id still runs on this machine (run records, tome's background server)."""

from __future__ import annotations

import os
from pathlib import Path


def process_alive(pid: int) -> bool:
    """The process exists on this machine and is not a zombie (a process whose parent has not reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): existence is all we can tell
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
