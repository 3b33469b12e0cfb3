"""Transcripts in other renderings read as "Name: text", one turn a line, before the offline backend ranks them.

Meetings come as subtitles (SRT / WebVTT cues: an index, "00:00:01,000 --> 00:00:04,000", "<v Name>text"),
with a clock before each turn ("[00:01:23] Name: text"), or as meeting apps export them (the speaker and a clock
on a line of their own, "Name  0:02" / "Name (00:01:23)", the turn below). Read as they are, the clocks and cue
numbers hide the speaker labels (the transcript path does not fire) and reach the summary as content
(bench/transcript_formats.py; bench/results/eval.md, "Transcript formats"). Each rule needs at least three
such lines, and most of the text's lines for a leading clock, so prose, reports and stories pass unchanged.
"""

from __future__ import annotations

import re

from pipeline.language import SPEAKER_LABEL

_CLOCK = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
_CUE_TIMING = re.compile(rf"^\s*{_CLOCK}\s*-->\s*{_CLOCK}(?:\s.*)?$")
_CUE_INDEX = re.compile(r"^\s*\d+\s*$")
_VTT_HEADER = re.compile(r"^\s*(?:WEBVTT|NOTE|STYLE|REGION)\b")
_VOICE = re.compile(r"^\s*<v(?:\.[\w.-]+)?\s+([^>]+)>\s*")
_TAG = re.compile(r"</?(?:v|c|i|b|u|lang|ruby|rt)\b[^>]*>|<\d[\d:.]*>")
_STAMP = rf"(?:[\[(]{_CLOCK}[\])]|{_CLOCK})"
_LEADING_CLOCK = re.compile(rf"^\s*{_STAMP}\s*(?:[-–—|]\s*)?(?=\S)")
_SPEAKER_HEADER = re.compile(rf"^\s*(?P<name>[^\W\d][\w.,'’ ()&/-]{{0,90}}?)\s*{_STAMP}\s*$")
_MIN_LINES = 3
_CLOCK_SHARE = 0.6
_HEADER_SHARE = 0.3  # a header line per turn: a third of the lines or more
_REPEAT = 0.75  # speakers come back: at most this many distinct names per header


def as_turn_lines(text: str) -> str:
    """``text`` with cue blocks, turn clocks or speaker header lines rewritten as "Name: text" lines; else itself."""
    lines = text.splitlines()
    if sum(bool(_CUE_TIMING.match(line)) for line in lines) >= _MIN_LINES:
        return _from_cues(lines)
    filled = [line for line in lines if line.strip()]
    headers = [m.group("name").strip() for m in map(_SPEAKER_HEADER.match, filled) if m]
    if len(headers) >= max(_MIN_LINES, _HEADER_SHARE * len(filled)) and len(set(headers)) <= _REPEAT * len(
        headers
    ):
        return _from_headers(lines)
    stamped = sum(bool(_LEADING_CLOCK.match(line)) for line in filled)
    if stamped >= _MIN_LINES and stamped >= _CLOCK_SHARE * len(filled):
        return "\n".join(_LEADING_CLOCK.sub("", line, count=1) for line in lines)
    return text


def _from_cues(lines: list[str]) -> str:
    """Subtitle cues as turns: a cue that names its speaker opens a line, one that does not continues the last."""
    turns: list[str] = []
    cue: list[str] = []
    skipping = False  # inside the header or a NOTE/STYLE block: up to the next blank line

    def close() -> None:
        said = " ".join(cue).strip()
        cue.clear()
        if not said:
            return
        if turns and not SPEAKER_LABEL.match(said):
            turns[-1] += " " + said
        else:
            turns.append(said)

    for line in lines:
        if skipping or _VTT_HEADER.match(line):
            skipping = bool(line.strip())
            continue
        if _CUE_TIMING.match(line):
            if cue and _CUE_INDEX.match(cue[-1]):
                cue.pop()
            close()
            continue
        if not line.strip():
            continue
        voice = _VOICE.match(line)
        said = f"{voice.group(1).strip()}: {line[voice.end() :]}" if voice else line
        cue.append(_TAG.sub("", said).strip())
    if cue and _CUE_INDEX.match(cue[-1]):
        cue.pop()
    close()
    return "\n".join(turns)


def _from_headers(lines: list[str]) -> str:
    """A speaker and clock on a line of their own, the turn below: one "Name: text" line per turn."""
    out: list[str] = []
    name = ""
    said: list[str] = []
    for line in lines + [""]:
        header = _SPEAKER_HEADER.match(line)
        if header or (not line.strip() and said):
            if said:
                out.append(f"{name}: {' '.join(said)}" if name else " ".join(said))
            said = []
            if header:
                name = header.group("name").strip()
            continue
        if line.strip():
            said.append(line.strip())
        elif not name:
            out.append("")
    return "\n".join(out)
