"""OpenAI cookbook "Summarizing long documents": summarize(text, detail=0.1, summarize_recursively=True).

Re-implemented from the cookbook's notebook (same chunking, prompts and loop), sequential, openai SDK defaults.
One change forced by the provider: the cookbook's newest revision calls the Responses API, which Moonshot does
not serve, so calls go through chat.completions (as the notebook's earlier revision did).
"""

from __future__ import annotations

import sys

from common import PeerArgs, PeerResult, run_peer

DETAIL = 0.1  # the value the cookbook uses for its summarize_recursively example


class Cookbook:
    """The notebook's functions, bound to one client/model and recording what they did."""

    def __init__(self, args: PeerArgs, result: PeerResult) -> None:
        import tiktoken
        from openai import OpenAI

        self.client = OpenAI(base_url=args.base_url, api_key=args.api_key)
        self.model = args.model
        self.result = result
        self.encoding = tiktoken.encoding_for_model("gpt-4-turbo")
        self.dropped = 0

    def tokenize(self, text: str) -> list[int]:
        return self.encoding.encode(text)

    def get_chat_completion(self, messages, model):
        response = self.client.chat.completions.create(model=model, messages=messages, temperature=0)
        return response.choices[0].message.content

    def chunk_on_delimiter(self, input_string: str, max_tokens: int, delimiter: str) -> list[str]:
        chunks = input_string.split(delimiter)
        combined, _, dropped = self.combine_chunks_with_no_minimum(
            chunks, max_tokens, chunk_delimiter=delimiter, add_ellipsis_for_overflow=True
        )
        self.dropped = dropped
        return [f"{chunk}{delimiter}" for chunk in combined]

    def combine_chunks_with_no_minimum(self, chunks, max_tokens, chunk_delimiter="\n\n", header=None,
                                       add_ellipsis_for_overflow=False):
        dropped_chunk_count = 0
        output, output_indices = [], []
        candidate = [] if header is None else [header]
        candidate_indices: list[int] = []
        for chunk_i, chunk in enumerate(chunks):
            chunk_with_header = [chunk] if header is None else [header, chunk]
            if len(self.tokenize(chunk_delimiter.join(chunk_with_header))) > max_tokens:
                # The cookbook drops a piece longer than max_tokens (an ellipsis stands in for it).
                if add_ellipsis_for_overflow and len(
                    self.tokenize(chunk_delimiter.join(candidate + ["..."]))
                ) <= max_tokens:
                    candidate.append("...")
                    dropped_chunk_count += 1
                continue
            extended = len(self.tokenize(chunk_delimiter.join(candidate + [chunk])))
            if extended > max_tokens:
                output.append(chunk_delimiter.join(candidate))
                output_indices.append(candidate_indices)
                candidate = chunk_with_header
                candidate_indices = [chunk_i]
            else:
                candidate.append(chunk)
                candidate_indices.append(chunk_i)
        if (header is not None and len(candidate) > 1) or (header is None and len(candidate) > 0):
            output.append(chunk_delimiter.join(candidate))
            output_indices.append(candidate_indices)
        return output, output_indices, dropped_chunk_count

    def summarize(self, text: str, detail: float = 0, additional_instructions: str | None = None,
                  minimum_chunk_size: int = 500, chunk_delimiter: str = ".",
                  summarize_recursively: bool = False) -> str:
        assert 0 <= detail <= 1
        max_chunks = len(self.chunk_on_delimiter(text, minimum_chunk_size, chunk_delimiter))
        min_chunks = 1
        num_chunks = int(min_chunks + detail * (max_chunks - min_chunks))
        document_length = len(self.tokenize(text))
        chunk_size = max(minimum_chunk_size, document_length // num_chunks)
        text_chunks = self.chunk_on_delimiter(text, chunk_size, chunk_delimiter)
        self.result.chunks = len(text_chunks)
        self.result.chunk_tokens = chunk_size
        if self.dropped:
            self.result.notes.append(
                f"{self.dropped} pieces longer than {chunk_size} tokens between '{chunk_delimiter}' "
                "delimiters were dropped (replaced by '...')"
            )
        system_message_content = "Rewrite this text in summarized form."
        if additional_instructions is not None:
            system_message_content += f"\n\n{additional_instructions}"
        accumulated_summaries: list[str] = []
        for chunk in text_chunks:
            if summarize_recursively and accumulated_summaries:
                accumulated_summaries_string = "\n\n".join(accumulated_summaries)
                user_message_content = (
                    f"Previous summaries:\n\n{accumulated_summaries_string}\n\nText to summarize next:\n\n{chunk}"
                )
            else:
                user_message_content = chunk
            messages = [
                {"role": "system", "content": system_message_content},
                {"role": "user", "content": user_message_content},
            ]
            accumulated_summaries.append(self.get_chat_completion(messages, model=self.model))
            self.result.depth = len(accumulated_summaries)
        return "\n\n".join(accumulated_summaries)


def make_body(recursive: bool):
    """The run: the cookbook's recursive example, or (``--flat``) the same with summarize_recursively=False."""

    def body(args: PeerArgs, result: PeerResult) -> str:
        result.depth_kind = "chain" if recursive else "tree"
        text = args.doc.read_text(encoding="utf-8")
        summary = Cookbook(args, result).summarize(text, detail=DETAIL, summarize_recursively=recursive)
        if not recursive:
            result.depth = 1  # independent chunk summaries, concatenated: no summary-of-summaries level
        return summary

    return body


if __name__ == "__main__":
    flat = "--flat" in sys.argv
    if flat:
        sys.argv.remove("--flat")
    sys.exit(run_peer("cookbook-flat" if flat else "cookbook", make_body(recursive=not flat)))
