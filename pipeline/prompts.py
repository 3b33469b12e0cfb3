"""Prompt templates for map (chunk) and reduce (merge) calls: Chinese ones, and English ones for any language.

Follows Moonshot's prompt guide: a system role holding the fixed rules (short: every call pays for them), the
material inside delimiters (<text>, <summary n= section=>), carried context inside <context> (background only,
as the system message says) and an explicit length ("at most N words" / "at most N characters" / "不超过N字").
The templates are versioned by configs/prompts.toml ("map-v4", "reduce-v4"); change a template -> bump its
version, which is part of every cache key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.language import counts_characters, language_name
from pipeline.llm.types import Message

# Retries after a cut-off answer ask for this share of the original length.
STRICT_FACTOR = 0.7

_LENGTH_RE = re.compile(r"at most (\d+) words|(?:不超过(\d+)字|at most (\d+) characters)")
_CLOSING = re.compile(r"</(text|context|summary|focus)\s*>", re.IGNORECASE)
_FOCUS_RE = re.compile(r"<focus>\n(.*?)\n</focus>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class MergeInput:
    """One summary fed to a merge call, with the section titles it covers."""

    n: int
    section: str | None
    text: str


def _escape(text: str) -> str:
    """Stop material from closing our delimiters early (a literal "</text>" inside a book)."""
    return _CLOSING.sub(lambda m: f"</ {m.group(1)}>", text)


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace("\n", " ")


def length_words(words: int, language: str, unit: str = "words") -> str:
    """The explicit length phrase the prompt states (and the test server and extractive backend read).

    Chinese states characters (字) whatever the unit: a Chinese word count is its character count.
    """
    if _chinese(language):
        return f"不超过{words}字"
    if unit == "chars" or counts_characters(language):
        return f"at most {words} characters"
    return f"at most {words} words"


def parse_length(text: str) -> tuple[int, str] | None:
    """The length a prompt asks for: ``(N, "words"|"chars")``, or None."""
    match = _LENGTH_RE.search(text)
    if not match:
        return None
    if match.group(1):
        return int(match.group(1)), "words"
    return int(match.group(2) or match.group(3)), "chars"


def _chinese(language: str) -> bool:
    """Chinese documents get Chinese instructions; every other language English ones naming it."""
    return language == "zh"


def strict_words(words: int) -> int:
    """The shorter length a retry asks for after a cut-off answer."""
    return max(10, int(words * STRICT_FACTOR))


# The fixed instructions live in the system message, one per language and identical for map and merge calls:
# providers' automatic prefix caching (Kimi's bills cached input at a quarter) then serves it from cache in
# every call. They are kept short because every call pays for them again (raw, before any cache discount):
# bench/results/billing.md measures where prompt tokens go. The user message keeps what differs per call.
def _system(language: str) -> str:
    if _chinese(language):
        return (
            "只依据给定材料写忠实、简洁的中文摘要，不编造。按原文顺序保留主要事件、人物、论点、事实、人名、数字和"
            "章节标题，删去重复。context 标签中是前文背景，只用于理解指代，不要为它写摘要。只输出摘要。"
        )
    name = language_name(language)
    return (
        f"Write faithful, concise summaries in {name} from the given material only; never invent facts. Keep "
        "the main events, people, arguments, facts, names, numbers and section titles, in order; drop repetition. "
        "Context tags hold earlier background, for names and references only: never summarise it. Output only "
        "the summary."
    )


def _context_block(context: str, language: str) -> str:
    """Carried context; what it is for is said once, in the system message (cached), not in every call."""
    if not context:
        return ""
    return f"<context>\n{_escape(context)}\n</context>\n\n"


def _focus_block(focus: str, language: str, *, final: bool) -> str:
    """The question a focused summary answers, and what to keep (empty without --focus)."""
    if not focus:
        return ""
    if _chinese(language):
        note = (
            "只保留有助于回答 focus 标签中问题的内容（事实、决定、理由、人物、数字），其余略去；"
            + ("最终摘要要直接回答这个问题。" if final else "如果这部分与问题无关，只写一句“本部分与问题无关。”")
        )
    else:
        note = (
            "Keep only what helps answer the question in the focus tags (facts, decisions, reasons, people, "
            "numbers) and leave out the rest. "
            + (
                "The final summary answers the question directly."
                if final
                else 'If this part says nothing about it, write only "Nothing here about the question."'
            )
        )
    return f"<focus>\n{_escape(focus)}\n</focus>\n{note}\n\n"


def focus_of(prompt: str) -> str:
    """The question inside a prompt's focus tags ("" when it has none): what the offline backend reads."""
    match = _FOCUS_RE.search(prompt)
    return match.group(1).strip() if match else ""


def _strict_note(language: str) -> str:
    if _chinese(language):
        return "上一次的回答超出了长度。字数上限是硬性要求，宁短勿长。\n"
    return "Your previous answer was too long. The length limit is strict: stay well under it.\n"


def map_messages(
    text: str,
    *,
    title: str,
    part: int,
    parts: int,
    section: str | None,
    context: str,
    words: int,
    language: str,
    strict: bool = False,
    focus: str = "",
    unit: str = "words",
) -> tuple[Message, ...]:
    """System + user messages summarising one chunk (``part`` is 1-based); ``focus``: the question to keep to."""
    cjk = _chinese(language)
    length = length_words(words, language, unit)
    if cjk:
        where = f"它是《{title}》的第{part}部分（共{parts}部分）" + (
            f"，所在章节：{section}" if section else ""
        )
        head = f"请为下面 text 标签中的文本写摘要。{where}。\n\n"
        steps = f"摘要{length}。\n"
    else:
        where = f'It is part {part} of {parts} of "{title}"' + (
            f', in the section "{section}"' if section else ""
        )
        head = f"Summarise the text in the text tags. {where}.\n\n"
        steps = f"Write it in {language_name(language)}, {length}.\n"
    user = (
        head
        + _focus_block(focus, language, final=parts == 1)
        + _context_block(context, language)
        + f"<text>\n{_escape(text)}\n</text>\n\n"
        + steps
        + (_strict_note(language) if strict else "")
    )
    return (Message("system", _system(language)), Message("user", user))


def merge_messages(
    summaries: list[MergeInput],
    *,
    title: str,
    final: bool,
    context: str,
    words: int,
    language: str,
    strict: bool = False,
    focus: str = "",
    unit: str = "words",
    cite: bool = False,
) -> tuple[Message, ...]:
    """System + user messages merging consecutive summaries into one (``final`` = the whole document's).

    ``cite``: each sentence is to name the summaries it rests on by their n, in square brackets.
    """
    cjk = _chinese(language)
    length = length_words(words, language, unit)
    blocks = "\n".join(summary_block(s) for s in summaries)
    if cjk:
        goal = f"写出《{title}》全书的最终摘要" if final else "把它们合并成这一部分的一篇摘要"
        head = f"下面 summary 标签中是《{title}》中连续各部分的摘要，按原文顺序排列。请{goal}。\n\n"
        steps = f"摘要{length}。\n" + (CITE_ZH if cite else "")
    else:
        goal = (
            f'write the final summary of the whole of "{title}"'
            if final
            else "merge them into one summary of this part"
        )
        head = f'The summary tags hold summaries of consecutive parts of "{title}", in order: {goal}.\n\n'
        steps = f"Write it in {language_name(language)}, {length}.\n" + (CITE_EN if cite else "")
    user = (
        head
        + _focus_block(focus, language, final=final)
        + _context_block(context, language)
        + blocks
        + "\n\n"
        + steps
        + (_strict_note(language) if strict else "")
    )
    return (Message("system", _system(language)), Message("user", user))


CITE_EN = "After each sentence, name the summaries it draws on by their n in square brackets, e.g. [2] or [1, 3].\n"
CITE_ZH = "每句话之后用方括号注明它依据的摘要编号 n，例如 [2] 或 [1, 3]。\n"
_CITATION = re.compile(r"\s*[\[［【]\s*\d{1,3}(?:\s*[,，、]\s*\d{1,3})*\s*[\]］】]")


def strip_citations(text: str) -> str:
    """``text`` without the [n] citations a merge wrote (for the reader, and for the next merge's prompt)."""
    return _CITATION.sub("", text)


def summary_block(summary: MergeInput) -> str:
    """One summary exactly as a merge prompt carries it (what packing measures)."""
    section = f' section="{_attr(summary.section)}"' if summary.section else ""
    return f'<summary n="{summary.n}"{section}>\n{_escape(summary.text)}\n</summary>'


def merged_source(summaries: list[MergeInput]) -> str:
    """The text a merge call summarises, for backends that do not read prompts."""
    return "\n\n".join(s.text for s in summaries)
