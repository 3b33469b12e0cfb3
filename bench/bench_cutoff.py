"""Cut-off recovery, measured: trim to the last complete sentence vs continue in Moonshot's partial mode.

Run from the repo root:

    .venv/bin/python bench/bench_cutoff.py [--docs alice,pride] [--no-write]

Every level-0 chunk of the book (tome's own chunks and map prompts, no carried context) is summarised on the
test server's disobedient model (writes 1.3-2x the length asked; tokenizer 15 % above tome's calibration, as in
bench/bench_disobedient.py) with ``max_tokens`` = what the obedient model writes for the same prompt, so every
answer is cut. Then:
- trim: the cut answer up to its last complete sentence (no further call);
- continue: the cut answer sent back as a prefilled assistant message (``"partial": true``), ``max_tokens`` 600.
Quality = ROUGE-1 F1 of the kept summary against the obedient model's answer to the same prompt (the summary
asked for), and whether it ends with a complete sentence. Tokens billed = prompt + completion tokens of every
call for the chunk, raw and with cached prompt tokens at a quarter (Kimi's price). Results:
bench/results/cutoff.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_disobedient import CORPUS, DOCS, MODEL, TITLES, server_modes  # noqa: E402
from pipeline.chunking import chunk_document, chunk_room  # noqa: E402
from pipeline.documents import load_document  # noqa: E402
from pipeline.engine.length import trim_to_sentence  # noqa: E402
from pipeline.errors import ContextLengthError  # noqa: E402
from pipeline.evaluation.rouge import Rouge  # noqa: E402
from pipeline.llm.client import MoonshotClient  # noqa: E402
from pipeline.llm.types import ChatRequest, Completion, Message  # noqa: E402
from pipeline.prompts import map_messages  # noqa: E402
from pipeline.sentences import sentence_ends  # noqa: E402
from pipeline.settings import model_and_limits, resolve_settings  # noqa: E402
from pipeline.testing import Latency, MoonshotTestServer, Obedience  # noqa: E402
from pipeline.tokens import counter_for  # noqa: E402

RESULTS_MD = REPO / "bench" / "results" / "cutoff.md"
WORDS = 150  # what a level-0 call asks for (tome asks 200 provider tokens: ~150 English words)
CONTINUE_MAX_TOKENS = 600


def ends_a_sentence(text: str) -> bool:
    stripped = text.rstrip()
    return bool(stripped) and any(end >= len(stripped) for end in sentence_ends(stripped))


def billed(c: Completion) -> tuple[int, float]:
    u = c.usage
    return u.prompt_tokens + u.completion_tokens, u.prompt_tokens - 0.75 * u.cached_tokens + u.completion_tokens


async def ask(client: MoonshotClient, messages: tuple[Message, ...], max_tokens: int) -> Completion:
    return await client.complete(ChatRequest(model=MODEL, messages=messages, max_tokens=max_tokens, temperature=0.3))


async def measure(doc: str) -> dict[str, Any]:
    document = load_document(CORPUS / DOCS[doc])
    settings = resolve_settings()
    model, _ = model_and_limits(settings)
    chunks = chunk_document(document, counter_for(model), chunk_room(model, settings))
    scale = server_modes(doc, "disobedient")["token_scale"]
    rouge = Rouge()
    rows: dict[str, list[tuple[float, bool, int, float]]] = {"trim": [], "continue": []}
    cut = 0
    kw: dict[str, Any] = {"latency": Latency.zero(), "token_scale": scale, "prefix_cache": True}
    with (
        MoonshotTestServer(**kw) as obedient_srv,
        MoonshotTestServer(obedience=Obedience.disobedient(), **kw) as disobedient_srv,
    ):
        obedient = MoonshotClient(base_url=obedient_srv.base_url, api_key=obedient_srv.api_key)
        model_client = MoonshotClient(base_url=disobedient_srv.base_url, api_key=disobedient_srv.api_key)
        for chunk in chunks:
            messages = map_messages(
                chunk.text, title=document.title, part=chunk.index + 1, parts=len(chunks),
                section=chunk.section_title or None, context="", words=WORDS, language="en",
            )  # fmt: skip
            try:
                reference = await ask(obedient, messages, 1200)
                first = await ask(model_client, messages, reference.usage.completion_tokens)
            except ContextLengthError:
                continue  # over the window on this tokenizer: tome splits such a chunk (not measured here)
            if first.finish_reason != "length":
                continue
            cut += 1
            raw0, disc0 = billed(first)
            kept = trim_to_sentence(first.content) or ""
            rows["trim"].append((rouge.score(kept, reference.content).rouge1, ends_a_sentence(kept), raw0, disc0))
            partial = (*messages, Message("assistant", first.content, partial=True))
            room = 8192 - first.usage.prompt_tokens - first.usage.completion_tokens - 64
            if room < 24:  # tome does not send a continuation that would be refused: it trims
                rows["continue"].append(rows["trim"][-1])
                continue
            more = await ask(model_client, partial, min(CONTINUE_MAX_TOKENS, room))
            raw1, disc1 = billed(more)
            text = first.content + more.content
            if more.finish_reason == "length":
                text = trim_to_sentence(text) or text
            rows["continue"].append(
                (rouge.score(text, reference.content).rouge1, ends_a_sentence(text), raw0 + raw1, disc0 + disc1)
            )
        await obedient.aclose()
        await model_client.aclose()
    out: dict[str, Any] = {"doc": doc, "chunks": len(chunks), "cut": cut}
    for name, r in rows.items():
        n = len(r) or 1
        f1 = sum(x[0] for x in r) / n
        raw = sum(x[2] for x in r)
        disc = sum(x[3] for x in r)
        out[name] = {
            "rouge1": round(f1, 4),
            "complete": sum(x[1] for x in r),
            "billed_raw": raw,
            "billed_discounted": round(disc),
            "rouge1_per_1k_raw": round(1000 * f1 * n / raw, 4) if raw else 0.0,
            "rouge1_per_1k_discounted": round(1000 * f1 * n / disc, 4) if disc else 0.0,
        }
    return out


def render(records: list[dict[str, Any]]) -> str:
    lines = [
        "# Cut-off recovery: trim vs continue (`bench/bench_cutoff.py`)",
        "",
        "Every level-0 chunk of the book (tome's chunks and map prompts), disobedient test model (writes 1.3-2× "
        "the length asked, tokenizer 15 % above tome's calibration), `max_tokens` = what the obedient model "
        "writes for the same prompt, so every answer is cut. *trim*: kept up to its last complete sentence, no "
        "further call. *continue*: the cut answer sent back as a prefilled assistant message (`partial: true`). "
        "Quality: mean ROUGE-1 F1 against the obedient model's answer to the same prompt; *complete* = answers "
        "ending with a whole sentence. Billed: prompt + completion tokens of every call for those chunks, raw and "
        "with cached prompt tokens at a quarter.",
        "",
        "| document | cut / chunks | recovery | ROUGE-1 F1 | complete | billed raw | billed, cached at ¼ | "
        "F1 per 1k raw tokens | F1 per 1k discounted |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        for name in ("trim", "continue"):
            m = r[name]
            lines.append(
                f"| {TITLES[r['doc']]} | {r['cut']} / {r['chunks']} | {name} | {m['rouge1']:.3f} | "
                f"{m['complete']} / {r['cut']} | {m['billed_raw']:,} | {m['billed_discounted']:,} | "
                f"{m['rouge1_per_1k_raw']:.4f} | {m['rouge1_per_1k_discounted']:.4f} |"
            )
    wins = {r["doc"]: max(("trim", "continue"), key=lambda k: r[k]["rouge1_per_1k_raw"]) for r in records}
    lines += [
        "",
        "Better summary per billed token: " + ", ".join(f"{TITLES[d]}: {w}" for d, w in wins.items()) + ". A "
        "continuation pays the whole prompt again (cached at a quarter on Kimi) and finishes an answer that was "
        "already longer than asked, so it also lands further from the summary asked for; trimming keeps what "
        "was asked for at no further cost. Chunks not counted as cut were over the 8k window on this tokenizer "
        "(tome refits or splits those) or not cut. configs/providers.toml sets `cutoff_recovery` from this.",
        "",
        f"Recorded {time.strftime('%Y-%m-%d %H:%M')} UTC.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="alice,pride")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"skipped: {CORPUS} is absent")
        return 0
    records = [asyncio.run(measure(doc)) for doc in args.docs.split(",") if doc]
    text = render(records)
    print(text)
    if not args.no_write:
        RESULTS_MD.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
