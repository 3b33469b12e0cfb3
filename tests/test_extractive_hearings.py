"""The offline backend on formal hearings: the chair's naming of the meeting leads the summary; other meetings
are left to the word-pair cover."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.extractive import extract
from pipeline.extractive_coverage import covering_order
from pipeline.extractive_hearings import chair_opening, is_hearing
from pipeline.extractive_meetings import reads_as_talk
from pipeline.lengths import measure
from pipeline.tokens import TiktokenCounter

COUNTER = TiktokenCounter()
DEV = Path(__file__).resolve().parents[1] / "bench" / "data"

_NAMING = "Item 2 this morning is our evidence session for the inquiry into rural bus services."


def _hearing() -> str:
    """A committee's evidence session: the chair opens, then members ask and witnesses answer on two topics of the
    inquiry (rural bus services)."""
    turns = [
        "Mary Evans MS: Good morning, everyone, and welcome to the Economy and Transport Committee.",
        "We have received apologies for absence from Tom Price and there is no substitute today.",
        "Can I ask whether Members have any declarations of interest, please?",
        _NAMING,
        "I am very pleased to welcome Alan Hughes, director of the regional transport authority.",
        "If you are happy, we will go straight into questions, and the first are from John Ellis.",
    ]
    for k in range(6):
        turns += [
            f"John Ellis MS: Question {k}: has the concession fare scheme kept the timetable reliable for passengers?",
            "Alan Hughes: The concession fare scheme costs more each year, and timetable reliability falls when the "
            "concession fare scheme is not funded for the operators of rural bus services.",
            f"Sarah Lloyd MS: On driver shortages {k}: how many drivers left, and does driver recruitment cover it?",
            "Alan Hughes: Driver shortages cancel routes every week; driver recruitment campaigns help, but driver "
            "shortages will stay while wages trail.",
        ]
    return "\n\n".join(turns)


def _design_meeting() -> str:
    """A working meeting (AMI-like): a project manager opens with the agenda, the team talks it through."""
    turns = [
        "Project Manager: Okay, good morning everybody, welcome back, this is our second meeting on the agenda today.",
        "We will look at the functional design, then the remote control buttons, then the battery life.",
        "Marketing: Yeah, so um our survey says the remote control buttons are too many, users lose the remote control.",
        "Industrial Designer: The battery life can be long with a kinetic cell, the battery life matters to users.",
        "User Interface: Fewer remote control buttons and a scroll wheel, I mean the remote control buttons confuse.",
        "Project Manager: Right, so we keep the battery life and fewer remote control buttons, next meeting the design.",
    ] * 3
    return "\n\n".join(turns)


def test_a_hearing_is_told_from_its_opening_and_a_working_meeting_is_not():
    for document, hearing in ((_hearing(), True), (_design_meeting(), False)):
        sentences = [s for s in document.split("\n\n")]
        assert is_hearing(sentences, [measure(s, "words") for s in sentences]) is hearing


def test_the_chair_naming_the_meeting_leads_a_hearings_summary():
    document = _hearing()
    out = extract(document, language="en", max_units=60, max_tokens=4000, counter=COUNTER, unit="words")
    # Without it, the cover fills the summary with the witnesses' answers on fares and drivers (which say the
    # meeting's recurring pairs most) and leaves out what the meeting was: the item and the inquiry.
    assert out.startswith(_NAMING)
    assert "driver" in out.lower() or "concession" in out.lower()  # the rest is still what was discussed
    assert "apologies" not in out and "declarations" not in out  # procedure is not what the meeting was
    assert measure(out, "words") <= 60


def test_a_working_meetings_summary_does_not_take_its_opening_first():
    sentences = _design_meeting().split("\n\n")
    pairs = [frozenset({"remot control"})] * len(sentences)
    words = [measure(s, "words") for s in sentences]
    assert chair_opening(sentences, pairs, words, words, budget=60) == []


def test_what_leads_is_taken_first_and_its_pairs_count_as_covered():
    # Turns 0 and 1 say "bus servic", turns 2 and 3 "driver shortag"; turn 1 scores highest, turn 2 next.
    pairs = [frozenset({"bus servic"}), frozenset({"bus servic"}), frozenset({"driver shortag"})] + [
        frozenset({"driver shortag"})
    ]
    scores = [0.0, 0.3, 0.2, 0.0]
    assert covering_order(pairs, scores, [5] * 4, budget=10)[:2] == [1, 2]
    order = covering_order(pairs, scores, [5] * 4, budget=10, first=[0])
    assert order[:2] == [0, 2]  # "bus servic" is covered by the lead: turn 1 adds nothing new


def test_the_project_dev_meetings_that_are_committee_meetings_are_the_ones_told_as_hearings():
    lines = (DEV / "eval_dev_en.jsonl").read_text(encoding="utf-8").splitlines()
    told = {}
    for row in map(json.loads, lines):
        if row["genre"] == "meeting":
            sentences = row["document"].split("\n")
            told[row["id"]] = is_hearing(sentences, [measure(s, "words") for s in sentences])
    # A city council's committee is; the product team, the research group, the incident call, the ward are not.
    assert told == {name: "council" in name for name in told}


def _council_segment() -> str:
    """A city council's agenda item as a recording gives it: one run of edited speech, no speakers' labels."""
    speech = [
        "Agenda item four, Resolution 31702 relating to the renewal of the downtown parking meter contract.",
        "Thank you, Madam President.",
        "I move that the resolution be adopted.",
        "Is there a second?",
        "It has been moved and seconded.",
        "Councilmember Ortiz, you have the floor on the parking meter contract.",
        "The parking meter contract has run since 2014 and the vendor has asked for a higher fee per meter.",
        "Staff looked at three other vendors and the parking meter contract renewal is the cheapest choice.",
        "Councilmember Baker asked whether the meters will take phone payments, and they will next spring.",
        "Residents wrote to us about parking meter rates near the hospital, which this contract does not change.",
        "Thank you, Councilmember Ortiz.",
        "Seeing no further comments, the clerk will call the roll on the parking meter contract resolution.",
    ]
    return " ".join(speech)


def test_a_public_meetings_speech_without_labels_reads_as_talk_and_prose_does_not():
    assert reads_as_talk(_council_segment())
    prose = " ".join(
        f"Chapter {i}: the travellers crossed the river at dawn and reached the town of Ely by night." for i in range(40)
    )
    dialogue = '"Thank you," said Alice, and she walked on past the tree.'
    assert not reads_as_talk(prose + " " + dialogue)  # a story's "thank you" now and then is not a meeting
