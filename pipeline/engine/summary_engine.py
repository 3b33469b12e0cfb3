"""SummaryEngine: prepares a document's run, runs its levels until one summary remains, and finishes it.

The engine holds only what every run shares (backend, store, settings, model, the call resolver and level
scheduler); each document's run state is a :class:`RunState`, so one engine serves concurrent documents.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from pipeline.chunking import Chunk, chunk_document
from pipeline.claims import Claims
from pipeline.config import ModelSpec, RateLimits
from pipeline.context import effective_lag
from pipeline.documents.model import Document
from pipeline.engine import calibration, length, replan
from pipeline.engine.convergence import check_done
from pipeline.engine.early import EarlyLevels
from pipeline.engine.resolver import CallResolver
from pipeline.engine.run_record import close_run, record_usage
from pipeline.engine.scheduler import LevelScheduler
from pipeline.engine.server_counts import TextRatios
from pipeline.engine.sizing import PromptSizer, sized_settings
from pipeline.engine.state import CallSpec, RunState, WindowCapped
from pipeline.errors import DepthLimitError, QuotaExhaustedError
from pipeline.extractive_sections import chapter_tree
from pipeline.language import length_unit, resolve_language, sample_text
from pipeline.lengths import shortfall_note
from pipeline.llm.types import ChatBackend
from pipeline.merge_plan import merge_input_budget
from pipeline.outputs import Node, SummaryResult, section_summaries
from pipeline.planning import plan_document
from pipeline.progress_events import NullProgress, ProgressSink
from pipeline.prompt_room import PRIOR_HEADROOM, chunk_room
from pipeline.prompts import strip_citations
from pipeline.provenance import link_tree
from pipeline.settings import RunSettings, model_and_limits
from pipeline.store import Store, document_hash
from pipeline.tokens import TokenCounter, counter_for
from pipeline.window import Window

log = logging.getLogger("tome.engine")

def start_window(store: Store, model: ModelSpec, base_url: str | None, *, confirmed: bool) -> Window:
    """The window a run starts with: the configured one, capped by what earlier runs learned from this server.

    The plan still starts from the configured window; the first call of level 0 finds (or, on a rerun,
    replays) the real one and the level is planned again, so a rerun builds the same prompts as the first run.
    """
    configured = model.context_tokens
    learned = store.window_get(model.name, base_url) if base_url else None
    tokens = min(configured, learned) if learned else configured
    return Window(configured=configured, tokens=tokens, confirmed=confirmed)


class SummaryEngine:
    """Runs the summary tree for documents through a backend, a cache/run store and a progress sink."""

    def __init__(
        self,
        *,
        backend: ChatBackend,
        store: Store,
        settings: RunSettings,
        model: ModelSpec,
        counter: TokenCounter | None = None,
        progress: ProgressSink | None = None,
        max_in_flight: int = 8,
        limits: RateLimits | None = None,
        lag: int | None = None,
        claims: Claims | None = None,
        window_confirmed: bool = True,
    ) -> None:
        """Args:
        backend: answers chat requests (the HTTP client with its rate budget, or the extractive backend).
        store: the cache and run records.
        progress: the default progress sink of runs (``prepare`` may give each run its own).
        max_in_flight: calls sent at once per document level (the budget may admit fewer).
        limits: the rate tier (default: settings.tier from configs/); its concurrency caps the lag too.
        lag: force this carry-forward lag instead of max(context_lag, concurrency) (benchmarks compare them).
        claims: in-flight call claims shared with other processes (a call one of them is making is waited for).
        window_confirmed: the model's window is known to be the server's (a hosted model, or a local server
            that stated it); otherwise each level's first call goes alone until a refusal confirms it.
        """
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.backend = backend
        self.store = store
        self.settings = settings
        self.model = model
        self.counter = counter or counter_for(model)
        self.progress: ProgressSink = progress or NullProgress()
        self.max_in_flight = max_in_flight
        self.limits = limits or model_and_limits(settings)[1]
        self.lag_override = lag
        self.provider = backend.name
        # A local backend's answers change with its code, not with a model name: it names its own version.
        self.cache_namespace = backend.cache_namespace
        self.billable = backend.billable
        self.window_confirmed = window_confirmed
        self._count = getattr(backend, "count_prompt_tokens", None)  # wrappers in tests may not forward it
        # Windows learned from this server's refusals in earlier runs (None: not an HTTP backend).
        self.base_url: str | None = backend.base_url
        chunk_room(model, settings)  # fail at construction when the model cannot hold a chunk at all
        self.sizer = PromptSizer(settings=settings, model=model, counter=self.counter)
        self.resolver = CallResolver(
            backend=backend,
            store=store,
            settings=settings,
            model=model,
            sizer=self.sizer,
            provider=self.provider,
            cache_namespace=self.cache_namespace,
            billable=self.billable,
            claims=claims,
        )
        self.scheduler = LevelScheduler(
            settings=settings,
            sizer=self.sizer,
            resolver=self.resolver,
            store=store,
            max_in_flight=max_in_flight,
        )

    def __repr__(self) -> str:
        return f"SummaryEngine(backend={self.provider!r}, model={self.model.name!r}, max_in_flight={self.max_in_flight})"

    @property
    def concurrency(self) -> int:
        """Calls that can be in flight at once: ``max_in_flight`` capped by the tier's concurrency."""
        tier = self.limits.concurrency
        return min(self.max_in_flight, tier) if tier > 0 else self.max_in_flight

    def chunk(self, document: Document) -> list[Chunk]:
        """The chunks level 0 will summarise (no calls, no run record)."""
        budget = chunk_room(self.model.for_language(document.language), self.settings)
        return chunk_document(document, self.counter, budget)

    def prepare(self, document: Document, *, progress: ProgressSink | None = None) -> RunState:
        """Chunk, plan and record the run (no calls); ``progress`` receives this run's events."""
        language = resolve_language(self.settings.language, document.language)
        # The extractive backend counts tokens itself and states its own ratio (1.0).
        start_calibration = self.backend.calibration or self.model.for_language(document.language).calibration
        settings = sized_settings(self.settings, document, language, self.counter, start_calibration)
        plan = plan_document(document, self.model, settings, self.limits, counter=self.counter)
        model, chunks = plan.model, plan.chunks
        same = resolve_language("auto", document.language) == language
        unit = length_unit(language, sample_text(document.text) if same else "", self.counter)
        lag = self.lag_override or effective_lag(self.settings.context_lag, self.concurrency)
        recorded = {
            **settings.as_dict(),
            "backend": self.provider,
            "max_in_flight": self.max_in_flight,
            "effective_lag": lag,
            "language_resolved": language,
        }
        run_id = self.store.start_run(
            document=str(document.path), document_hash=document_hash(document.text), settings=recorded
        )
        state = RunState(
            document=document,
            chunks=list(chunks),
            plan=plan,
            settings=settings,
            model=model,
            run_id=run_id,
            language=language,
            unit=unit,
            lag=lag,
            # A backend that counts tokens itself (the extractive one: locally) states its own ratio.
            calibration=self.backend.calibration or model.calibration,
            room=chunk_room(model, self.settings),
            input_budget=merge_input_budget(model, self.settings),
            window=start_window(self.store, self.model, self.base_url, confirmed=self.window_confirmed),
            progress=progress or self.progress,
            # A backend that writes exactly what it is asked for (the extractive one) needs no headroom.
            headroom=self.backend.headroom or PRIOR_HEADROOM,
            count_exactly=self.billable and 0 < self.limits.tpm < plan.admission_tokens,
        )
        state.usage.currency = self.model.currency if self.billable else ""  # offline: no price, no currency
        log.info(
            "run %s: %s, %d chunks, %d planned calls in %d levels, lag %d, language %s",
            run_id,
            document.path.name,
            len(chunks),
            plan.total_calls,
            len(plan.levels),
            lag,
            language,
        )
        state.progress.plan_ready(plan)
        return state

    async def _replan_rest(self, state: RunState, counting: asyncio.Task[TextRatios | None] | None) -> list[CallSpec]:
        """Level 0's calls after its first answer: the rest chunked by the server's count (engine.replan)."""
        sample = replan.framing_sample(state, self.scheduler.calls(state, 0)[0], self.sizer)
        await replan.after_first_answer(
            state, settings=self.settings, limits=self.limits, counter=self.counter, count=self._count,
            counting=counting, sample=sample,
        )  # fmt: skip
        return self.scheduler.calls(state, 0)

    async def run_level(self, state: RunState, level: int) -> list[Node]:
        """Run one level of the tree (all its calls, concurrently) and record it in ``state``.

        Raises:
            DepthLimitError: ``level`` is beyond settings.max_depth.
            QuotaExhaustedError: after in-flight calls finished; the run is marked "quota".
            TomeError: any other failure; the run is marked "failed" (the cache keeps what was done).
        """
        if state.done and level >= len(state.levels):
            raise ValueError("the run is already done")
        if level > len(state.levels):
            raise ValueError(f"level {level} cannot run before level {len(state.levels)}")
        del state.levels[level:]  # a re-run level (task retry) replaces its earlier result
        state.done = False
        calibration.replay_level(state, level)
        length.replay_level(state, level)
        try:
            if level > self.settings.max_depth:
                raise DepthLimitError(
                    f"The summary tree did not converge within max_depth={self.settings.max_depth} levels "
                    "(the model's summaries are not getting shorter). Use a shorter --length or a larger model."
                )
            if level == 0:  # a re-run level 0 learns everything again (from the cache)
                state.observed_calibration = state.observed_overshoot = None
                state.early, state.map_max_tokens = None, None
                state.headroom, state.overshoot = self.backend.headroom or PRIOR_HEADROOM, 1.0
            # A rerun whose first call is cached ran with this plan: it asks the server nothing.
            if level == 0 and self.billable and self._count is not None and not self.resolver.answered(
                state, self.scheduler.calls(state, 0)[0].with_text(state.document.text)
            ):
                await replan.by_sampled_count(state, self._count, model=self.model, settings=self.settings,
                                              limits=self.limits, counter=self.counter)  # fmt: skip
            first = level == 0 and replan.wanted(state, self.limits, billable=self.billable)
            with replan.counting(state, self._count, self.counter, wanted=first) as counting:
                rest = partial(self._replan_rest, counting=counting) if first else None
                while True:  # each pass plans for a strictly smaller window, so this ends
                    try:
                        calls = self.scheduler.calls(state, level)
                        nodes = await self.scheduler.run(state, level, calls, replan=rest)
                        break
                    except WindowCapped:
                        replan.for_window(state, level, self.model, self.settings, self.limits, counter=self.counter)
        except QuotaExhaustedError as exc:
            close_run(self.store, state, "quota", str(exc))
            raise
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
                close_run(self.store, state, "interrupted", "interrupted")
            else:
                close_run(self.store, state, "failed", f"{type(exc).__name__}: {exc}")
            raise
        state.levels.append(nodes)
        calibration.advance_level(state, level)
        length.advance_level(state, level)
        EarlyLevels.level_ended(state, level)
        check_done(state, level, nodes, self.counter)
        record_usage(self.store, state, force=True)
        state.progress.level_finished(level)
        log.info("level %d: %d summaries, %d tokens", level, len(nodes), sum(n.tokens for n in nodes))
        return nodes

    def finish(self, state: RunState) -> SummaryResult:
        """Mark the run done and build its outputs."""
        if not state.done:
            raise ValueError("the run has not finished its levels")
        close_run(self.store, state, "done", None)
        tree, chunks = state.levels, state.chunks
        if not self.backend.reads_prompts:  # the offline backend's one-call run still gets chapter summaries
            tree, chunks = chapter_tree(tree, chunks, state.document, language=state.language,
                                        counter=self.counter) or (tree, chunks)  # fmt: skip
        # Provenance is lexical alignment after the calls: any backend, no extra calls, same tree -> same links.
        levels = link_tree(tree, chunks, state.document)
        final = levels[-1][0]
        return SummaryResult(
            title=state.document.title,
            document=str(state.document.path),
            language=state.language,
            # The [n] a --cite merge wrote name tree nodes: kept in the tree (provenance), not in the summary.
            final=strip_citations(final.text) if state.settings.cite else final.text,
            sections=section_summaries(levels[0]) if state.document.sections else [],
            levels=levels,
            usage=state.usage,
            run_id=state.run_id,
            backend=self.provider,
            model=self.model.name if self.billable else self.provider,  # the offline backend is no model
            settings={
                **state.settings.as_dict(),
                "effective_lag": state.lag,
                "language_resolved": state.language,
                "length_note": shortfall_note(state.document.text, final.text, state.settings.target_unit,
                                              state.settings.target_units),  # fmt: skip
            },
        )

    async def summarise(self, document: Document, *, progress: ProgressSink | None = None) -> SummaryResult:
        """Prepare, run every level until one summary remains, finish."""
        state = self.prepare(document, progress=progress)
        while not state.done:
            await self.run_level(state, state.next_level)
        return self.finish(state)
