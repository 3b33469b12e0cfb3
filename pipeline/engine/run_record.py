"""The run's row in the store: usage totals while it runs (throttled), its status when it ends."""

from __future__ import annotations

import logging
import time

from pipeline.engine.state import RunState
from pipeline.run_calls import record_calls
from pipeline.store import Store

log = logging.getLogger("tome.engine")

RECORD_EVERY_S = 2.0  # at most one usage update per run this often while calls finish


def record_usage(store: Store, state: RunState, *, force: bool = False) -> None:
    """Write the run's usage totals (at most every RECORD_EVERY_S unless ``force``)."""
    now = time.monotonic()
    if not force and now - state.last_recorded_s < RECORD_EVERY_S:
        return
    state.last_recorded_s = now
    u = state.usage
    store.update_run(
        state.run_id,
        calls=u.calls,
        cached_calls=u.cached_calls,
        prompt_tokens=u.prompt_tokens,
        completion_tokens=u.completion_tokens,
        cost=u.cost,
    )
    # Emptied in place: the levels started early log into the same list (engine.early shares it).
    pending = list(state.calls_log)
    state.calls_log.clear()
    record_calls(store, state.run_id, pending)


def close_run(store: Store, state: RunState, status: str, error: str | None) -> None:
    """Record how the run ended; a failure to record is logged, never raised over the run's own error."""
    state.status = status
    try:
        record_usage(store, state, force=True)
        store.finish_run(state.run_id, status=status, error=error)
    except Exception:  # noqa: BLE001 - recording the end must not hide the error that ended the run
        log.exception("could not record the end of run %s", state.run_id)
