"""The offline backend on English meetings: turns chosen to cover the meeting's recurring word pairs, each once."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.extractive import extract
from pipeline.extractive_coverage import OPENING_BONUS, covering_order, opening_length
from pipeline.lengths import measure
from pipeline.tokens import TiktokenCounter

COUNTER = TiktokenCounter()
DEV = Path(__file__).resolve().parents[1] / "bench" / "data"


def test_a_turn_whose_pairs_are_all_covered_is_not_taken_while_one_with_new_pairs_fits():
    # Turns 1 and 2 say the same recurring pairs (2 scores higher); turn 3 says others, less often. Turn 0 (the
    # opening) says nothing that recurs; turn 4 says everything but does not fit the budget.
    pairs = [
        frozenset({"welcom everyon"}),
        frozenset({"remot control", "button layout"}),
        frozenset({"remot control", "button layout"}),
        frozenset({"batteri life", "solar cell"}),
        frozenset({"remot control", "batteri life", "solar cell", "button layout"}),
    ]
    scores = [0.0, 0.9, 1.0, 0.2, 0.1]
    sizes = [100, 10, 10, 10, 40]
    order = covering_order(pairs, scores, sizes, budget=20)
    taken = order[:2]
    # By score alone the summary would be turns 2 and 1: the same points twice.
    assert sorted(range(5), key=lambda i: -scores[i])[:2] == [2, 1]
    assert sorted(taken) == [2, 3]
    assert not any(pairs[i] <= pairs[taken[0]] for i in taken[1:])


def test_a_pair_the_opening_raises_outweighs_one_said_more_often_later():
    # 20 turns: turn 0 (the opening's tenth: turns 0-1) raises "budget review", said again by turns 10 and 11;
    # "coffee machine" is said by five later turns (worth 4, against 2 x (1 + bonus)).
    pairs = [frozenset()] * 20
    pairs[0] = frozenset({"budget review"})
    pairs[10] = pairs[11] = frozenset({"budget review"})
    for i in range(12, 17):
        pairs[i] = frozenset({"coffe machin"})
    assert 2 * (1 + OPENING_BONUS) > 4
    order = covering_order(pairs, [0.0] * 20, [5] * 20, budget=5)
    assert order[0] in (0, 10, 11)


def test_the_cover_keeps_to_the_budget_and_is_deterministic():
    pairs = [frozenset({f"topic {i % 7}", f"point {i % 5}"}) for i in range(60)]
    scores = [(i * 37 % 11) / 10 for i in range(60)]
    sizes = [5 + i % 13 for i in range(60)]
    order = covering_order(pairs, scores, sizes, budget=50)
    assert sorted(order) == list(range(60))  # every sentence once: the rest follows the cover
    used = 0
    for i in order:
        if used + sizes[i] > 50:
            break
        used += sizes[i]
    assert used <= 50
    assert order == covering_order(pairs, scores, sizes, budget=50)


def _meeting() -> str:
    """A meeting that comes back to its remote's design turn after turn, and to its battery life a few times."""
    turns = [
        "Project Manager: Welcome everyone, thanks for coming in this morning, let us get started.",
        "Marketing: Users want a remote control design that feels solid, with a remote control design in yellow.",
        "Industrial Designer: The remote control design can be curved, and the remote control design can be rubber.",
        "User Interface: A remote control design with fewer buttons, the remote control design with a scroll wheel.",
        "Marketing: Our survey says the remote control design matters most, remote control design first of all.",
        "Industrial Designer: A kinetic cell keeps battery life long without charging, and battery life sells.",
        "User Interface: Battery life depends on the screen too, and a kinetic cell cannot power an LCD.",
        "Marketing: Long battery life was in the survey as well.",
        "Project Manager: Fine, we check the remote control design against the budget next time, remote control design.",
    ]
    return "\n\n".join(turns)


def test_a_meeting_summary_covers_another_point_instead_of_repeating_the_first():
    document = _meeting()
    out = extract(document, language="en", max_units=33, max_tokens=4000, counter=COUNTER, unit="words")
    # Ranked by score alone, two turns on the remote's design fill the summary (16 + 17 words); covering its
    # points once, the second turn is one on the battery.
    assert "battery life" in out.lower()
    design = [t for t in document.split("\n\n") if "remote control design" in t]
    assert sum(t.split(": ", 1)[1][:30] in out for t in design) <= 1


def test_the_project_dev_meetings_keep_their_lengths_with_the_cover():
    lines = (DEV / "eval_dev_en.jsonl").read_text(encoding="utf-8").splitlines()
    for document in (r["document"] for r in map(json.loads, lines) if r["genre"] == "meeting"):
        for words in (60, 200):
            out = extract(document, language="en", max_units=words, max_tokens=4000, counter=COUNTER, unit="words")
            assert words - 2 <= measure(out, "words") <= words


def test_a_long_hearings_opening_is_its_first_800_words_not_its_first_tenth():
    # 1,000 sentences of 20 words: a tenth is 100 sentences (2,000 words); the opening stops at 800 words.
    assert opening_length([20] * 1000) == 40
    assert opening_length([20] * 100) == 10  # a short meeting's tenth (200 words) is all of its opening
    assert opening_length([2000] + [20] * 99) == 1  # at least the sentence that passes the cap


def test_a_pair_raised_after_the_opening_words_of_a_long_hearing_gets_no_opening_weight():
    # Turn 0 raises "witness evid", turn 60 (inside the tenth, past 800 words) raises "school budget"; each is said
    # again by two later turns. Only the chair's opening's pair outweighs "staff wellbeing", said by five turns.
    n = 1000
    pairs = [frozenset()] * n
    pairs[0] = frozenset({"witness evid"})
    pairs[60] = frozenset({"school budget"})
    for i in (500, 501):
        pairs[i] = frozenset({"witness evid"})
    for i in (600, 601):
        pairs[i] = frozenset({"school budget"})
    for i in (700, 701, 702, 703, 704):
        pairs[i] = frozenset({"staff wellbe"})
    order = covering_order(pairs, [0.0] * n, [20] * n, budget=20)
    assert order[0] == 0
    assert order.index(700) < order.index(60)
    assert order.index(700) < order.index(600)
