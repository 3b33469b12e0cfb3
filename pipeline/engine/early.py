"""Starting levels early: every merge goes as soon as its summaries exist, while the levels below still run.

Under a binding TPM limit each level takes windows, and a level that waits for the whole level below puts its
merges in the last window beside that level's last calls (and the final call one window later). Here each level
above 0 is decided from the level below's summaries in order (``merge_plan.prefix_groups``: a group closes when
the next summary would overflow its share), so a group is known as soon as its summaries and the one after it
exist, and the same summaries always make the same groups. Once the level below is complete, the level's other
calls (its last group, or the final call) are the ones a level run at once makes (``LevelScheduler.calls``) and
start then. Every level started early is shaped (calibration, length headroom) by what level 0's first answer
taught, fixed before any merge starts, so its prompts do not depend on which answers came first; its carried
context follows the same order as a level run at once (``context.context_source``).

All of it runs and settles inside level 0's run (the next level may run in another event loop); each later level
then takes the merges already made (same prompt) and makes only what is missing (a merge that failed here).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, cast

from pipeline.context import bounded_context, context_source
from pipeline.engine import calibration, length
from pipeline.engine.state import CallOutcome, CallSpec, LevelRun, RunState, Stopped
from pipeline.merge_plan import even_share, prefix_groups
from pipeline.outputs import Node

if TYPE_CHECKING:
    from pipeline.engine.scheduler import LevelScheduler

log = logging.getLogger("tome.engine")


@dataclass
class EarlyLevel:
    """One level started early: the groups decided so far, and what its calls made."""

    level: int
    run: LevelRun
    output: int | None  # merges' output while the level below runs (None: a level planned final waits for it)
    cap: int  # input budget of such a merge
    expected: int  # summaries the plan expects below (the even share)
    share: int | None = None  # fixed by the level below's first summary
    sizes: list[int] = field(default_factory=list)  # the level below's summaries in order, while contiguous
    calls: list[CallSpec] = field(default_factory=list)  # started, in order
    total: int | None = None  # the level's calls, once the level below is complete
    inputs: dict[int, str] = field(default_factory=dict)
    summaries: dict[int, str] = field(default_factory=dict)
    finished: defaultdict[int, asyncio.Event] = field(default_factory=lambda: defaultdict(asyncio.Event))
    done: dict[int, tuple[CallSpec, Node, CallOutcome]] = field(default_factory=dict)

    def groups(self, sizes: list[int], total: int | None) -> list[list[int]]:
        """The groups ``sizes`` decide (all of them once ``total`` is given and every size is known)."""
        return prefix_groups(sizes, self.cap, total, share=self.share)


class EarlyLevels:
    """The levels above level 0 of one run, each call started as soon as its inputs exist."""

    def __init__(self, scheduler: LevelScheduler, state: RunState, n: int) -> None:
        self.scheduler = scheduler
        self.state = state
        # Shaped by what was learned so far (level 0's first answer), as advance_level would shape the next
        # level; the run state takes these values as each level ends (``level_ended``).
        view = replace(state, level_calibration=[], level_headroom=[])
        calibration.advance_level(view, 0)
        length.advance_level(view, 0)
        self.shaping = (view.calibration, view.headroom, view.overshoot)
        self.tree: list[list[Node | None]] = [[None] * n]  # level by level; a call reads its inputs here
        self.view = replace(view, levels=cast(list[list[Node]], self.tree), early=self)
        self.levels: dict[int, EarlyLevel] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.stopped = False
        self._open(1)

    @staticmethod
    def wanted(state: RunState, calls: list[CallSpec], first: object) -> bool:
        """Level 0 of a run whose TPM limit binds (count_exactly), with merges to make, whose first call has
        answered (alone)."""
        return isinstance(first, Node) and state.count_exactly and len(calls) > 1 and state.settings.max_depth > 0

    @staticmethod
    def level_ended(state: RunState, level: int) -> None:
        """After ``level`` advanced: the next level keeps the shaping its early calls were built with."""
        early = state.early
        if early is not None and level + 1 in early.levels:
            state.calibration, state.headroom, state.overshoot = early.shaping
        else:
            state.early = None

    def made(self, level: int) -> dict[int, tuple[CallSpec, Node, CallOutcome]]:
        """The calls of ``level`` made early, by index: (the call as sent, its node, its outcome)."""
        early = self.levels.get(level)
        return early.done if early is not None else {}

    def offer(self, index: int, node: Node) -> None:
        """Level 0's summary ``index`` exists."""
        self.tree[0][index] = node
        self._advance(1)

    def _open(self, level: int) -> None:
        assert len(self.tree) == level, "levels open in order"
        plan = self.state.plan
        # Merges start before the level below is complete only at a level planned below the final call.
        planned = level < len(plan.levels) - 1 and len(plan.levels[level].calls) > 1
        output = plan.levels[level].output_tokens if planned else None
        self.tree.append([])
        self.levels[level] = EarlyLevel(
            level=level, run=LevelRun.open(self.scheduler.max_in_flight), output=output,
            cap=self.state.input_budget(output) if output is not None else 0,
            expected=len(plan.levels[level - 1].calls) if planned else 0,
        )  # fmt: skip

    def _advance(self, level: int) -> None:
        """The level below ``level`` has a new summary: start every call of ``level`` it completes."""
        early = self.levels.get(level)
        if early is None or early.total is not None or self.stopped:
            return
        from pipeline.engine.scheduler import merge_call, merge_input, merged_size

        below = self.tree[level - 1]
        while len(early.sizes) < len(below) and (node := below[len(early.sizes)]) is not None:
            j = len(early.sizes)
            early.sizes.append(merged_size(self.view, self.scheduler.counter, merge_input(self.view, j, node)))
        if early.output is not None and early.share is None and early.sizes:
            # Groups are evened out by the first summary (same answers, same share, same groups).
            early.share = even_share(early.sizes[0], early.expected, early.cap)
        if len(early.sizes) == len(below) and (level == 1 or self.levels[level - 1].total is not None):
            self._complete(early)
            return
        if early.output is None:
            return
        for group in early.groups(early.sizes, None)[len(early.calls) :]:
            # total=0: not known yet, and in no prompt (the level numbers its calls when it runs).
            self._start(early, merge_call(self.view, level, below, len(early.calls), group, early.output, total=0))  # type: ignore[arg-type]
        if early.calls:
            self._above(level)  # this level has more calls than the one started: the one above has merges

    def _complete(self, early: EarlyLevel) -> None:
        """The level below is complete: the level's calls are those a level run at once makes; start the rest."""
        try:
            calls = self.scheduler.calls(self.view, early.level)
        except Exception as exc:  # noqa: BLE001 - the level runs at once and reports it
            log.info("level %d not started early (%s)", early.level, exc)
            self.stopped = True  # nothing above it can be decided here
            return
        for call in calls[len(early.calls) :]:
            self._start(early, call)
        early.total = len(calls)
        if early.total > 1:
            self._above(early.level)

    def _above(self, level: int) -> None:
        """``level`` has two calls or more: open the level above (within the run's depth limit)."""
        if level + 1 not in self.levels and level + 1 <= self.state.settings.max_depth:
            self._open(level + 1)
            self._advance(level + 1)

    def _start(self, early: EarlyLevel, call: CallSpec) -> None:
        early.inputs[call.index] = call.text
        early.calls.append(call)
        self.tree[early.level].append(None)
        self.tasks.append(asyncio.ensure_future(self._one(early, call)))

    async def _one(self, early: EarlyLevel, call: CallSpec) -> None:
        state, view, scheduler = self.state, self.view, self.scheduler
        strategy = scheduler.settings.context_strategy
        try:
            source = context_source(call.index, strategy=strategy, lag=state.lag)
            if source.summary_of is not None:
                await early.finished[source.summary_of].wait()
                if source.summary_of not in early.summaries:
                    raise Stopped()
            early.run.check()
            context = ""
            if source.carries:
                room = scheduler.sizer.context_room(view, call)
                context = bounded_context(
                    source, summaries=early.summaries, inputs=early.inputs, max_tokens=room, counter=scheduler.counter
                )
            outcome = await scheduler.resolver.resolve(view, early.run, replace(call, context=context))
            node = scheduler.node(view, early.level, call, outcome, scheduler.context_label(source, context))
            early.done[call.index] = (replace(call, context=context), node, outcome)
            early.summaries[call.index] = node.text
            self.tree[early.level][call.index] = node
        except Exception as exc:  # noqa: BLE001 - its level makes this call again and reports its failure
            log.info("early call %d of level %d not done (%s): the level makes it", call.index, early.level, exc)
        finally:
            early.finished[call.index].set()
            early.run.through(call.index)
            # What the answer taught counts for later levels however early it came (largest so far).
            for name in ("observed_calibration", "observed_overshoot"):
                learned = [v for v in (getattr(state, name), getattr(view, name)) if v is not None]
                setattr(state, name, max(learned) if learned else None)
        if call.index in early.done:
            self._advance(early.level + 1)

    async def settle(self) -> None:
        """Wait for every call started, and for those they start."""
        while pending := [t for t in self.tasks if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    async def stop(self) -> None:
        """Level 0 failed: start nothing more, and wait for what is in flight."""
        self.stopped = True
        for early in self.levels.values():
            early.run.fail(Stopped())
        await self.settle()

    def cancel(self) -> None:
        """Level 0 was interrupted: cancel what is in flight (the cache keeps every answer already stored)."""
        self.stopped = True
        for task in self.tasks:
            task.cancel()
