"""Chinese meetings: spoken Chinese as the offline backend cleans, splits and scores it.

A Chinese transcript (VCSum's recorded panels, the project's dev meetings) differs from written Chinese in three
ways that cost a summary characters, and Chinese ROUGE counts characters:

- Stutters and tags: "我我觉得", "这这两个", "很很很", "就是说就是说", "，对吧？"; turns opened by a backchannel
  ("对对对，", "好，", "行，") and hesitations standing alone ("那个，", "就是，"). They are cut from the turn.
- Run-on sentences: a speaker talks in comma-spliced clauses for 100-200 characters before a full stop, and one
  such "sentence" mixes a point with its lead-in; one over ``RUN_ON`` characters is taken in clause groups.
- Questions: in a meeting the question asks and the answer tells; a summary reports what was answered or
  decided, so a sentence that ends in a question mark ranks at ``QUESTION_WEIGHT`` of its score.

Measured 2026-12-06 on the Chinese dev meetings (VCSum's 5 public samples in both shapes, the project's 5 dev
meetings), tome ROUGE-1/2/L averaged over 7 lengths (the reference's, 100-400 characters); bench/results/eval.md,
"Chinese meetings". Tried and rejected there: cutting clause-opening discourse words ("然后", "就是说", "那么"),
a lower score for thanks and moderation ("感谢", "有请", "下一个问题"), a prior on the meeting's opening, coverage
of the meeting's recurring bigrams as the selection order, other length dampings and TextRank shares.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pipeline.scripts import HAN

_HAN = f"[{HAN}]"
# Where a clause starts: the text's start, or after clause punctuation (a turn's label is taken off first).
_CLAUSE_START = r"(?:(?<=^)|(?<=[，。？！、；：,.?!;:\s]))"
# A clause opened by assent or a backchannel: "对对对，", "好，", "行。", "嗯嗯，", "是的，".
_BACKCHANNEL = re.compile(rf"{_CLAUSE_START}(?:(?:对|好|行|嗯|啊|哦|噢|是的|没错|好的)+[，,。！!、])+")
# Hesitations standing alone between commas: "那个，", "就是，", "这个，", "然后，".
_HESITATION = re.compile(rf"{_CLAUSE_START}(?:那个|这个|就是|然后)[，,、]")
# Stutters: 2-4 characters said again at once ("就是说就是说", "我们我们"), one character said three times or more
# ("很很很", "对对对"), a pronoun or demonstrative said twice ("我我觉得", "这这两个"). Other doubled characters stay:
# Chinese doubles words on purpose ("谢谢", "常常", "看看", "人人").
_STUTTER_RUN = re.compile(rf"({_HAN}{{2,4}})\1+")
_STUTTER_CHAR = re.compile(rf"({_HAN})\1{{2,}}")
_STUTTER_PRONOUN = re.compile(r"([我你他她它这那])\1+")
# A tag question closing a clause: "，对吧？", "，是吧", "，是不是？".
_TAG = re.compile(r"[，,](?:对吧|是吧|对不对|是不是|对不)(?=[。？！?!]|$)")
_LEADING = re.compile(r"^[，,、。；;：:\s]+")

# A sentence over this many characters is taken in groups of clauses of RUN_ON / 2 to RUN_ON characters. Mean
# tome R-1/2/L, VCSum 29.02 / 9.52 / 14.19 -> 30.46 / 10.04 / 14.65 at 80 (60: 30.41 / 9.91 / 15.16, 100: 29.71 /
# 9.72 / 14.51), project dev meetings 41.28 / 19.45 / 20.52 -> 41.45 / 19.71 / 20.53 (60: 41.26 / 19.65 / 20.51).
RUN_ON = 80
_CLAUSE = re.compile(r"(?<=[，,；;])")
# A question's score is multiplied by this: VCSum 28.60 / 9.07 / 14.00 -> 29.02 / 9.52 / 14.19, project dev
# meetings 41.19 / 19.54 / 20.30 -> 41.28 / 19.45 / 20.52 (the same from 0.3 to 0.7; 0: project 41.30 / 19.70 /
# 20.40, VCSum 28.81 / 9.44 / 14.19).
QUESTION_WEIGHT = 0.5
_QUESTION = re.compile(r"[？?][\s”」』\"]*$")


def clean_talk(body: str) -> str:
    """A Chinese turn (its speaker's label taken off) without stutters, tags, backchannels and hesitations."""
    body = _STUTTER_PRONOUN.sub(r"\1", _STUTTER_CHAR.sub(r"\1", _STUTTER_RUN.sub(r"\1", body)))
    body = _TAG.sub("", body)
    for _ in range(2):  # "对，那个，": what one pass uncovers, the next removes
        body = _HESITATION.sub("", _BACKCHANNEL.sub("", body))
    return _LEADING.sub("", body)


def split_run_ons(sentences: Sequence[str]) -> list[str]:
    """``sentences`` with each one over ``RUN_ON`` characters cut into groups of whole clauses."""
    out: list[str] = []
    for sentence in sentences:
        if len(sentence) <= RUN_ON:
            out.append(sentence)
            continue
        group = ""
        for clause in _CLAUSE.split(sentence):
            if len(group) >= RUN_ON // 2 and len(group) + len(clause) > RUN_ON:
                out.append(group)
                group = ""
            group += clause
        if group:
            out.append(group)
    return out


def questions_lowered(sentences: Sequence[str], scores: Sequence[float], spoken_chinese: bool) -> list[float]:
    """``scores`` with each question's at ``QUESTION_WEIGHT`` when the text is spoken Chinese, else as they are."""
    if not spoken_chinese:
        return list(scores)
    return [s * QUESTION_WEIGHT if _QUESTION.search(t) else s for t, s in zip(sentences, scores, strict=True)]
