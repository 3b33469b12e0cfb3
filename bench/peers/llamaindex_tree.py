"""LlamaIndex TreeSummarize (use_async=True) over SentenceSplitter chunks, OpenAILike LLM on the server."""

from __future__ import annotations

import sys

from common import PeerArgs, PeerResult, run_peer

QUERY = "Summarize the provided text."
FIXED_MARGIN = 1024  # 512 was not enough on Pride and Prejudice (8350 requested)


def body(args: PeerArgs, result: PeerResult) -> str:
    from llama_index.core import Settings
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.response_synthesizers import TreeSummarize
    from llama_index.llms.openai_like import OpenAILike

    # is_chat_model: Moonshot serves only /chat/completions (OpenAILike defaults to /completions).
    # --fixed: reserve room for the answer (repacking leaves context_window - max_tokens), keep a margin for
    # the provider counting a little more than cl100k (repacking fills the window to the last token), retry longer.
    fixes = {"max_tokens": 1024, "max_retries": 10} if args.fixed else {}
    window = args.context_window - FIXED_MARGIN if args.fixed else args.context_window
    llm = OpenAILike(
        model=args.model,
        api_base=args.base_url,
        api_key=args.api_key,
        context_window=window,
        is_chat_model=True,
        **fixes,
    )
    Settings.llm = llm
    splitter = SentenceSplitter()  # defaults: chunk_size=1024 tokens, chunk_overlap=200
    chunks = splitter.split_text(args.doc.read_text(encoding="utf-8"))
    result.chunks = len(chunks)
    result.chunk_tokens = splitter.chunk_size

    levels = {"n": 0, "packed": []}

    class CountingTree(TreeSummarize):
        """TreeSummarize that records how many levels it recursed (behaviour unchanged)."""

        def get_response(self, query_str, text_chunks, **kw):  # type: ignore[override]
            levels["n"] += 1
            return super().get_response(query_str, text_chunks, **kw)

    tree = CountingTree(llm=llm, use_async=True)
    text = tree.get_response(QUERY, chunks)
    result.depth = levels["n"]
    result.notes.append("async level = one asyncio.gather over all packed chunks (no concurrency cap)")
    return str(text)


if __name__ == "__main__":
    sys.exit(run_peer("llamaindex-tree", body))
