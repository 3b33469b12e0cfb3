"""LangChain refine: load_summarize_chain(chain_type="refine"), one call per chunk, each refining the last."""

from __future__ import annotations

import asyncio
import sys

from common import PeerArgs, PeerResult, run_peer
from langchain_mapreduce import make_llm, split


def body(args: PeerArgs, result: PeerResult) -> str:
    from langchain_classic.chains.summarize import load_summarize_chain

    docs = split(args, result)
    chain = load_summarize_chain(make_llm(args), chain_type="refine")
    out = asyncio.run(
        chain.ainvoke({"input_documents": docs}, config={"max_concurrency": args.concurrency})
    )
    result.depth = len(docs)
    result.depth_kind = "chain"
    return out["output_text"]


if __name__ == "__main__":
    sys.exit(run_peer("langchain-refine", body))
