"""Generated documents of the shapes lengths are hard on (deterministic: the same text on every run).

Dialogue-heavy Chinese (a quarter of its characters punctuation), Chinese full of Latin terms and figures,
Japanese, English full of figures, hyphens and URLs, and documents shorter than the length a user may ask.
"""

from __future__ import annotations

import random

_ZH_NAMES = ["王小明", "李华", "张老师", "陈阿姨", "刘经理", "赵医生", "孙师傅", "周同学", "吴奶奶", "郑队长"]
_ZH_PLACES = [
    "图书馆",
    "菜市场",
    "火车站",
    "医院门口",
    "学校操场",
    "河边的茶馆",
    "村口的大树下",
    "新开的书店",
]
_ZH_THINGS = ["一封旧信", "三本书", "一把钥匙", "半袋大米", "一张地图", "那只黑猫", "一台收音机", "两张车票"]
_ZH_ASKS = ["你今天去哪里了", "这件事是真的吗", "我们什么时候出发", "你还记得他吗", "为什么不早点说",
            "钱够不够用", "明天会下雨吗", "你见过这个人吗"]  # fmt: skip
_ZH_ANSWERS = ["我去了{place}，看见了{thing}", "别着急，先把{thing}收好", "等到天亮，我们就去{place}",
               "当然记得，他在{place}等过我", "我怕你担心，所以没有告诉你", "不太够，还得去{place}借一点",
               "说不准，你带上{thing}吧", "见过一次，在{place}"]  # fmt: skip


def chinese_dialogue(paragraphs: int = 40, *, seed: int = 11) -> str:
    """A story told mostly in quoted dialogue: “……？”某人问。“……，”某人说，“……。”"""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(paragraphs):
        turns = []
        for _ in range(rng.randint(3, 5)):
            a, b = rng.sample(_ZH_NAMES, 2)
            answer = rng.choice(_ZH_ANSWERS).format(
                place=rng.choice(_ZH_PLACES), thing=rng.choice(_ZH_THINGS)
            )
            turns.append(f"“{rng.choice(_ZH_ASKS)}？”{a}问。“嗯，”{b}想了想，说，“{answer}。”")
        turns.append(f"{rng.choice(_ZH_NAMES)}点点头，转身往{rng.choice(_ZH_PLACES)}走去。")
        out.append("".join(turns))
    return "\n\n".join(out)


_TECH_SUBJECTS = ["公司", "研发团队", "运维部门", "数据平台组", "安全团队", "产品部", "客服中心", "财务部"]
_TECH_TERMS = ["Kubernetes集群", "GPT-4o模型", "PostgreSQL 16数据库", "AWS S3存储", "Redis缓存", "CI/CD流水线",
               "React前端", "Python 3.12服务", "Kafka消息队列", "API网关"]  # fmt: skip
_TECH_VERBS = ["部署了", "升级了", "迁移了", "测试了", "优化了", "替换了", "扩容了", "监控了"]
_TECH_RESULTS = ["延迟从{a}毫秒降到{b}毫秒", "成本下降了{p}%", "吞吐量达到每秒{n}次请求", "故障率降低到{q}%",
                 "用户数增长到{n}万", "处理时间缩短了{p}%", "存储用量为{a}TB"]  # fmt: skip


def chinese_with_latin(paragraphs: int = 30, *, seed: int = 5) -> str:
    """A Chinese technical report: Latin product names, versions, dates and percentages in most sentences."""
    rng = random.Random(seed)
    out: list[str] = []
    for p in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(3, 5)):
            result = rng.choice(_TECH_RESULTS).format(
                a=rng.randint(20, 900), b=rng.randint(5, 19), p=rng.randint(3, 60),
                n=rng.randint(100, 9999), q=round(rng.uniform(0.1, 5), 2),
            )  # fmt: skip
            sentences.append(
                f"2025年第{rng.randint(1, 4)}季度，{rng.choice(_TECH_SUBJECTS)}在{rng.choice(_TECH_TERMS)}上"
                f"{rng.choice(_TECH_VERBS)}{rng.choice(_TECH_TERMS)}，{result}。"
            )
        out.append(f"## 第{p + 1}节\n\n" + "".join(sentences) if p % 6 == 0 else "".join(sentences))
    return "\n\n".join(out)


_JA_SUBJECTS = [
    "市役所",
    "地元の学校",
    "商店街の組合",
    "鉄道会社",
    "県の観光課",
    "病院の職員",
    "農家の人々",
    "図書館",
]
_JA_ACTIONS = [
    "新しい計画を発表した",
    "住民との話し合いを開いた",
    "予算の見直しを始めた",
    "調査の結果をまとめた",
    "駅前の広場を整備した",
    "子ども向けの教室を増やした",
    "古い建物の修理を決めた",
    "夜のバスを走らせた",
]
_JA_REASONS = ["人口が減っているため", "観光客が増えたので", "去年の台風の被害を受けて", "利用者の声にこたえて",
               "費用を抑えるために", "安全を高めるため"]  # fmt: skip


def japanese(paragraphs: int = 30, *, seed: int = 9) -> str:
    """Japanese news-like prose: kanji and kana, 、and 。, some figures."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(paragraphs):
        sentences = [
            f"{rng.choice(_JA_REASONS)}、{rng.choice(_JA_SUBJECTS)}は{rng.randint(2020, 2026)}年"
            f"{rng.randint(1, 12)}月に{rng.choice(_JA_ACTIONS)}。"
            for _ in range(rng.randint(3, 5))
        ]
        sentences.append(f"関係者によると、{rng.choice(_JA_SUBJECTS)}も同じような対応を検討している。")
        out.append("".join(sentences))
    return "\n\n".join(out)


_EN_AGENCIES = [
    "the agency",
    "GAO",
    "the U.S. Treasury",
    "the state's DOT",
    "a third-party auditor",
    "the city",
]
_EN_FACTS = [
    "spent ${a}.{b} million on {n} follow-up audits in FY{y}",
    "reported a {p}% year-over-year rise (see https://example.gov/reports/fy{y}-q{q}.pdf)",
    "cut the back-log of long-term claims from {n},{b}00 to {a},{b}50 by {y}-0{q}-15",
    "found that 1-in-{q} self-reported cost-share figures were mis-stated, e.g. ${a},{b}00 vs. ${n}",
    "updated its well-known rule (42 U.S.C. {n}(b)(3)) so that e-filing is state-of-the-art",
    "hasn't met {q} of its {n} performance goals since {y}; officials don't expect to until {y}-{q}",
]


def english_figures(paragraphs: int = 30, *, seed: int = 3) -> str:
    """An agency report in English: figures, dollar amounts, dates, hyphenated words, URLs, U.S. Code cites."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(3, 5)):
            fact = rng.choice(_EN_FACTS).format(
                a=rng.randint(2, 99), b=rng.randint(1, 9), n=rng.randint(100, 999), y=rng.randint(2019, 2025),
                p=round(rng.uniform(1, 40), 1), q=rng.randint(2, 9),
            )  # fmt: skip
            who = rng.choice(_EN_AGENCIES)
            sentences.append(f"{who[0].upper()}{who[1:]} {fact}.")
        out.append(" ".join(sentences))
    return "\n\n".join(out)


SHORT_EN = (
    "The lighthouse keeper lit the lamp at dusk. Ships passed safely through the strait that night. "
    "In the morning he wrote the log, mended a net and slept until noon."
)
SHORT_ZH = (
    "灯塔看守人在黄昏时点亮了灯。那天夜里，三艘渔船安全地通过了海峡。早上他写完日志，补好渔网，一直睡到中午。"
)

GENERATED = {
    "zh_dialogue": chinese_dialogue,
    "zh_latin_figures": chinese_with_latin,
    "ja_news": japanese,
    "en_figures_urls": english_figures,
}
