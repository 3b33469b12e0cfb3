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


# Number-dense openings: the sentences a summary keeps are far denser in tokens per word than the talk or prose
# around them (section numbers read aloud, account codes, figures), so a token budget sized by the document's
# average ratio runs out long before the words asked for.
_TALK_WHO = ["staff", "the neighbors", "the housing department", "our office", "the planning commission",
             "the business association", "the tenants", "the library board", "the parks committee", "public works"]
_TALK_DID = ["worked hard with", "heard a lot from", "met twice with", "sent a letter to", "listened to",
             "answered the questions of", "walked the corridor with", "held a long meeting with"]
_TALK_WHY = ["because they were worried about what this would mean for them",
             "so that nobody would be surprised when the work begins",
             "and most of their concerns have been answered tonight",
             "and I hope we can come back to it when we know more",
             "because families want to know whether they can stay",
             "and they asked for a report back in six months"]  # fmt: skip
_COUNCIL_NAMES = ["Councilwoman Price", "Councilmember Austin", "Vice Mayor Richardson", "Councilman Supernaw",
                  "Councilwoman Mungo", "Councilmember Pearce"]  # fmt: skip


def _talk(rng: random.Random) -> str:
    who, other = rng.sample(_TALK_WHO, 2)
    return f"I know that {who} {rng.choice(_TALK_DID)} {other} {rng.choice(_TALK_WHY)}"


def council_numbers(turns: int = 40, *, seed: int = 23) -> str:
    """A council agenda item read aloud (section numbers as a transcriber wrote them, the clerk's file codes),
    then plain discussion: what a summary leads with is twice as many tokens a word as the rest."""
    rng = random.Random(seed)
    out = [
        "Speaker 1: Item 12 is a report from Development Services, recommendation to declare ordinance amending "
        "the Long Beach Municipal Code by adopting interim provisions by amended sections 23.70 6.004. 23.70 "
        "6.006 and 23.7 6.0 32 of and adding a new section 2340 2.0 41 to the municipal code, relating to "
        "sections 21.15.1090(b)(3), 21.25.905(a)(1)(ii) and 21.31.245(c) of Title 21, files CF-17-0340-S5, "
        "CF-17-0341-S2 and CF-17-0342-S1 (LBMC-21.15.1090/21.25.905), read and adopted as read, citywide."
    ]
    for _ in range(turns):
        who = rng.choice(_COUNCIL_NAMES)
        said = ". ".join(_talk(rng) for _ in range(rng.randint(2, 3)))
        out.append(f"Speaker {rng.randint(2, 9)}: Thank you, {who}. {said}.")
    out.append("Speaker 1: Motion carries nine zero.")
    return "\n\n".join(out)


_BUDGET_TOPICS = ["the library branches", "street repair", "the fire stations", "youth sports", "the water plant",
                  "park maintenance", "the animal shelter", "senior meals"]  # fmt: skip


def budget_figures(paragraphs: int = 30, *, seed: int = 29) -> str:
    """A city budget report: its highlights are account lines (codes and figures), the rest plain prose."""
    rng = random.Random(seed)
    lines = []
    for topic in _BUDGET_TOPICS:
        fund, dept, obj = rng.randint(100, 699), rng.randint(1000, 9999), rng.randint(51000, 59999)
        lines.append(
            f"Account {fund}-{dept}-{obj}-000 ({topic}) rises from ${rng.randint(1, 99)},{rng.randint(100, 999)},"
            f"{rng.randint(100, 999)} to ${rng.randint(1, 99)},{rng.randint(100, 999)},{rng.randint(100, 999)} in "
            f"FY2025-26, {rng.choice('+-')}{rng.randint(1, 19)}% (GASB-34 Sch-{rng.randint(2, 9)}B)."
        )
    out = ["## Highlights", " ".join(lines), "## Services"]
    for _ in range(paragraphs):
        topic, other = rng.sample(_BUDGET_TOPICS, 2)
        out.append(
            f"The money for {topic} will be spent on the people who run it every day. Residents told us that "
            f"{topic} matters to them as much as {other}, and the council has listened to what they said. "
            f"Next year the city will look again at how {topic} is run and whether {other} needs more help."
        )
    return "\n\n".join(out)


_ZH_HERITAGE = [  # rare characters (old buildings' parts, places), codes and sums: ~0.6 characters a cl100k token
    "鄞州区瞿家湾聂氏祠堂的檩椽榫卯与鸱吻脊兽已朽蚀，修缮经费{a}.{b}万元",
    "甬江畔鲒埼亭旧址的碑碣漫漶难辨，须以桐油髹饰、以糯米灰浆甃砌，工期{m}个月",
    "邗江区邵伯埭的堰闸与婺源县篁岭的甃砌古道皆列入2025年第{m}批名录，鼋鼍形镇水兽{m}尊",
    "嵊泗渔港的礁岙与舴艋舟坞已圮，榫卯、斗拱与藻井的髹漆剥落{m}成，拨款{a}.{b}万元",
    "歙县棠樾牌坊的榫卯与鸱吻须以鳔胶粘补，黟县宏村的甃井与沟渠{m}处淤塞，经费{a}.{b}万元",
    "婺州窑址的匣钵与窑汗残片{m}百余件，邛崃窑的褐釉罐与鸮形壶亦有出土，整理经费{a}.{b}万元",
    "衢州峡川的碓房与磡头{m}座、鄣吴镇的箬竹与笕槽一并修缮，拨款{a}.{b}万元",
    "瓯海区泽雅的纸槽与水碓、缙云县仙都的岩宕{m}处列入名录，测绘经费{a}.{b}万元",
]
_ZH_PLAIN = ["这项工作关系到每一户居民的生活，街道和社区的同志们为此做了大量细致的工作",
             "很多老人希望以后还能住在这里，孩子们也希望上学的路能更安全一些",
             "今年的工作要在去年的基础上继续推进，把群众最关心的问题一件一件解决好",
             "有关部门已经多次听取了居民的意见，并且把大家的建议写进了明年的计划",
             "这件事拖了很久，今天终于有了结果，大家都说这是一件实实在在的好事"]  # fmt: skip


_ZH_TALK = ["我觉得这个方案大家都可以接受，但是还要再听听居民的意见", "我们下周再开一次会，把剩下的问题一起讨论清楚",
            "街道办已经和老人们谈过好几次了，他们最关心的是以后还能不能住在这里", "这件事拖了很久，今天终于有了结果，大家辛苦了",
            "我同意刚才的说法，不过钱的问题还要和财务部门再商量一下", "学校那边也希望早一点开工，孩子们每天走那条路很不安全",
            "我们要把工作做细一点，每一家都要去问一问，不要漏掉", "大家有什么想法现在都可以说，我们今天就是来听意见的",
            "这个事情我们去年就说过，今年一定要把它做好", "我们也要考虑到年轻人的想法，他们上班的时间比较早"]  # fmt: skip


def chinese_codes(turns: int = 40, *, seed: int = 31) -> str:
    """A Chinese meeting that opens with a report naming old buildings' parts and places in rare characters, with
    figures (~0.6 characters a cl100k token), then plain talk (~1 a token)."""
    rng = random.Random(seed)
    lines = [
        line.format(a=rng.randint(100, 999), b=rng.randint(10, 99), m=rng.randint(2, 9)) + "。"
        for line in _ZH_HERITAGE
    ]
    out = ["主持人：" + "".join(lines)]
    for _ in range(turns):
        out.append(f"发言人{rng.randint(2, 9)}：" + "".join(f"{s}。" for s in rng.sample(_ZH_TALK, 2)))
    return "\n\n".join(out)
