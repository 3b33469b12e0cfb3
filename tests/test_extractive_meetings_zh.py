"""Chinese meetings in the offline backend: stutters and backchannels cut, run-on sentences taken in clause
groups, questions ranked below what answers them (pipeline.extractive_meetings_zh)."""

from __future__ import annotations

import pytest

from pipeline.extractive import extract
from pipeline.extractive_clean import clean_turn
from pipeline.extractive_meetings_zh import (
    QUESTION_WEIGHT,
    RUN_ON,
    clean_talk,
    questions_lowered,
    split_run_ons,
)
from pipeline.lengths import measure
from pipeline.tokens import TiktokenCounter

COUNTER = TiktokenCounter()


@pytest.mark.parametrize(
    ("said", "kept"),
    [
        ("对对对，目标是十四天。", "目标是十四天。"),
        ("好，那我们看一下下个冲刺的计划。", "那我们看一下下个冲刺的计划。"),
        ("觉得我我觉得这这两个问题都非常好。", "觉得我觉得这两个问题都非常好。"),
        ("就是说就是说现阶段电池以锂离子电池为主。", "就是说现阶段电池以锂离子电池为主。"),
        ("那个，我再确认一下价格，你看行不行，对吧？", "我再确认一下价格，你看行不行？"),
        ("元宇宙是一个很很很宽泛的概念。", "元宇宙是一个很宽泛的概念。"),
    ],
)
def test_stutters_backchannels_hesitations_and_tags_are_cut(said, kept):
    assert clean_talk(said) == kept
    assert clean_turn(f"王经理：{said}", cjk=True) == f"王经理：{kept}"


def test_words_chinese_doubles_on_purpose_stay():
    for text in ("谢谢大家，我们常常要看看数据。", "人人都要试试，天天练习。", "那边的情况我们刚刚说过。"):
        assert clean_talk(text) == text


def test_english_turns_are_not_touched_by_the_chinese_cleaning():
    assert clean_turn("Project Manager: Okay okay, so so the the remote.", cjk=False).startswith(
        "Project Manager: Okay"
    )


def test_a_run_on_sentence_is_taken_in_groups_of_whole_clauses():
    clauses = [f"第{n}个议题我们讨论了预算和人员安排的问题，" for n in range(1, 9)]
    run_on = "".join(clauses)[:-1] + "。"
    assert len(run_on) > 2 * RUN_ON
    parts = split_run_ons(["这句很短。", run_on])
    assert parts[0] == "这句很短。"
    groups = parts[1:]
    assert "".join(groups) == run_on and len(groups) >= 3
    assert all(len(g) <= RUN_ON for g in groups)
    assert all(len(g) >= RUN_ON // 2 for g in groups[:-1])
    assert all(g.endswith(("，", "。")) for g in groups)  # cut only after a clause


def test_questions_rank_below_what_answers_them_only_in_spoken_chinese():
    sentences = ["预算怎么分配？", "预算按六四分配。", "“还有别的吗？”"]
    scores = [1.0, 0.8, 0.6]
    assert questions_lowered(sentences, scores, True) == [QUESTION_WEIGHT, 0.8, 0.6 * QUESTION_WEIGHT]
    assert questions_lowered(sentences, scores, False) == scores


def test_a_chinese_meeting_summary_keeps_the_answer_and_drops_the_stutter():
    turns = [
        "主持人：那我们今天讨论一下新款手表发布会的时间，发布会的时间到底定在哪一天？",
        "王经理：对对对，发布会的时间我我建议定在九月二十六号，发布会之后预售一周，十月一号正式开售。",
        "陈工：硬件这边表扣模具七月底之前改完，八月中旬开始量产，发布会之前备齐十五万只首批货。",
        "小李：软件这边睡眠分析的准确率是百分之八十二，八月底之前要补两百人的测试数据。",
        "赵姐：场地这边九月二十六号可以订，发布会的场地定金本周交，物料准备两套。",
    ]
    document = "\n".join(turns * 2)
    out = extract(document, language="zh", max_units=120, max_tokens=4000, counter=COUNTER, unit="chars")
    assert "九月二十六号" in out and "我我" not in out and "对对对" not in out
    assert "？" not in out  # the question the answers share their words with is not what the summary keeps
    assert measure(out, "chars") <= 120


def test_the_point_inside_a_run_on_turn_can_be_kept_without_its_lead_in():
    lead_in = "我先简单说一下背景，上个季度大家都很辛苦，各个部门也都提了不少意见，今天难得人到得比较齐，会议室也是今天临时换的，茶水也准备好了，"
    point = "所以我们建议发布会定在九月二十六号，预售一周之后十月一号正式开售，首批备货十五万只，"
    turns = [
        "王经理：发布会的日期我同意，十月开售也来得及。",
        f"李总：{lead_in}{point}另外年会的事情下次再说。",
        "陈工：首批备货的数量没问题，九月就能备齐。",
    ]
    out = extract("\n".join(turns), language="zh", max_units=80, max_tokens=4000, counter=COUNTER, unit="chars")
    # The turn runs on for 120 characters: whole, it never fits; its head is only the lead-in.
    assert point.rstrip("，") in out and "背景" not in out
