"""LangChain map-reduce: load_summarize_chain(chain_type="map_reduce") as its docs show it, on ChatOpenAI."""

from __future__ import annotations

import asyncio
import sys

from common import PeerArgs, PeerResult, run_peer

CHUNK_TOKENS = 3000  # fits an 8k context with the prompt and a default-length answer
FIXED_RETRIES = 10


def make_llm(args: PeerArgs):
    from langchain_openai import ChatOpenAI

    # Library defaults otherwise: max_retries (openai SDK: 2), timeout, temperature, max_tokens.
    if args.fixed:  # the remedy for 429 failures: let the SDK's backoff outlast a rate window
        return ChatOpenAI(base_url=args.base_url, api_key=args.api_key, model=args.model, max_retries=FIXED_RETRIES)
    return ChatOpenAI(base_url=args.base_url, api_key=args.api_key, model=args.model)


def split(args: PeerArgs, result: PeerResult):
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    text = args.doc.read_text(encoding="utf-8")
    # from_tiktoken_encoder defaults to the gpt2 encoding, which is not available offline; cl100k is
    # also the closer match to the model's tokenizer. Overlap stays at the splitter's default (200).
    splitter = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name="cl100k_base", chunk_size=CHUNK_TOKENS
    )
    docs = [Document(page_content=t) for t in splitter.split_text(text)]
    result.chunks = len(docs)
    result.chunk_tokens = CHUNK_TOKENS
    return docs


def body(args: PeerArgs, result: PeerResult) -> str:
    import langchain_classic.chains.combine_documents.reduce as reduce_mod
    from langchain_classic.chains.summarize import load_summarize_chain

    docs = split(args, result)
    # Count collapse rounds (the reduce loop calls split_list_of_docs once per round); behaviour unchanged.
    rounds = {"n": 0}
    original = reduce_mod.split_list_of_docs

    def counting(*a, **kw):
        rounds["n"] += 1
        return original(*a, **kw)

    reduce_mod.split_list_of_docs = counting
    chain = load_summarize_chain(make_llm(args), chain_type="map_reduce")
    out = asyncio.run(
        chain.ainvoke({"input_documents": docs}, config={"max_concurrency": args.concurrency})
    )
    result.depth = 2 + rounds["n"]  # map + collapse rounds + final combine
    result.notes.append(
        "map step is one asyncio.gather over all chunks: max_concurrency in the config is not applied to it"
    )
    return out["output_text"]


if __name__ == "__main__":
    sys.exit(run_peer("langchain-mapreduce", body))
