"""Keeping a big run's freed memory returnable to the system (glibc's allocator; a no-op elsewhere).

The CLI sets it at start; ``load_document`` sets it (once a process) before reading a big file, so programs using
the library need not call anything.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import cache

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
_MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept fixed


def fix_mmap_threshold() -> bool:
    """Have glibc serve every block of 128 KiB or more by its own mmap, freed back to the system when freed.

    By default glibc raises that threshold to the size of each large block freed (up to 32 MiB), so once a big
    text's first temporaries are freed, its later MB-sized blocks (normalised blocks, chunk texts, prompts) come
    from the heap, which fragments and keeps what was freed: a 50 MB run then peaks ~90 MB higher. Setting the
    threshold turns that adjustment off. Returns whether it was set (False off glibc, or when the user set
    ``MALLOC_MMAP_THRESHOLD_`` themselves).
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES))


@cache
def fix_mmap_threshold_once() -> bool:
    """:func:`fix_mmap_threshold`, done at most once a process (later calls return the first one's answer)."""
    return fix_mmap_threshold()
