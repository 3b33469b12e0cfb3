"""A batch's failed documents in the one line its Failed flow run carries."""

from __future__ import annotations

from flows.outcomes import Outcome, failures_line


def test_a_batch_without_failures_has_no_failure_line():
    assert failures_line([Outcome("a.txt", "/a.txt", "done"), Outcome("b.txt", "/b.txt", "skipped")]) is None


def test_failed_and_quota_documents_are_named_with_their_reason_on_one_line():
    outcomes = [
        Outcome("a.txt", "/a.txt", "done"),
        Outcome("torn.pdf", "/torn.pdf", "failed", error="CorruptDocumentError: torn.pdf is damaged\n(xref)"),
        Outcome("c.txt", "/c.txt", "quota", error=None),
    ]
    assert failures_line(outcomes) == (
        "2 of 3 documents failed: torn.pdf (CorruptDocumentError: torn.pdf is damaged (xref)), c.txt (quota)"
    )


def test_many_failures_name_five_and_count_the_rest():
    outcomes = [Outcome(f"d{i}.pdf", f"/d{i}.pdf", "failed", error="bad") for i in range(8)]
    line = failures_line(outcomes)
    assert line is not None and line.startswith("8 of 8 documents failed: d0.pdf (bad), ")
    assert line.endswith("d4.pdf (bad) and 3 more") and "d5.pdf" not in line
