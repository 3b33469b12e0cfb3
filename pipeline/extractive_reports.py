"""Where a report states its findings: how much weight the offline backend gives to what comes first.

Government reports, papers and news often open with what they found (an introduction that restates the
summary, a letter's first paragraphs), and some put it under a heading ("Highlights", "What GAO Found",
"Results in Brief", "Executive Summary", "摘要"). Others do not: a paper without its abstract, a rule, a report
that opens with background. So the document itself is asked, not its genre: when the sentences that open it
cover the document's most widespread content words about as well as its best-scored sentences do, the position
prior is strong; when the opening says little of what the rest says, it is weaker, never gone (a whole report's
appendices and back matter can make its opening look less central than it is; GovReport-like held-out reports
favour the lead by ten ROUGE-1 points over TextRank). A stated summary's sentences come first either way.
Deterministic, linear in the sentence count.
"""

from __future__ import annotations

import math
import re
import statistics
from collections import Counter
from collections.abc import Sequence

# Headings over what the document states it found. A summary, its highlights or an overview stand before the
# body: their sentences come first when the heading lies in the document's opening (OPENING_REACH), not when an
# "Overview of the Program" opens a part deep inside (CRS R48915: 60.4 -> 67.8 ROUGE-1). Conclusions close the
# body: theirs come first wherever they are. (Conclusions counted as a section's lead only: project EN dev reports
# R-L -1.7, public -0.7.)
_SUMMARY_HEADING = re.compile(
    r"^(?:#{1,6}\s*)?(?:\d+[.)]?\s*)?(?:highlights?|what (?:gao|we|the \w+) found|key (?:findings|points|messages|"
    r"takeaways|judgments)|(?:executive |plain language )?summary|abstract|overview|findings|main findings|"
    r"in brief|results in brief|(?:principal|major) findings|at a glance|bottom line|synopsis|tl;?dr|摘要|内容摘要|"
    r"内容提要|提要|概要|要点|主要发现|核心观点|总体情况|总体来看|前言|概述|综述)\b",
    re.IGNORECASE,
)
_CONCLUDING_HEADING = re.compile(
    r"^(?:#{1,6}\s*)?(?:\d+[.)]?\s*)?(?:conclusions?|concluding (?:remarks|observations)|summary of (?:findings|"
    r"results)|结论|主要结论|总体评价)\b",
    re.IGNORECASE,
)
# A sentence stating what the report does: GAO's Highlights repeat it ("This report describes (1)..."), and
# in the opening it is often long enough to lose its place to shorter ones. Its first one counts as stated: whole
# CRS/GAO dev2 (13) 66.03 / 36.07 / 33.87 -> 66.34 / 36.48 / 34.35, public 14 +0.1, project EN reports R-2 -0.3
# (every purpose sentence: the same on the public sets, project EN R-L -0.5).
_PURPOSE = re.compile(
    r"^(?:specifically, |in this report, )?(?:this (?:report|testimony|statement)|gao was asked|you asked us|"
    r"we were asked)\b",
    re.IGNORECASE,
)
# An item of a list that goes on its lead-in's sentence: a number, letter or bullet, then a word in lower case.
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,2}[.)]|\(?[a-z0-9]{1,3}\)|[•●▪◦*–-])\s+[a-z]")
# Back matter: what follows one of these headings to the end of the material (appendices and their scope and
# methodology, agency letters, notes, author and contact lines) is no part of a summary: not read at all. Whole
# CRS/GAO reports with another report appended under "Appendix I": ROUGE-1 57.9 -> 62.2 (public 14), 61.3 ->
# 66.6 (dev2, 13); every dev set unchanged (none has back matter left in it).
_BACK_MATTER_HEADING = re.compile(
    r"^(?:#{1,6}\s*)?(?:appendix|appendices|annex|references|bibliography|works cited|endnotes|footnotes|"
    r"author (?:information|contact)|gao contacts?|staff acknowledg(?:e)?ments|related gao products|disclaimer|"
    r"附录|参考文献|注释)\b",
    re.IGNORECASE,
)
# Back matter follows the body: a heading counts only after this share of the material's text (a book's
# "Appendix" listed in its contents, or a bibliography note up front, opens nothing).
BACK_MATTER_AFTER = 0.1
# The lead a heading gives its sentences: a summary's (counted in the opening only), conclusions' (anywhere).
SUMMARY_LEAD = 1.0
CONCLUSIONS_LEAD = 0.75
# The opening, for a summary heading: this many times the summary asked for, in words from the start.
OPENING_REACH = 2.0

# The opening's coverage (below) at which the position prior starts, and at which it is at full weight. Chosen by
# leave-one-out over the public and project dev reports (bench/bench_report_prior.py, README "Summary quality").
OPENING_LOW = 0.62
OPENING_HIGH = 0.68
# The least share of the full prior a factual report's opening keeps, whatever its coverage: on whole CRS/GAO
# reports with another report appended as back matter (a stand-in for appendices), 0 -> 0.25 lifts ROUGE-1
# 56.1 -> 57.5 (14 public reports) and 60.2 -> 61.0 (13 whole dev2 reports), 49.0 -> 51.2 and 59.2 -> 59.4
# with two appended; every dev set unchanged. 1/3 costs the corpus PDFs 2.1 ROUGE-1 and 5.2 ROUGE-L through the
# engine (a federal rule whose opening is not its summary). bench/results/eval.md, 2026-12-06 (issue 17).
OPENING_FLOOR = 0.25
# The opening is measured at these multiples of the summary's length, and its coverage averaged: at one length
# alone it swings with a 5 % change in the length asked (CRS R46330: 0.76 at 375 words, 0.63 at 356, enough to
# turn the prior off and lose 13 ROUGE-1 to the lead through the engine).
COVERAGE_LENGTHS = (0.5, 0.75, 1.0, 1.5, 2.0)
# What a document is about: its this many most widespread content features.
TOP_FEATURES = 50
# The prior on where a sentence lies decays over this share of the document (a factual report's; other prose's);
# a factual report's over the summary's own share when that is larger (public dev CRS reports, 14 tuning items:
# R-1 / R-2 / R-L 61.72 / 28.63 / 26.48 -> 61.81 / 29.09 / 26.55; the project's reports and the corpus PDFs unchanged).
POSITION_SCALE = 0.1
MILD_SCALE = 0.15
# The prior of a sentence opening a section (x its lead, 0.5); a stated summary's or conclusion's sentences
# (lead 1: "Highlights", "What GAO Found", "Executive Summary", "Conclusions", "摘要") get STATED_WEIGHT.
HEADED_WEIGHT = 0.1
STATED_WEIGHT = 0.5
# A factual report's sentence with fewer content features than this share of its median sentence's says little
# ("However, the format varied widely."): its score scales down in proportion. A sentence stating a quantity
# ("about 35 percent", "$15 billion") states a finding: FIGURE_BONUS. ROUGE-1 rewards the longer sentences dense in
# the document's words that TextRank picks. bench/results/eval.md, "Reports: thin sentences" (issue 17).
THIN_SHARE = 0.75
# Other prose with the mild prior (the project's Chinese reports, their figures written in words): thinner than its
# median sentence. ZH dev reports 47.65 / 23.30 / 25.36 -> 48.55 / 24.37 / 26.15 (0.75: 47.92 / 23.70 / 25.09; 1.25:
# 47.40 / 22.53 / 25.87). The factual reports keep 0.75: 0.9 there costs their reshaped forms R-2 / R-L.
THIN_SHARE_MILD = 1.0
FIGURE_BONUS = 0.1
_QUANTITY = re.compile(
    r"\d[\d,.]*\s*(?:%|％|(?:percent|per cent|million|billion|trillion|thousand)\b)|[$€£¥]\s?\d|\d[\d,.]*\s*[万亿]"
)


# A report whose paragraph breaks were lost (run into one line by a converter or a corpus: GovReport-like text)
# reads its headings into the next sentence ("... in 2024. Conclusions The program ..."), so neither its
# conclusions nor its back matter are found. In a paragraph longer than RUN_TOGETHER characters (the dev reports'
# longest real paragraph: 4,000) the section headings reports use most are split off again after a sentence end,
# before a capital. A findings heading whose section no later heading bounds is left in: its lead would run to the
# end of the text (CRS R46646 run together: ROUGE-1 76.5 -> 70.8). bench/results/eval.md, "Reports run together".
RUN_TOGETHER = 5000
_RUN_HEADING = re.compile(
    r"(?<=[.!?\"”)])\s+((?i:conclusions?|concluding (?:observations|remarks)|summary|highlights|what gao found|"
    r"results in brief|executive summary|key findings|recommendations? for (?:executive action|congress)|"
    r"matters? for congressional consideration|agency comments(?: and our evaluation)?|appendix [ivxl]+|"
    r"appendices|references|bibliography|footnotes|endnotes|author (?:information|contact information)|"
    r"gao contacts?|staff acknowledg(?:e)?ments))(?::)?\s+(?=[A-Z\"“(])"  # the heading's case is free, not the next word's
)


def with_run_headings(paragraphs: list[str]) -> list[str]:
    """``paragraphs`` with the known section headings of a run-together one ("Conclusions", "Appendix I",
    "Agency Comments") split off as paragraphs of their own."""
    out: list[str] = []
    for paragraph in paragraphs:
        found = list(_RUN_HEADING.finditer(paragraph)) if len(paragraph) > RUN_TOGETHER else []
        last = 0
        for k, match in enumerate(found):
            heading = match.group(1)
            if k == len(found) - 1 and heading_lead(heading) > 0 and not _BACK_MATTER_HEADING.match(heading):
                continue  # nothing bounds its section
            out.extend([paragraph[last : match.start()], heading])
            last = match.end()
        out.append(paragraph[last:])
    return [p for p in out if p.strip()]


def report_paragraphs(paragraphs: list[str]) -> list[str]:
    """A report's paragraphs as the backend reads them: run-together headings split off, lists joined to their
    lead-in, back matter left out."""
    return without_back_matter(join_lists(with_run_headings(paragraphs)))


def join_lists(paragraphs: list[str]) -> list[str]:
    """Paragraphs with a list that goes on a sentence ("This report examines:" then "1. private practices...,"
    "2. mechanisms...") joined into that one sentence's paragraph: alone, neither the lead-in nor an item is one."""
    out: list[str] = []
    listing = False  # the last paragraph out is a lead-in with its items so far
    for paragraph in paragraphs:
        last = out[-1].rstrip() if out else ""
        if _LIST_ITEM.match(paragraph) and (last.endswith(":") or (listing and last.endswith((",", ";", "and", "or")))):
            out[-1] = f"{last} {' '.join(paragraph.split())}"
            listing = True
            continue
        out.append(paragraph)
        listing = False
    return out


def without_back_matter(paragraphs: list[str]) -> list[str]:
    """``paragraphs`` up to the first back-matter heading ("Appendix I: Objectives, Scope, and Methodology",
    "Footnotes", "Author Information") past the first tenth of their text; all of them when there is none."""
    total = sum(len(p) for p in paragraphs)
    seen = 0
    for i, paragraph in enumerate(paragraphs):
        if seen >= BACK_MATTER_AFTER * total and len(paragraph) < 120 and _BACK_MATTER_HEADING.match(paragraph.strip()):
            return paragraphs[:i]
        seen += len(paragraph)
    return paragraphs


def heading_lead(heading: str) -> float:
    """The lead a heading gives the sentences under it: SUMMARY_LEAD over a stated summary, CONCLUSIONS_LEAD over
    conclusions, else 0."""
    heading = heading.strip()
    if _CONCLUDING_HEADING.match(heading):
        return CONCLUSIONS_LEAD
    return SUMMARY_LEAD if _SUMMARY_HEADING.match(heading) else 0.0


def opening_coverage(
    feats: Sequence[frozenset[str]],
    scores: Sequence[float],
    sizes: Sequence[int],
    budget: int,
    lengths: Sequence[float] = COVERAGE_LENGTHS,
) -> float:
    """How much of what the document is about its opening states: the share of its most widespread content
    features found in the sentences that fill a length from the start, over the share found in the
    best-scoring sentences that fill it (0..1; 1: the opening covers the document as well as the best does),
    averaged over openings of ``lengths`` x ``budget``."""
    n = len(feats)
    if n == 0 or budget <= 0:
        return 0.0
    spread = Counter(f for fs in feats for f in fs)
    # Most widespread first; ties by the feature itself, so the same text always gives the same set.
    top = {f for f, _ in sorted(spread.items(), key=lambda x: (-x[1], x[0]))[:TOP_FEATURES]}
    ranked = sorted(range(n), key=lambda i: (-scores[i], i))
    shares = []
    for factor in lengths:
        length = max(1, round(budget * factor))
        opening, best = _fill(range(n), sizes, length), _fill(ranked, sizes, length)
        covered = len(top & set().union(*(feats[i] for i in best)))
        shares.append(min(1.0, len(top & set().union(*(feats[i] for i in opening))) / covered) if covered else 0.0)
    return sum(shares) / len(shares)


def _fill(order: Sequence[int] | range, sizes: Sequence[int], budget: int) -> list[int]:
    taken: list[int] = []
    used = 0
    for i in order:
        taken.append(i)
        used += max(1, sizes[i])
        if used >= budget:
            break
    return taken


def prior_weight(coverage: float, full: float) -> float:
    """The position prior's weight for an opening of this coverage: from ``OPENING_FLOOR`` x ``full`` to ``full``."""
    if OPENING_HIGH <= OPENING_LOW:
        return full if coverage >= OPENING_HIGH else full * OPENING_FLOOR
    share = (coverage - OPENING_LOW) / (OPENING_HIGH - OPENING_LOW)
    return full * min(1.0, max(OPENING_FLOOR, share))


def with_position_prior(
    feats: Sequence[frozenset[str]],
    scores: Sequence[float],
    positions: Sequence[float],
    leads: Sequence[float],
    sizes: Sequence[int],
    *,
    budget: int,
    where: tuple[float, float],
    weight: float,
    ask_opening: bool = True,
    sentences: Sequence[str] = (),
) -> list[float]:
    """``scores`` blended with a prior on each sentence's place in the whole document.

    ``positions``: each sentence's place in the material (0..1), which lies at ``where`` (start, share) in the
    document; ``leads``: heading_lead's under a findings heading, more than 0 for a section's first sentence. A call that
    reads the whole document asks the document how much its opening states (``opening_coverage``) when
    ``ask_opening`` (the strong prior of a factual report: a mild one needs no test); a part keeps ``weight``.
    """
    begin, span = where
    if not ask_opening:
        # A mild prior (prose that is not a factual report) keeps the form it was chosen in: a sentence's prior
        # is the larger of its heading's and its place's (project ZH dev reports 46.84 / 22.86 / 25.58 with the
        # factual form below, 47.65 / 23.34 / 25.88 with this one).
        mild = [
            (1 - weight) * s + weight * max(_stated(lead), math.exp(-(begin + span * pos) / MILD_SCALE))
            for s, pos, lead in zip(scores, positions, leads, strict=True)
        ]
        return by_substance(feats, mild, sentences, share=THIN_SHARE_MILD)
    if begin == 0.0 and span >= 1.0:
        weight = prior_weight(opening_coverage(feats, scores, sizes, budget), weight)
    # A findings heading's sentences (lead 1) and each section's first (lead 0.5) keep a prior of their own:
    # they state what their part found, whatever the opening does.
    # The opening the prior favours is at least as long as the summary asked of the whole document (a short
    # report asked for a long summary: its opening is more than its first tenth).
    whole = sum(max(1, z) for z in sizes) / max(span, 1e-9)
    scale = max(POSITION_SCALE, budget / whole)
    leads = _with_purpose(sentences, leads)
    # A summary heading past the opening opens a part of the body, not the document's summary.
    leads = [0.0 if lead >= SUMMARY_LEAD and (begin + span * pos) * whole > OPENING_REACH * budget else lead
             for pos, lead in zip(positions, leads, strict=True)]  # fmt: skip
    blended = [
        (1 - weight) * s
        + weight * math.exp(-(begin + span * pos) / scale)
        + (STATED_WEIGHT * _stated(lead) if lead >= CONCLUSIONS_LEAD else HEADED_WEIGHT * lead)
        for s, pos, lead in zip(scores, positions, leads, strict=True)
    ]
    return by_substance(feats, blended, sentences)


def by_substance(
    feats: Sequence[frozenset[str]], scores: Sequence[float], sentences: Sequence[str], *, share: float = THIN_SHARE
) -> list[float]:
    """``scores`` of a report's sentences scaled down for those thinner than ``share`` x its median sentence (in
    content features) and raised by ``FIGURE_BONUS`` for those stating a quantity (when given)."""
    if not feats:
        return list(scores)
    least = share * statistics.median(len(f) for f in feats)
    out = [s * min(1.0, len(f) / least) if least > 0 else s for s, f in zip(scores, feats, strict=True)]
    if len(sentences) == len(out):
        out = [s + FIGURE_BONUS * bool(_QUANTITY.search(x)) for s, x in zip(out, sentences, strict=True)]
    return out


def _with_purpose(sentences: Sequence[str], leads: Sequence[float]) -> list[float]:
    """``leads`` with the first sentence stating what the report does ("This report examines (1)...") as a
    stated summary's (counted in the opening only, like one)."""
    out = list(leads)
    first = next((i for i, sentence in enumerate(sentences) if _PURPOSE.match(sentence)), None)
    if first is not None:
        out[first] = max(out[first], SUMMARY_LEAD)
    return out


def _stated(lead: float) -> float:
    """A stated summary's or conclusions' lead as 1 (both state findings), a section's lead as it is."""
    return 1.0 if lead >= CONCLUSIONS_LEAD else lead
