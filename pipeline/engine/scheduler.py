"""The level scheduler: which calls a level makes (packing), and running them with lagged context.

Level 0 has one call per chunk. Later levels pack the previous level's ACTUAL summaries, measured exactly as
a merge prompt carries them, into merge calls (``planning.plan_merge``). All calls of a level start at once;
call i waits only for the call its carried context comes from (``context.context_source``), and the context
is bounded by ``context.bounded_context``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from pipeline.context import ContextSource, bounded_context, context_source
from pipeline.engine import calibration
from pipeline.engine.early import EarlyLevels
from pipeline.engine.resolver import CallResolver
from pipeline.engine.run_record import record_usage
from pipeline.engine.sizing import MIN_OUTPUT_TOKENS, PromptSizer
from pipeline.engine.state import CallOutcome, CallSpec, LevelRun, RunState, Stopped, WindowCapped
from pipeline.errors import ChunkingError, DepthLimitError, QuotaExhaustedError
from pipeline.merge_plan import plan_merge
from pipeline.outputs import Node
from pipeline.prompts import MergeInput, merged_source, strip_citations, summary_block
from pipeline.settings import RunSettings
from pipeline.store import Store
from pipeline.tokens import TokenCounter


class CallTexts(Mapping[int, str]):
    """Each call's input text by call index, a planned map call's sliced from the document when asked."""

    def __init__(self, document_text: str, calls: list[CallSpec]) -> None:
        self.document_text = document_text
        self.reset(calls)

    def reset(self, calls: list[CallSpec]) -> None:
        self.calls = {c.index: c for c in calls}

    def __getitem__(self, index: int) -> str:
        return self.calls[index].with_text(self.document_text).text

    def __iter__(self) -> Iterator[int]:
        return iter(self.calls)

    def __len__(self) -> int:
        return len(self.calls)


class LevelScheduler:
    """Plans and runs the calls of one level for any run; per-level state lives in a :class:`LevelRun`."""

    def __init__(
        self,
        *,
        settings: RunSettings,
        sizer: PromptSizer,
        resolver: CallResolver,
        store: Store,
        max_in_flight: int,
    ) -> None:
        self.settings = settings
        self.sizer = sizer
        self.counter = sizer.counter
        self.resolver = resolver
        self.store = store
        self.max_in_flight = max_in_flight

    def calls(self, state: RunState, level: int) -> list[CallSpec]:
        """The calls of ``level``: one per chunk, or merges packed from the previous level's actual sizes."""
        doc = state.document
        if level == 0:
            n = len(state.chunks)
            output = state.map_max_tokens or state.plan.levels[0].output_tokens
            return [
                CallSpec(
                    level=0,
                    index=c.index,
                    kind="map",
                    inputs=(c.index,),
                    text="",
                    span=(c.start, c.end),
                    part=c.index + 1,
                    total_parts=n,
                    section=doc.section_title(c.start, c.end),
                    final=n == 1,
                    max_tokens=max(MIN_OUTPUT_TOKENS, output),
                )
                for c in state.chunks
            ]
        prev = state.levels[level - 1]
        target = state.settings.target_tokens
        parts = [merge_input(state, j, node) for j, node in enumerate(prev)]
        # Measured as the prompt carries each summary (tags, escaping, the newline between blocks); its number
        # there is its place in the group, never longer than its place in the level used here.
        sizes = [merged_size(state, self.counter, p) for p in parts]
        early = state.early.levels.get(level) if state.early is not None else None
        if early is not None and early.output is not None:
            groups = early.groups(sizes, len(prev))
            if len(groups) > 1:  # the groups its merges started from while the level below ran (engine.early)
                return [
                    merge_call(state, level, prev, i, group, early.output, total=len(groups))
                    for i, group in enumerate(groups)
                ]
        if len(prev) == 1:
            # One summary over the target: condense it (output strictly below its size).
            size = calibration.calibrated(state, prev[0].tokens)
            groups, output = [[0]], max(MIN_OUTPUT_TOKENS, min(target, size - 1))
        else:
            try:
                output, groups = plan_merge(
                    sizes,
                    target_tokens=target,
                    max_output_tokens=self.settings.chunk_output_tokens,
                    input_budget=state.input_budget,
                    max_depth=max(1, self.settings.max_depth - level + 1),
                )
            except ChunkingError as exc:
                # Only a model that ignores max_tokens writes a summary too big for a merge call.
                raise DepthLimitError(
                    f"Level {level} cannot merge the summaries of level {level - 1}: {exc} The model's summaries "
                    "are not getting shorter; try another model."
                ) from exc
        return [merge_call(state, level, prev, i, group, output, total=len(groups)) for i, group in enumerate(groups)]

    async def run(
        self,
        state: RunState,
        level: int,
        calls: list[CallSpec],
        *,
        replan: Callable[[RunState], Awaitable[list[CallSpec]]] | None = None,
    ) -> list[Node]:
        """All calls of a level at once; call i waits only for the call its context comes from.

        ``replan``: the level's first call goes alone, then the level's calls are the ones ``replan`` returns
        (the first one's answer reported the server's token count; call 0 is kept, already answered).
        Raises the first failure of this level (a quota error before any other) once every started call
        has finished; calls not yet started are not sent.
        """
        run = LevelRun.open(self.max_in_flight)
        finished = {c.index: asyncio.Event() for c in calls}
        summaries: dict[int, str] = {}
        inputs = CallTexts(state.document.text, calls)
        strategy = self.settings.context_strategy
        reports: list[tuple[Node, CallOutcome]] = []
        started = False
        early: EarlyLevels | None = None  # level 0's summaries start the levels above (engine.early)
        early_done = state.early.made(level) if state.early is not None and level > 0 else {}

        async def one(call: CallSpec, probe: bool = False) -> Node:
            try:
                source = context_source(call.index, strategy=strategy, lag=state.lag)
                if source.summary_of is not None:
                    await finished[source.summary_of].wait()
                    if source.summary_of not in summaries:
                        raise Stopped()
                call = call.with_text(state.document.text)  # sliced only now: a level holds no copy of the text
                run.check()
                context = ""
                if source.carries:
                    room = self.sizer.context_room(state, call)
                    context = bounded_context(
                        source, summaries=summaries, inputs=inputs, max_tokens=room, counter=self.counter
                    )
                done = early_done.get(call.index)
                if done is not None and same_prompt(done[0], replace(call, context=context)):
                    _, node, outcome = done  # made while the levels below ran (engine.early)
                else:
                    outcome = await self.resolver.resolve(state, run, replace(call, context=context), probe=probe)
                    node = self.node(state, level, call, outcome, self.context_label(source, context))
                if early is not None:
                    early.offer(call.index, node)
                if started:
                    self._report(state, level, node, outcome)
                else:
                    reports.append((node, outcome))  # reported once the level's calls are known
                summaries[call.index] = node.text
                return node
            finally:
                finished[call.index].set()
                run.through(call.index)

        first: Node | BaseException | None = None
        probe = self._probe(state, calls)
        if probe is not None:
            replan = None  # the window comes first; a smaller one re-plans the whole level (WindowCapped)
        elif replan is not None:
            probe = calls[0]
        if probe is not None:
            # The window is not known for sure: the largest call that carries no context (so its prompt does not
            # depend on the window) goes alone, so an over-declared window costs one refusal, not one per call.
            # Or (``replan``) the first call goes alone and its answer's token count sizes the rest.
            try:
                first = await one(probe, probe=replan is None)  # a window probe
            except WindowCapped:
                raise
            except Exception as exc:  # reported with the level's other failures below
                first = exc
            if replan is not None and isinstance(first, Node):
                calls = await replan(state)
                finished.update({c.index: asyncio.Event() for c in calls if c.index != probe.index})
                inputs.reset(calls)
        if level == 0 and EarlyLevels.wanted(state, calls, first):
            assert isinstance(first, Node)
            early = state.early = EarlyLevels(self, state, len(calls))
            early.offer(first.index, first)
        state.progress.level_started(level, len(calls))
        started = True
        for node, outcome in reports:
            self._report(state, level, node, outcome)
        try:
            rest = await asyncio.gather(
                *(one(c) for c in calls if probe is None or c.index != probe.index), return_exceptions=True
            )
        except BaseException:  # interrupted: nothing started early goes on behind the run's back
            if early is not None:
                early.cancel()
            raise
        results = list(rest) if first is None else [first, *rest]
        errors = [r for r in results if isinstance(r, BaseException)]
        if early is not None:
            await (early.stop() if errors else early.settle())
            if errors:
                state.early = None
        if errors:
            real = [e for e in errors if not isinstance(e, Stopped)]
            quota = next((e for e in real if isinstance(e, QuotaExhaustedError)), None)
            raise quota or run.error or (real[0] if real else RuntimeError("calls stopped"))
        return sorted((r for r in results if isinstance(r, Node)), key=lambda node: node.index)

    def _probe(self, state: RunState, calls: list[CallSpec]) -> CallSpec | None:
        """The call to send alone first while the window is unconfirmed (None: the window is known)."""
        if state.window.confirmed and state.window.tokens >= state.model.context_tokens:
            return None
        strategy = self.settings.context_strategy
        free = [c for c in calls if not context_source(c.index, strategy=strategy, lag=state.lag).carries]
        return max(free, key=lambda c: c.length, default=None)

    @staticmethod
    def context_label(source: ContextSource, context: str) -> str:
        """How a node's carried context is recorded: "summary:i", "tail:i" or "none"."""
        if not context:
            return "none"
        return f"summary:{source.summary_of}" if source.summary_of is not None else f"tail:{source.tail_of}"

    def node(self, state: RunState, level: int, call: CallSpec, outcome: CallOutcome, label: str) -> Node:
        """The tree node of a resolved call."""
        if outcome.truncated:
            state.usage.truncated += 1
        if call.kind == "map":
            chunk = state.chunks[call.index]
            span = (chunk.start, chunk.end)
        else:
            prev = state.levels[level - 1]
            span = (prev[call.inputs[0]].span[0], prev[call.inputs[-1]].span[1])
        text = outcome.text.strip()
        node = Node(
            level=level,
            index=call.index,
            inputs=call.inputs,
            span=span,
            pages=state.document.pages_for(*span),
            section=call.section,
            text=text,
            tokens=self.counter.count(text),
            cached=outcome.cached,
            truncated=outcome.truncated,
            trimmed=outcome.trimmed,
            calls=outcome.calls,
            cached_calls=outcome.cached_calls,
            context=label,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cost=outcome.cost,
            latency_s=outcome.latency_s,
        )
        return node

    def _report(self, state: RunState, level: int, node: Node, outcome: CallOutcome) -> None:
        """Tell the run's progress and record about a finished call."""
        state.progress.call_finished(
            level,
            cached=node.cached,
            calls=node.calls,
            cached_calls=node.cached_calls,
            splits=outcome.splits,
            prompt_tokens=node.prompt_tokens,
            completion_tokens=node.completion_tokens,
            cost=node.cost,
        )
        record_usage(self.store, state)


def merge_input(state: RunState, j: int, node: Node) -> MergeInput:
    """Summary ``j`` of a level as the next level's merge prompt carries it."""
    # Citations a merge wrote name its own inputs: the next merge sees the text without them.
    text = strip_citations(node.text) if state.settings.cite else node.text
    return MergeInput(j + 1, node.section or None, text)


def merged_size(state: RunState, counter: TokenCounter, part: MergeInput) -> int:
    """Provider tokens of one summary in a merge prompt (tags, escaping, the newline between blocks); its
    number there is its place in the group, never longer than its place in the level used here."""
    return calibration.calibrated(state, counter.count(summary_block(part) + "\n"))


def merge_call(
    state: RunState, level: int, prev: Sequence[Node], i: int, group: Sequence[int], output: int, *, total: int
) -> CallSpec:
    """Merge call ``i`` of ``level`` over the summaries ``group`` of ``prev`` (``total`` calls in the level)."""
    members = tuple(replace(merge_input(state, j, prev[j]), n=k + 1) for k, j in enumerate(group))
    return CallSpec(
        level=level,
        index=i,
        kind="reduce",
        inputs=tuple(group),
        text=merged_source(list(members)),
        parts=members,
        part=i + 1,
        total_parts=total,
        section=state.document.section_title(prev[group[0]].span[0], prev[group[-1]].span[1]),
        final=total == 1,
        max_tokens=max(MIN_OUTPUT_TOKENS, output),
    )


def same_prompt(a: CallSpec, b: CallSpec) -> bool:
    """The two calls send the same request (their numbering in the level aside: no prompt shows it)."""
    return (a.kind, a.inputs, a.text, a.context, a.max_tokens, a.final) == (
        b.kind, b.inputs, b.text, b.context, b.max_tokens, b.final
    )  # fmt: skip
