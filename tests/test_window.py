"""The run's window: capped by refusals, recognised in silent cuts, and inputs split into enough pieces at once."""

from __future__ import annotations

import pytest

from pipeline.config import load_catalog
from pipeline.tokens import counter_for
from pipeline.window import Window, balanced_cuts, pieces_needed, silent_cut, split_text_into


def test_cap_lowers_once_and_confirms() -> None:
    window = Window(configured=8192, tokens=8192, confirmed=False)
    assert window.cap(2048) is True
    assert (window.tokens, window.confirmed) == (2048, True)
    assert window.cap(4096) is False and window.tokens == 2048  # a larger number never raises it again
    assert window.cap(2048) is False


@pytest.mark.parametrize(
    ("finish", "prompt", "completion", "max_tokens", "window", "confirmed", "revealed"),
    [
        ("length", 1932, 116, 600, 8192, False, 2048),  # llama-cpp-python: stopped far below max_tokens
        ("length", 1932, 116, 600, 8192, True, None),  # a server that enforces its window stops only at max_tokens
        ("length", 1448, 600, 600, 2048, True, 2048),  # at max_tokens, but prompt + completion = the window
        ("length", 1000, 600, 600, 2048, False, None),  # an ordinary cut at max_tokens, room to spare
        ("stop", 1932, 116, 600, 2048, False, None),
        ("length", 0, 116, 600, 2048, False, None),  # no usage reported: nothing to learn
    ],
)
def test_silent_cut(finish, prompt, completion, max_tokens, window, confirmed, revealed) -> None:
    got = silent_cut(
        finish_reason=finish,
        prompt_tokens=prompt,
        completion_tokens=completion,
        max_tokens=max_tokens,
        window=window,
        confirmed=confirmed,
    )
    assert got == revealed


def test_pieces_needed_is_the_fewest_that_fit() -> None:
    # 6000 input tokens, 300 of instructions, 600 output shared by the pieces, 2048 window, 64 margin.
    n = pieces_needed(
        input_tokens=6000, fixed_tokens=300, max_tokens=600, window=2048, margin=64, min_output=32
    )
    assert n == 4  # 1500 + 300 + 150 + 64 = 2014 <= 2048; three pieces: 2000 + 300 + 200 + 64 > 2048
    assert (
        pieces_needed(
            input_tokens=100, fixed_tokens=2000, max_tokens=600, window=2048, margin=64, min_output=32
        )
        is None
    )


def test_balanced_cuts() -> None:
    assert balanced_cuts([1, 1, 1, 1, 1, 1], 3) == [2, 4]
    assert balanced_cuts([10, 1, 1, 1, 1, 10], 2) == [3]
    assert balanced_cuts([5, 5], 5) == [1]  # never more groups than items
    cuts = balanced_cuts([3] * 40, 7)
    assert len(cuts) == 6 and cuts == sorted(set(cuts)) and cuts[0] > 0 and cuts[-1] < 40


@pytest.mark.parametrize("n", [2, 3, 5])
def test_split_text_into_pieces_at_sentences(n: int) -> None:
    counter = counter_for(load_catalog().model("local"))
    text = " ".join(f"Sentence number {i} tells a short story about the sea." for i in range(60))
    pieces = split_text_into(text, counter, n)
    assert len(pieces) == n and "".join(pieces) == text
    sizes = [counter.count(p) for p in pieces]
    assert max(sizes) - min(sizes) <= 15
    assert all(p.rstrip().endswith(".") for p in pieces)


def test_split_text_without_sentences_cuts_at_spaces() -> None:
    counter = counter_for(load_catalog().model("local"))
    text = " ".join(["word"] * 100)
    pieces = split_text_into(text, counter, 4)
    assert len(pieces) == 4 and "".join(pieces) == text
