"""LangGraph map-reduce, as in LangChain's "Summarize Text" tutorial (Send fan-out, collapse loop, final reduce)."""

# No `from __future__ import annotations`: LangGraph evaluates the TypedDict state annotations at run time.
import asyncio
import operator
import sys
from typing import Annotated, Literal, TypedDict

from common import PeerArgs, PeerResult, run_peer
from langchain_mapreduce import make_llm

CHUNK_TOKENS = 1000  # the tutorial's CharacterTextSplitter chunk_size
TOKEN_MAX = 1000  # the tutorial's token_max
RECURSION_LIMIT = 10  # the tutorial's astream config


def body(args: PeerArgs, result: PeerResult) -> str:
    from langchain_classic.chains.combine_documents.reduce import acollapse_docs, split_list_of_docs
    from langchain_core.documents import Document
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_text_splitters import CharacterTextSplitter
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    llm = make_llm(args)
    # Prompts verbatim from the tutorial (including its literal "\\n\\n").
    map_prompt = ChatPromptTemplate.from_messages(
        [("system", "Write a concise summary of the following:\\n\\n{context}")]
    )
    reduce_template = """
The following is a set of summaries:
{docs}
Take these and distill it into a final, consolidated summary
of the main themes.
"""
    reduce_prompt = ChatPromptTemplate([("human", reduce_template)])
    # The tutorial's splitter; cl100k instead of the default gpt2 encoding (not available offline).
    splitter = CharacterTextSplitter.from_tiktoken_encoder(
        encoding_name="cl100k_base", chunk_size=CHUNK_TOKENS, chunk_overlap=0
    )
    contents = splitter.split_text(args.doc.read_text(encoding="utf-8"))
    result.chunks = len(contents)
    result.chunk_tokens = CHUNK_TOKENS
    rounds = {"n": 0}

    def length_function(documents: list[Document]) -> int:
        return sum(llm.get_num_tokens(doc.page_content) for doc in documents)

    class OverallState(TypedDict):
        contents: list[str]
        summaries: Annotated[list, operator.add]
        collapsed_summaries: list[Document]
        final_summary: str

    class SummaryState(TypedDict):
        content: str

    async def generate_summary(state: SummaryState):
        prompt = map_prompt.invoke(state["content"])
        response = await llm.ainvoke(prompt)
        return {"summaries": [response.content]}

    def map_summaries(state: OverallState):
        return [Send("generate_summary", {"content": content}) for content in state["contents"]]

    def collect_summaries(state: OverallState):
        return {"collapsed_summaries": [Document(summary) for summary in state["summaries"]]}

    async def _reduce(input: dict) -> str:
        prompt = reduce_prompt.invoke(input)
        response = await llm.ainvoke(prompt)
        return response.content

    async def collapse_summaries(state: OverallState):
        rounds["n"] += 1
        doc_lists = split_list_of_docs(state["collapsed_summaries"], length_function, TOKEN_MAX)
        results = []
        for doc_list in doc_lists:
            results.append(await acollapse_docs(doc_list, _reduce))
        return {"collapsed_summaries": results}

    def should_collapse(state: OverallState) -> Literal["collapse_summaries", "generate_final_summary"]:
        if length_function(state["collapsed_summaries"]) > TOKEN_MAX:
            return "collapse_summaries"
        return "generate_final_summary"

    async def generate_final_summary(state: OverallState):
        response = await _reduce(state["collapsed_summaries"])
        return {"final_summary": response}

    graph = StateGraph(OverallState)
    graph.add_node("generate_summary", generate_summary)
    graph.add_node("collect_summaries", collect_summaries)
    graph.add_node("collapse_summaries", collapse_summaries)
    graph.add_node("generate_final_summary", generate_final_summary)
    graph.add_conditional_edges(START, map_summaries, ["generate_summary"])
    graph.add_edge("generate_summary", "collect_summaries")
    graph.add_conditional_edges("collect_summaries", should_collapse)
    graph.add_conditional_edges("collapse_summaries", should_collapse)
    graph.add_edge("generate_final_summary", END)
    app = graph.compile()

    async def go() -> str:
        final = ""
        config = {"recursion_limit": RECURSION_LIMIT, "max_concurrency": args.concurrency}
        async for step in app.astream({"contents": contents}, config):
            if "generate_final_summary" in step:
                final = step["generate_final_summary"]["final_summary"]
        return final

    text = asyncio.run(go())
    result.depth = 2 + rounds["n"]
    result.notes.append("collapse calls within a round run one after another (tutorial code)")
    return text


if __name__ == "__main__":
    sys.exit(run_peer("langgraph-mapreduce", body))
