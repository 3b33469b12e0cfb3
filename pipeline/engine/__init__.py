"""The recursive summary engine: map every chunk, then merge summaries level by level until one remains.

Modules: ``summary_engine`` (SummaryEngine: prepare, run a level, finish), ``scheduler`` (a level's calls:
packing, lagged context), ``resolver`` (one call: cache -> send -> split on overflow -> retry on cut-off),
``splitting`` (halving an input), ``sizing`` (messages and prompt room), ``calibration`` (provider tokens
per local token, learned), ``state`` (the per-run and per-level state), ``run_record`` (the run's row).

- Map (level 0) summarises every chunk concurrently, at most ``max_in_flight`` calls at once; the backend
  applies the rate budget. Later levels pack the previous level's ACTUAL summaries into merge calls
  (``planning.plan_merge``) and run them concurrently, one level after another (a loop, never recursion).
- Carry-forward context ("lagged", see pipeline.context): call i of a level carries the summary of call i-k,
  or for i < k the tail of call i-1's input, inside <context>, bounded by the budget and cut at a sentence.
  k = max(context_lag, concurrency), so the lag never idles a slot the budget would grant.
- Every call goes through the cache first (before the budget) and is stored the moment it returns, so reruns
  make no calls and a killed run repeats no completed call. Every decision that shapes a prompt depends only
  on the document, the settings and cached answers, so reruns build byte-identical prompts.
- Length that fits the first time (``length``): prompts ask for less than ``max_tokens`` by the headroom the
  model's own answers showed it needs; a cut-off answer is kept up to its last complete sentence and flagged
  ``trimmed`` (no second full-prompt call); only an answer without a complete sentence gets a stricter retry. A context-length rejection (or a predicted one) splits the input in two and raises the in-memory
  calibration; rejections are cached too, so reruns split without asking again.
- Calibration (provider tokens per local token) is learned from every answer's usage; it changes only between
  levels (it shapes prompts), so levels above 0 pack, bound context and state lengths in the provider's real
  tokens (e.g. ~0.45 for Chinese on Moonshot, where the configured 1.10 only suits English).
- QuotaExhaustedError stops new calls, lets in-flight ones finish (cached), marks the run "quota" and re-raises.
"""

from pipeline.engine.length import LENGTH_HEADROOM
from pipeline.engine.splitting import split_text
from pipeline.engine.state import RunState
from pipeline.engine.summary_engine import SummaryEngine
from pipeline.outputs import Node, SummaryResult

__all__ = ["LENGTH_HEADROOM", "Node", "RunState", "SummaryEngine", "SummaryResult", "split_text"]
