"""Starting the next level early: a merge whose summaries all exist goes while level 0 still runs.

Under a binding TPM limit level 0 takes many windows, and a merge that waits for the whole level puts all the
merges in the last window beside the last chunks (one window more for the final call). Here level 1's groups
are decided from the summaries in order (``merge_plan.prefix_groups``: a group closes when the next summary would
overflow its input budget), so a group is known as soon as its summaries and the one after it exist, and the
same summaries always make the same groups. Level 1 is shaped (calibration, length headroom) by what level 0's
first answer taught, fixed before any merge starts, so its prompts do not depend on which answers came first;
its carried context follows the same order as a level run at once (``context.context_source``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING, cast

from pipeline.context import bounded_context, context_source
from pipeline.engine import calibration, length
from pipeline.engine.state import CallOutcome, CallSpec, LevelRun, RunState, Stopped
from pipeline.merge_plan import even_share, prefix_groups
from pipeline.outputs import Node

if TYPE_CHECKING:
    from pipeline.engine.scheduler import LevelScheduler

log = logging.getLogger("tome.engine")


class EarlyMerges:
    """Level 1's merges of one run, started as level 0's summaries arrive; level 1 then runs only the rest."""

    level = 1

    def __init__(self, scheduler: LevelScheduler, state: RunState, n: int, output: int, first: Node) -> None:
        self.scheduler = scheduler
        self.state = state
        self.n = n  # level 0's calls
        self.output = output  # each merge's output budget (level 1's planned one)
        # Level 1 as it will run: shaped by what was learned so far (level 0's first answer), as advance_level
        # would shape it; the run state takes these values when level 0 ends (``shape``).
        view = replace(state, level_calibration=[], level_headroom=[])
        calibration.advance_level(view, 0)
        length.advance_level(view, 0)
        self.shaping = (view.calibration, view.headroom, view.overshoot)
        self.slots: list[Node | None] = [None] * n
        # Merge spans read level 0's nodes from here; a merge starts only once its own slots are filled.
        self.view = replace(view, levels=[cast(list[Node], self.slots)])
        self.cap = state.input_budget(output)
        # Groups are evened out by level 0's first summary (known before any merge can start): same answers,
        # same share, same groups.
        self.share = even_share(self.size(first.index, first), n, self.cap)
        self.sizes: list[int] = []  # level 0's summaries in order, as far as they are contiguous
        self.groups: list[list[int]] = []
        self.inputs: dict[int, str] = {}
        self.summaries: dict[int, str] = {}
        self.finished: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.tasks: list[asyncio.Task[None]] = []
        self.done: dict[int, tuple[CallSpec, Node, CallOutcome]] = {}
        self.run = LevelRun.open(scheduler.max_in_flight)

    @classmethod
    def wanted(cls, state: RunState, calls: list[CallSpec], first: object) -> bool:
        """Level 0 of a run whose TPM limit binds (count_exactly), planned with merges below the final call, whose
        first call has answered (alone)."""
        plan = state.plan
        return (
            isinstance(first, Node) and state.count_exactly and len(calls) > 2
            and len(plan.levels) > 2 and len(plan.levels[1].calls) > 1
        )  # fmt: skip

    def size(self, j: int, node: Node) -> int:
        """Tokens summary ``j`` takes in a merge prompt (by level 1's shaping)."""
        from pipeline.engine.scheduler import merge_input, merged_size

        return merged_size(self.view, self.scheduler.counter, merge_input(self.view, j, node))

    @staticmethod
    def level_ended(state: RunState, level: int) -> None:
        """After ``level`` advanced: the next level keeps the shaping its early merges were built with."""
        early = state.early
        if early is not None and early.level == level + 1:
            state.calibration, state.headroom, state.overshoot = early.shaping
        elif early is not None:
            state.early = None

    def offer(self, index: int, node: Node) -> None:
        """Level 0's summary ``index`` exists: start every merge whose group it completes."""
        self.slots[index] = node
        while len(self.sizes) < self.n and (ready := self.slots[len(self.sizes)]) is not None:
            self.sizes.append(self.size(len(self.sizes), ready))
        for group in prefix_groups(self.sizes, self.cap, self.n, share=self.share)[len(self.groups) :]:
            if len(self.sizes) == self.n:
                return  # every summary exists: level 1 runs the rest as a level (its groups are the same)
            self._start(len(self.groups), group)
            self.groups.append(group)

    def _start(self, i: int, group: list[int]) -> None:
        from pipeline.engine.scheduler import merge_call

        # total=0: not known yet, and not in a merge prompt (level 1 numbers its calls when it runs).
        call = merge_call(self.view, self.level, self.slots, i, group, self.output, total=0)  # type: ignore[arg-type]
        self.inputs[i] = call.text
        self.tasks.append(asyncio.ensure_future(self._one(call)))

    async def _one(self, call: CallSpec) -> None:
        state, view = self.state, self.view
        strategy = self.scheduler.settings.context_strategy
        try:
            source = context_source(call.index, strategy=strategy, lag=state.lag)
            if source.summary_of is not None:
                await self.finished[source.summary_of].wait()
                if source.summary_of not in self.summaries:
                    raise Stopped()
            self.run.check()
            context = ""
            if source.carries:
                room = self.scheduler.sizer.context_room(view, call)
                context = bounded_context(
                    source, summaries=self.summaries, inputs=self.inputs, max_tokens=room,
                    counter=self.scheduler.counter,
                )  # fmt: skip
            outcome = await self.scheduler.resolver.resolve(view, self.run, replace(call, context=context))
            node = self.scheduler.node(view, self.level, call, outcome, self.scheduler.context_label(source, context))
            self.done[call.index] = (replace(call, context=context), node, outcome)
            self.summaries[call.index] = node.text
        except Exception as exc:  # noqa: BLE001 - level 1 runs this merge again and reports its failure
            log.info("early merge %d of level %d not done (%s): level %d runs it", call.index, self.level, exc,
                     self.level)  # fmt: skip
        finally:
            self.finished[call.index].set()
            self.run.through(call.index)
            # What the merge's answer taught counts for later levels however early it came (largest so far).
            for name in ("observed_calibration", "observed_overshoot"):
                learned = [v for v in (getattr(state, name), getattr(view, name)) if v is not None]
                setattr(state, name, max(learned) if learned else None)

    async def settle(self) -> None:
        """Wait for the merges already started (level 1 runs the rest, and any that failed)."""
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Level 0 failed: start nothing more, and wait for what is in flight."""
        self.run.fail(Stopped())
        await self.settle()
