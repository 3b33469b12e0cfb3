"""Which files a run reads: files, folders and globs expanded; output base names; content hashes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.errors import DocumentNotFoundError

SUMMARY_SUFFIXES = (".summary.md", ".summary.json", ".summary.html")


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes: what `tome serve` compares to find new or changed documents."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_summary_file(path: Path) -> bool:
    return path.name.endswith(SUMMARY_SUFFIXES)


def expand_inputs(inputs: Sequence[str], pattern: str = "*", *, exclude: Path | None = None) -> list[Path]:
    """Files named by ``inputs``: files as given, folders matched with ``pattern``, glob expressions expanded.

    Our own outputs (``*.summary.md/json``) and anything under ``exclude`` are skipped. A named file that
    does not exist raises DocumentNotFoundError; a folder or glob that matches nothing gives no files.
    """
    found: list[Path] = []
    excluded = exclude.resolve() if exclude is not None else None
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.glob(pattern) if p.is_file())
        elif any(ch in item for ch in "*?["):
            anchor = Path(path.anchor) if path.is_absolute() else Path()
            rel = str(path.relative_to(anchor)) if path.is_absolute() else item
            matches = sorted(p for p in anchor.glob(rel) if p.is_file())
        elif path.is_file():
            matches = [path]
        else:
            raise DocumentNotFoundError(f"{item}: no such file or folder.")
        for p in matches:
            if is_summary_file(p) or p.name.startswith("."):
                continue
            if excluded is not None and excluded in p.resolve().parents:
                continue
            if p not in found:
                found.append(p)
    return found


def output_names(paths: Iterable[Path]) -> dict[Path, str]:
    """The output base name of each input: its stem; its file name when stems clash (a.txt, a.pdf); else
    the file name plus a short hash of its folder (two a.txt in different folders)."""
    paths = list(paths)
    stems: dict[str, int] = {}
    full: dict[str, int] = {}
    for p in paths:
        stems[p.stem] = stems.get(p.stem, 0) + 1
        full[p.name] = full.get(p.name, 0) + 1
    names = {}
    for p in paths:
        if stems[p.stem] == 1:
            names[p] = p.stem
        elif full[p.name] == 1:
            names[p] = p.name
        else:
            names[p] = f"{p.name}-{hashlib.sha256(str(p.resolve().parent).encode()).hexdigest()[:6]}"
    return names


def display_name(path: Path, name: str | None) -> str:
    """What progress lines and tables call a document: its file name, unless that is ambiguous."""
    return path.name if name in (None, path.stem) else name


