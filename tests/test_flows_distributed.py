"""The work-pool batch's decisions without a Prefect server: when a child's worker counts as lost, the one-line
reason of a failed document, the outcomes artifact, and `tome deploy` without a server."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.distributed import Child, lost, one_line_reason, outcomes_markdown


def _child(state: str) -> Child:
    child = Child(Path("/shared/a.txt"), "sha:fp")
    child.state = state
    return child


def test_a_child_is_lost_when_its_claim_lapses_after_being_seen() -> None:
    child = _child("RUNNING")
    assert not lost(child, claim_live=True, now=100.0, grace_s=13, start_grace_s=120)
    assert not lost(child, claim_live=False, now=110.0, grace_s=13, start_grace_s=120)
    assert lost(child, claim_live=False, now=114.0, grace_s=13, start_grace_s=120)


def test_a_child_taken_but_never_claimed_is_lost_after_the_start_grace() -> None:
    child = _child("PENDING")  # a worker took it and died while starting the flow-run process
    assert not lost(child, claim_live=False, now=0.0, grace_s=13, start_grace_s=60)
    assert not lost(child, claim_live=False, now=59.0, grace_s=13, start_grace_s=60)
    assert lost(child, claim_live=False, now=61.0, grace_s=13, start_grace_s=60)


def test_a_scheduled_or_finished_child_is_never_lost() -> None:
    for state in ("SCHEDULED", "COMPLETED", "FAILED"):
        assert not lost(_child(state), claim_live=False, now=1e9, grace_s=1, start_grace_s=1)


def test_one_line_reason_drops_prefects_preamble() -> None:
    message = "Flow run encountered an exception: CorruptDocumentError: broken.pdf is damaged or truncated.\n"
    assert one_line_reason(message) == "broken.pdf is damaged or truncated."
    assert one_line_reason(None) == ""


def test_outcomes_markdown_lists_every_document() -> None:
    ok, bad = _child("COMPLETED"), Child(Path("/shared/broken.pdf"), "k2", state="FAILED", message="damaged")
    ok.attempts = bad.attempts = 1
    text = outcomes_markdown([ok, bad])
    assert text.startswith("**1 of 2 documents summarised**, 1 failed.")
    assert "| broken.pdf | failed | 1 | damaged |" in text and "| a.txt | completed | 1 |" in text


def test_deploy_needs_a_prefect_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["deploy", "--pool", "tome"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: Set PREFECT_API_URL") and len(result.stderr.splitlines()) == 1
