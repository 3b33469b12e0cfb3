"""The offline backend on a public meeting's agenda item: a segment that opens by reading its own item leads its
summary with that reading; working meetings, hearings, reports and Chinese meetings are summarised as before."""

from __future__ import annotations

import pytest

from pipeline import extractive_meetings
from pipeline.extractive import extract
from pipeline.extractive_agenda import item_reading, reading_start
from pipeline.lengths import measure
from pipeline.tokens import TiktokenCounter

COUNTER = TiktokenCounter()

_READING = (
    "Item 14 is a report from Public Works, recommendation to award a contract to Harbor Paving for the Elm "
    "Street resurfacing project, in an amount not to exceed 2.4 million dollars, District three."
)


def _council_item() -> str:
    """One agenda item as a council's recording gives it (no speakers' labels): the last item's vote, the clerk
    reading this one, then the debate, which says the project's and the residents' words again and again."""
    speech = [
        "Motion carries.",
        "Thank you, Madam Clerk, next item please.",
        _READING,
        "Is there a motion?",
        "Moved by Councilmember Price and seconded by Councilmember Austin.",
    ]
    for k in range(6):
        speech += [
            f"Thank you, Mr. Mayor, the street trees on Elm Street block {k} will be kept during the resurfacing work.",
            "Residents on Elm Street asked about parking during the resurfacing work, and night work is not planned.",
            "Councilmember Austin, thank you, the street trees and the parking plan were in the staff report.",
        ]
    speech += ["Seeing no public comment, members, please cast your vote.", "Motion carries."]
    return " ".join(speech)


def _design_meeting() -> str:
    """A working meeting (AMI-like), with an agenda item and a recommendation of its own."""
    turns = [
        "Project Manager: Okay, good morning everybody, the first item on the agenda is the functional design.",
        "Marketing: Yeah, so um my recommendation is to cut the remote control buttons, users lose the remote.",
        "Industrial Designer: The battery life can be long with a kinetic cell, the battery life matters to users.",
        "User Interface: Fewer remote control buttons and a scroll wheel, I mean the remote control buttons confuse.",
        "Project Manager: Right, so we keep the battery life and fewer remote control buttons, next meeting the design.",
    ] * 4
    return "\n\n".join(turns)


def _hearing() -> str:
    """A committee's evidence session (QMSum's Welsh committees): the chair opens with the items of the day."""
    turns = [
        "Mary Evans MS: Item 1: introductions, apologies, substitutions and declarations of interest.",
        "Good morning, everyone, and welcome to the Economy and Transport Committee.",
        "Item 2 this morning is our evidence session for the inquiry into rural bus services.",
        "I am very pleased to welcome Alan Hughes, director of the regional transport authority.",
    ]
    for k in range(6):
        turns += [
            f"John Ellis MS: Question {k}: has the concession fare scheme kept the timetable reliable, Chair?",
            "Alan Hughes: Thank you, Chair. The concession fare scheme costs more each year, and timetable "
            "reliability falls when the concession fare scheme is not funded for rural bus services.",
        ]
    return "\n\n".join(turns)


def _report() -> str:
    """A written report whose first sentence names an ordinance and what it asks."""
    paragraphs = [
        "An ordinance relating to short-term rentals was adopted by the city in 2019 after two years of study.",
        "This report reviews how the ordinance changed the number of listings, the complaints received by the city "
        "and the revenue from the registration fee.",
    ] + [
        f"In district {k}, listings fell by {10 + k} percent in the first year, while complaints about noise fell "
        f"by half and the registration fee raised {k + 2}00 thousand dollars for housing programs."
        for k in range(8)
    ]
    return "\n\n".join(paragraphs)


def _chinese_meeting() -> str:
    turns = [
        "主持人：今天的第一项议程是审议关于老旧小区加装电梯的决议草案，请大家发表意见。",
        "王经理：我觉得加装电梯的费用分摊方案还要再讨论，一楼住户的意见比较大。",
        "李工：电梯井道的位置已经确定，施工期大概三个月，噪音问题需要提前和住户沟通。",
        "主持人：那我们就先把费用分摊方案定下来，下次会议再讨论施工安排。",
    ] * 4
    return "\n\n".join(turns)


def _without_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extractive_meetings, "item_reading", lambda *a, **k: ([], False))


def _sentences(text: str) -> tuple[list[str], list[int]]:
    captured: dict[str, list[str]] = {}
    real = extractive_meetings.covering

    def spy(sentences, scores, sizes, **kwargs):  # type: ignore[no-untyped-def]
        captured["sentences"] = list(sentences)
        return real(sentences, scores, sizes, **kwargs)

    extractive_meetings.covering = spy  # type: ignore[assignment]
    try:
        extract(text, language="en", max_units=60, max_tokens=4000, counter=COUNTER, unit="words")
    finally:
        extractive_meetings.covering = real  # type: ignore[assignment]
    sentences = captured.get("sentences", [])
    return sentences, [measure(s, "words") for s in sentences]


def test_a_council_item_that_opens_with_its_reading_leads_its_summary_with_it():
    out = extract(_council_item(), language="en", max_units=60, max_tokens=4000, counter=COUNTER, unit="words")
    # Without it, the cover takes the debate's street trees and parking, which the segment says most often.
    before, reading, _ = out.partition(_READING)
    assert reading and "Elm Street" not in before  # whole, and before any of the debate
    assert measure(out, "words") <= 60


def test_a_lower_case_rendering_is_read_the_same_way():
    out = extract(_council_item().lower(), language="en", max_units=20, max_tokens=4000, counter=COUNTER, unit="words")
    assert out.lower().split() == _READING.lower().split()[:20]  # the backend capitalises a sentence


def test_a_reading_longer_than_the_summary_is_all_it_holds():
    out = extract(_council_item(), language="en", max_units=20, max_tokens=4000, counter=COUNTER, unit="words")
    assert out.split() == _READING.split()[:20]


def test_the_reading_starts_after_the_last_items_vote_and_ends_where_talk_resumes():
    sentences, words = _sentences(_council_item())
    start = reading_start(sentences, words)
    assert start is not None and sentences[start] == _READING
    assert item_reading(sentences, words, words, budget=60) == ([start], False)
    assert item_reading(sentences, words, words, budget=20) == ([start], True)


def test_a_member_moving_a_bill_is_not_its_reading():
    speech = _council_item().replace(_READING, "I move that Council Bill 1210 be placed upon final consideration.")
    sentences, words = _sentences(speech)
    assert sentences and reading_start(sentences, words) is None


@pytest.mark.parametrize("document", [_design_meeting(), _hearing(), _report(), _chinese_meeting()])
def test_other_texts_are_summarised_as_before(document: str, monkeypatch: pytest.MonkeyPatch):
    language = "zh" if "主持人" in document else "en"
    unit = "chars" if language == "zh" else "words"
    now = extract(document, language=language, max_units=60, max_tokens=4000, counter=COUNTER, unit=unit)
    _without_the_rule(monkeypatch)
    before = extract(document, language=language, max_units=60, max_tokens=4000, counter=COUNTER, unit=unit)
    assert now == before


def test_a_working_meeting_and_a_hearing_do_not_read_an_item():
    for document in (_design_meeting(), _hearing()):
        sentences, words = _sentences(document)
        assert sentences  # they are summarised as meetings
        assert reading_start(sentences, words) is None


def test_a_hearing_still_opens_with_the_chairs_naming_of_it():
    out = extract(_hearing(), language="en", max_units=40, max_tokens=4000, counter=COUNTER, unit="words")
    assert "evidence session for the inquiry into rural bus services" in out
