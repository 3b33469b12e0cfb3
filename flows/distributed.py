"""Documents as flow runs on a work pool: one child run of the ``summarise-document`` deployment per document.

The parent flow (``summarise-distributed``) submits every document with ``run_deployment`` and watches them;
any number of ``prefect worker start --pool NAME`` processes, on any machines, pick the documents up. All of
them share tome's database (``TOME_DATABASE_URL``, PostgreSQL across machines): one cache, one rate budget
(``TOME_SHARED_BUDGET=1``), one spending cap for the batch, and the document/call claims.

A worker that dies leaves its child runs RUNNING in Prefect; its document claims then stop being renewed. The
parent marks such a run CRASHED once its claim has lapsed and submits the document again (``max_attempts``);
the new run reads every answer the dead one had stored, so only calls in flight at the crash are repeated.
The parent ends FAILED when any document failed; its artifact lists every document's outcome.

Parameters are paths every worker can read (a shared folder, absolute paths) and options: never a secret
(API keys come from each worker's environment) and never a machine's temporary copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import Flow, flow, get_client
from prefect.artifacts import acreate_markdown_artifact
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import State
from prefect.deployments import run_deployment
from prefect.runtime import flow_run as current_run
from prefect.states import Completed, Crashed, Failed
from sqlalchemy import text

from flows.tables import markdown_table
from pipeline.claims import lease_from_env
from pipeline.db import make_engine
from pipeline.inputs import expand_inputs, file_sha256
from pipeline.options import SummariseOptions
from pipeline.output_files import options_fingerprint

log = logging.getLogger("tome.flows")

DOCUMENT_FLOW = "summarise-document"
DOCUMENT_DEPLOYMENT = "tome-document"
BATCH_FLOW = "summarise-distributed"
BATCH_DEPLOYMENT = "tome-batch"
POLL_S = 2.0


@dataclass
class Child:
    """One document of the batch and its current flow run."""

    path: Path
    claim_key: str
    run_id: Any = None
    run_name: str = ""
    attempts: int = 0
    state: str = "SCHEDULED"
    message: str = ""
    started_at: float | None = None  # when this attempt was first seen PENDING/RUNNING (a worker took it)
    alive_at: float | None = None  # when its document claim was last seen renewed

    @property
    def done(self) -> bool:
        return self.state in ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")


def one_line_reason(message: str | None) -> str:
    """A child's state message without Prefect's preamble: the document's own one-line error."""
    text_ = " ".join((message or "").split())
    for prefix in ("Flow run encountered an exception: ", "Flow run failed: "):
        if text_.startswith(prefix):
            text_ = text_[len(prefix) :]
    return re.sub(r"^[A-Za-z_][A-Za-z0-9_.]*(Error|Exception): ", "", text_)


def _live_claims(engine: Any, keys: list[str]) -> set[str]:
    """The claim keys whose lease is still being renewed by some worker."""
    if not keys:
        return set()
    now = time.time()
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, lease_until FROM document_claims")).all()
    wanted = set(keys)
    return {k for k, until in rows if k in wanted and float(until) > now}


async def _submit(child: Child, deployment: str, parameters: dict[str, Any]) -> None:
    child.attempts += 1
    run = await run_deployment(  # type: ignore[misc]  # sync_compatible: a coroutine inside a flow
        name=deployment,
        parameters={**parameters, "path": str(child.path)},
        timeout=0,
        as_subflow=True,
        flow_run_name=child.path.name if child.attempts == 1 else f"{child.path.name} (attempt {child.attempts})",
    )
    child.run_id, child.run_name = run.id, run.name
    child.state, child.message, child.started_at, child.alive_at = "SCHEDULED", "", None, None


def lost(child: Child, *, claim_live: bool, now: float, grace_s: float, start_grace_s: float) -> bool:
    """Whether a worker took ``child`` and then vanished: its claim lapsed for ``grace_s``, or it never claimed
    the document within ``start_grace_s`` of being taken (a worker killed while starting the run)."""
    if child.state not in ("PENDING", "RUNNING"):
        return False
    if child.started_at is None:
        child.started_at = now
    if claim_live:
        child.alive_at = now
    if child.alive_at is not None:
        return now - child.alive_at > grace_s
    return now - child.started_at > start_grace_s


def outcomes_markdown(children: list[Child]) -> str:
    """The parent's artifact: every document, its final state, attempts, reason and child flow run."""
    rows = [[c.path.name, c.state.lower(), str(c.attempts), c.message or "", c.run_name] for c in children]
    failed = sum(c.state != "COMPLETED" for c in children)
    head = f"**{len(children) - failed} of {len(children)} documents summarised**, {failed} failed.\n\n"
    return head + markdown_table(("document", "state", "attempts", "reason", "flow run"), rows, right={2})


@flow(name=BATCH_FLOW, retries=0, persist_result=False, log_prints=False)
async def summarise_distributed(
    inputs: list[str],
    output_dir: str | None = None,
    options: SummariseOptions | None = None,
    pattern: str = "*",
    deployment: str = f"{DOCUMENT_FLOW}/{DOCUMENT_DEPLOYMENT}",
    max_attempts: int = 3,
    start_grace_s: float = 120.0,
) -> State:
    """Summarise files/folders as one child flow run per document on the deployment's work pool.

    Ends FAILED (naming the failed documents) when any document failed; the artifact lists every outcome.
    A document whose worker is lost is submitted again (up to ``max_attempts`` runs); ``start_grace_s`` is
    how long a worker may take from picking a run up to claiming its document.
    """
    options = options or SummariseOptions()
    out = Path(output_dir).resolve() if output_dir else None
    paths = [p.resolve() for p in expand_inputs(inputs, pattern, exclude=out)]
    fingerprint = options_fingerprint(options)
    children = [Child(p, f"{file_sha256(p)}:{fingerprint}") for p in paths]
    scope = str(current_run.id or "") or None  # --max-cost caps the whole batch, across all its workers
    parameters = {
        "output_dir": str(out) if out else None,
        "options": options.model_dump(mode="json", exclude_none=True),
        "progress": False,
        "spend_scope": scope,
        "claims": True,
    }
    for child in children:
        await _submit(child, deployment, parameters)
    lease = lease_from_env(os.environ)
    grace = 2 * lease + 5  # a claim lapsed for this long: its worker is gone
    engine = make_engine()
    try:
        async with get_client() as client:
            while not all(c.done for c in children):
                await asyncio.sleep(POLL_S)
                pending = {c.run_id: c for c in children if not c.done}
                runs = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(pending)))
                )
                live = await asyncio.to_thread(_live_claims, engine, [c.claim_key for c in pending.values()])
                now = time.monotonic()
                for run in runs:
                    child = pending[run.id]
                    state = run.state
                    child.state = state.type.value if state else "SCHEDULED"
                    if child.state in ("FAILED", "CRASHED", "CANCELLED"):
                        child.message = one_line_reason(state.message if state else "")
                    claim_live = child.claim_key in live
                    if lost(child, claim_live=claim_live, now=now, grace_s=grace, start_grace_s=start_grace_s):
                        await client.set_flow_run_state(
                            run.id, Crashed(message="Its worker stopped renewing the document's claim."), force=True
                        )
                        if child.attempts < max_attempts:
                            log.warning("%s: worker lost; submitting it again", child.path.name)
                            await _submit(child, deployment, parameters)
                        else:
                            child.state, child.message = "CRASHED", "its worker was lost on every attempt"
    finally:
        engine.dispose()
    try:
        await acreate_markdown_artifact(
            key="tome-documents", markdown=outcomes_markdown(children), description="Every document's outcome"
        )
    except Exception as exc:  # noqa: BLE001 - the artifact is a view; the states are the record
        log.warning("Could not publish the outcomes artifact: %s", exc)
    failed = [c for c in children if c.state != "COMPLETED"]
    report = [{"document": str(c.path), "state": c.state, "reason": c.message, "attempts": c.attempts} for c in children]
    if failed:
        names = ", ".join(f"{c.path.name} ({c.message})" for c in failed[:5]) + (" ..." if len(failed) > 5 else "")
        return Failed(message=f"{len(failed)} of {len(children)} documents failed: {names}", data=report)
    return Completed(message=f"{len(children)} documents summarised", data=report)


async def deploy(pool: str, *, source: Path | None = None) -> list[str]:
    """Create the process work pool ``pool`` if missing and deploy the per-document and batch flows to it.

    ``source`` is the folder holding ``flows/`` (default: this installation), which every worker must be
    able to read at the same path (or have tome installed there too).
    """
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    root = source or Path(__file__).resolve().parents[1]
    async with get_client() as client:
        with contextlib.suppress(ObjectAlreadyExists):  # deploying again is fine
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    names = []
    for entrypoint, flow_name, name in (
        ("flows/summarise.py:summarise_document", DOCUMENT_FLOW, DOCUMENT_DEPLOYMENT),
        ("flows/distributed.py:summarise_distributed", BATCH_FLOW, BATCH_DEPLOYMENT),
    ):
        remote = await Flow.from_source(source=str(root), entrypoint=entrypoint)  # type: ignore[misc]  # sync_compatible
        await remote.deploy(name=name, work_pool_name=pool, build=False, push=False, print_next_steps=False)
        names.append(f"{flow_name}/{name}")
    return names
