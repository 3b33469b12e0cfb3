"""The one sentence splitter: abbreviations, initials, decimals, ellipses, quotes, CJK; always lossless."""

from __future__ import annotations

import pytest

from pipeline.sentences import sentence_spans, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Elizabeth heard her praise of Mr. Bingley before, expressed to her sister how very much she "
            "admired him. Jane was pleased.",
            [
                "Elizabeth heard her praise of Mr. Bingley before, expressed to her sister how very much she "
                "admired him.",
                "Jane was pleased.",
            ],
        ),
        (
            "Mrs. Bennet and Dr. Jones met at St. Paul's. They spoke.",
            ["Mrs. Bennet and Dr. Jones met at St. Paul's.", "They spoke."],
        ),
        ("Use a tool, e.g. a hammer. Or i.e. not. Done.", ["Use a tool, e.g. a hammer.", "Or i.e. not.", "Done."]),
        ("U.S. troops landed. The war ended.", ["U.S. troops landed.", "The war ended."]),
        (
            "The act established the U.S. Department of Agriculture. It grew.",
            ["The act established the U.S. Department of Agriculture.", "It grew."],
        ),
        ("They moved to the U.S. The agency said so.", ["They moved to the U.S.", "The agency said so."]),
        (
            "It enacted P.L. 117-58 and H.R. 1402 under 42 U.S.C. §3121 et seq. Then it stopped.",
            ["It enacted P.L. 117-58 and H.R. 1402 under 42 U.S.C. §3121 et seq.", "Then it stopped."],
        ),
        (
            "The bills were H.R. 6429, S. 4132 and S. 4666 (the National Coronavirus Commission Act). None passed.",
            ["The bills were H.R. 6429, S. 4132 and S. 4666 (the National Coronavirus Commission Act).", "None passed."],
        ),
        (
            "This report examines: 1. private practices that deter disclosures, 2. mechanisms agencies use, and 3. "
            "challenges agencies face. We chose four agencies. The total was 12. Next year it fell.",
            [
                "This report examines: 1. private practices that deter disclosures, 2. mechanisms agencies use, and "
                "3. challenges agencies face.",
                "We chose four agencies.",
                "The total was 12.",
                "Next year it fell.",
            ],
        ),
        ("He lives at No. 5 Baker Street. It rains.", ["He lives at No. 5 Baker Street.", "It rains."]),
        ("J. R. R. Tolkien wrote it. Fine.", ["J. R. R. Tolkien wrote it.", "Fine."]),
        ("Growth was 3.5 per cent. Prices rose.", ["Growth was 3.5 per cent.", "Prices rose."]),
        ("Wait... and then it came. Well... Nobody knew.", ["Wait... and then it came.", "Well...", "Nobody knew."]),
        ('"Oh!" she said. "Go now." He went.', ['"Oh!" she said.', '"Go now."', "He went."]),
        ("“Stop.” He stopped.", ["“Stop.”", "He stopped."]),
        ("他說：「我們明天去山上看花。」天氣很好！", ["他說：「我們明天去山上看花。」", "天氣很好！"]),
        ("彼は「そうですね。」と言った。次の日、雨が降った。", ["彼は「そうですね。」と言った。", "次の日、雨が降った。"]),
        ("Он пришёл домой. Была ночь.", ["Он пришёл домой.", "Была ночь."]),
        ("वह घर आया। रात थी।", ["वह घर आया।", "रात थी।"]),
        ("هل أتى؟ نعم، أتى.", ["هل أتى؟", "نعم، أتى."]),
    ],
)
def test_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    "text",
    ["Mr. A.  B. went.\n\nNew para... yes!  \n", "「はい。」と。\u3000次。", "", "no terminator at all", "a.b. c"],
)
def test_spans_tile_the_text(text: str) -> None:
    spans = sentence_spans(text)
    assert "".join(text[a:b] for a, b in spans) == text
    assert all(a < b for a, b in spans)
    assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_pride_and_prejudice_no_sentence_ends_at_a_title(corpus) -> None:
    text = (corpus / "books" / "en_pride_and_prejudice_pg1342.txt").read_text(encoding="utf-8")
    sentences = split_sentences(" ".join(text.split()))
    assert len(sentences) > 4000
    endings = {s.split()[-1] for s in sentences}
    assert not endings & {"Mr.", "Mrs.", "Dr.", "St.", "Miss."}
    assert not [s for s in sentences if s.startswith("Bingley before, expressed")]
