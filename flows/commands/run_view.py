"""How `tome runs show` prints a run: settings, the tree level by level with every call, one call's exchange."""

from __future__ import annotations

import json
from collections import defaultdict

from flows.progress import money
from flows.tables import text_table
from pipeline.errors import ConfigError
from pipeline.run_calls import CallRecord, stored_exchange
from pipeline.run_records import RunRecord
from pipeline.store import Store

_SETTINGS_SHOWN = ("backend", "model", "provider", "tier", "target_tokens", "language", "language_resolved",
                   "context_strategy", "effective_lag", "temperature", "max_in_flight", "focus", "cite")  # fmt: skip


def _currency(record: RunRecord) -> str | None:
    """The run's currency: None for the offline backend (no price), else its model's."""
    if record.settings.get("backend") == "extractive":
        return None
    from pipeline.config import load_catalog

    spec = load_catalog().models.get(str(record.settings.get("model", "")))
    return spec.currency if spec else None


def _call_id(c: CallRecord, several: bool) -> str:
    return f"{c.level}.{c.node}" + (f"·{c.seq + 1}" if several else "")


def render_run(record: RunRecord, calls: list[CallRecord]) -> str:
    """The run's header, settings and usage, then a table per level: one row per request."""
    currency = _currency(record)
    offline = record.settings.get("backend") == "extractive"
    lines = [
        f"run       {record.id}",
        f"document  {record.document}",
        f"status    {record.status}" + (f": {record.error}" if record.error else ""),
        f"started   {record.started_at[:19].replace('T', ' ')} UTC"
        + (f", finished {record.finished_at[:19].replace('T', ' ')} UTC" if record.finished_at else ""),
        f"usage     {record.calls:,} calls, {record.cached_calls:,} cached, {record.prompt_tokens:,} tokens in, "
        f"{record.completion_tokens:,} out" + ("" if currency is None else f", {money(record.cost, currency)}"),
    ]
    settings = {k: record.settings[k] for k in _SETTINGS_SHOWN if record.settings.get(k) not in (None, "")}
    if offline:
        settings.pop("model", None)
        settings.pop("provider", None)
    lines.append("settings  " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    versions = dict(record.settings.get("prompt_versions") or ())
    suffix = f"+{versions.get('focus', 'focus-v1')}" if record.settings.get("focus") else ""
    cite = f"+{versions.get('cite', 'cite-v1')}" if record.settings.get("cite") else ""
    used = [f"{k}={versions[k]}{suffix}{cite if k == 'reduce' else ''}" for k in ("map", "reduce") if k in versions]
    if used:
        lines.append("prompts   " + ", ".join(used))
    out = "\n".join(lines) + "\n"
    if not calls:
        return out + "\nNo calls recorded for this run (it ran before tome recorded them, or made none).\n"
    by_level: dict[int, list[CallRecord]] = defaultdict(list)
    for c in calls:
        by_level[c.level].append(c)
    per_node: dict[tuple[int, int], int] = defaultdict(int)
    for c in calls:
        per_node[(c.level, c.node)] += 1
    head = ["call", "inputs", "kind", "prompt", "outcome", "tokens in", "out", "cost", "cached"]
    for level in sorted(by_level):
        rows_in = by_level[level]
        nodes = len({c.node for c in rows_in})
        made = sum(c.outcome in ("answer", "rejected") for c in rows_in)
        cached = sum(c.cached for c in rows_in)
        out += f"\nlevel {level}: {nodes} summaries, {made} calls, {cached} cached\n"
        rows = [
            [
                _call_id(c, per_node[(c.level, c.node)] > 1),
                ("chunk " if c.level == 0 else f"{c.level - 1}.") + c.inputs if c.inputs else "-",
                c.kind,
                c.prompt_version,
                c.outcome + (f" ({c.finish_reason})" if c.finish_reason not in (None, "stop") else ""),
                f"{c.prompt_tokens:,}",
                f"{c.completion_tokens:,}",
                "-" if currency is None else money(c.cost, currency),
                "yes" if c.cached else "no",
            ]
            for c in rows_in
        ]
        out += text_table(head, rows, right={5, 6, 7})
    out += f"\n`tome runs show {record.id[:8]} --call L.I` prints a call's exact prompt and answer.\n"
    return out


def run_json(record: RunRecord, calls: list[CallRecord]) -> dict[str, object]:
    """The run record and its calls, JSON-ready."""
    from dataclasses import asdict

    return {**asdict(record), "calls_detail": [asdict(c) for c in calls]}


def _parse_call(ref: str) -> tuple[int, int]:
    try:
        level, index = ref.split(".")
        return int(level), int(index)
    except ValueError:
        raise ConfigError(f"--call {ref}: write LEVEL.INDEX, e.g. 0.3 (the first column of `tome runs show`).") from None


def render_call(store: Store, record: RunRecord, calls: list[CallRecord], ref: str, *, as_json: bool) -> str:
    """Every request behind node ``ref`` ("L.I"): its prompt and answer as the cache holds them."""
    level, index = _parse_call(ref)
    chosen = [c for c in calls if c.level == level and c.node == index]
    if not chosen:
        levels = sorted({c.level for c in calls})
        known = ", ".join(f"{lv}.0-{lv}.{max(c.node for c in calls if c.level == lv)}" for lv in levels)
        raise ConfigError(
            f"Run {record.id[:8]} has no call {ref}" + (f"; its calls are {known}." if known else "; it recorded no calls.")
        )
    currency = _currency(record)
    exchanges = [(c, stored_exchange(store, c.key)) for c in chosen]
    if as_json:
        docs = [
            {"call": f"{c.level}.{c.node}", "request": c.seq + 1, "kind": c.kind, "prompt_version": c.prompt_version,
             "outcome": c.outcome, "cached": c.cached, "prompt_tokens": c.prompt_tokens,
             "completion_tokens": c.completion_tokens, "cost": None if currency is None else c.cost,
             "messages": ex.messages, "answer": ex.answer}
            for c, ex in exchanges
        ]  # fmt: skip
        return json.dumps(docs, ensure_ascii=False, indent=2) + "\n"
    parts = []
    for c, ex in exchanges:
        head = (
            f"== call {c.level}.{c.node}, request {c.seq + 1} of {len(chosen)}: {c.kind}, prompt {c.prompt_version}, "
            f"{c.outcome}, {c.prompt_tokens:,} tokens in, {c.completion_tokens:,} out"
            + ("" if currency is None else f", {money(c.cost, currency)}")
            + (", from the cache" if c.cached else "")
            + " =="
        )
        body = [head]
        if c.outcome.startswith("split") or c.outcome == "rejected":
            sent = "rejected by the server" if c.outcome == "rejected" else "not sent"
            body.append(f"({sent}: the input was over the context, so it was split in two; the halves follow)")
        elif ex.messages is None:
            body.append(
                "(the cache no longer holds this call: it was cleared)"
                if ex.answer is None
                else "(the prompt was cached before tome kept prompts)"
            )
        else:
            for m in ex.messages:
                body += [f"--- {m['role']} ---", m["content"].rstrip()]
        if ex.answer is not None:
            body += ["--- answer ---", ex.answer.rstrip()]
        elif c.outcome in ("answer", "cached"):
            body.append("(the cache no longer holds the answer)")
        parts.append("\n".join(body))
    return "\n\n".join(parts) + "\n"


