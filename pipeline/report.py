"""The HTML report: one self-contained file (inline CSS and JS, no network) to read and check a summary.

It shows the final summary; clicking a sentence highlights its sources and opens the chain down to the
original passages with their pages. Below: section summaries by chapter, a picture of the tree (levels,
fan-in, carried context, cut-off and split calls) and usage and cost. English, Chinese or Japanese labels by the
summary's language; one column on a phone (sources under the summary). Built from the JSON a run writes
(``<name>.summary.json``).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from pipeline.language import is_cjk

_LABELS = {
    "en": {
        "summary": "Summary",
        "hint": "Click or tap a sentence to see where it comes from.",
        "sources": "Sources",
        "pick": "Pick a sentence of the summary.",
        "sections": "Section summaries",
        "tree": "The summary tree",
        "usage": "Usage and cost",
        "level": "Level",
        "page": "p.",
        "pages": "pp.",
        "chars": "characters",
        "passage": "Original passage",
        "nosource": "No source found for this sentence.",
        "calls": "calls",
        "cached": "cached",
        "prompt": "prompt tokens",
        "completion": "completion tokens",
        "cost": "cost",
        "truncated": "cut off",
        "trimmed": "cut off, kept to its last sentence",
        "splits": "split",
        "retries": "retried",
        "context": "carried context",
        "legend_context": "carried context from an earlier call",
        "legend_cut": "cut off at max_tokens",
        "legend_split": "input split / retried",
        "legend_cached": "from the cache",
        "cited": "cited by the model",
        "backend": "backend",
        "model": "model",
        "run": "run",
    },
    "zh": {
        "summary": "摘要",
        "hint": "点击摘要中的句子，查看它出自原文何处。",
        "sources": "出处",
        "pick": "请选择摘要中的一句话。",
        "sections": "分章摘要",
        "tree": "摘要树",
        "usage": "用量与费用",
        "level": "第{}层",
        "page": "第{}页",
        "pages": "第{}页",
        "chars": "字符",
        "passage": "原文段落",
        "nosource": "没有找到这句话的出处。",
        "calls": "调用次数",
        "cached": "缓存命中",
        "prompt": "输入 token",
        "completion": "输出 token",
        "cost": "费用",
        "truncated": "被截断",
        "trimmed": "被截断，保留到最后一个完整句子",
        "splits": "拆分",
        "retries": "重试",
        "context": "携带上下文",
        "legend_context": "携带了前一次调用的上下文",
        "legend_cut": "在 max_tokens 处被截断",
        "legend_split": "输入被拆分或重试",
        "legend_cached": "来自缓存",
        "cited": "模型自己引用",
        "backend": "后端",
        "model": "模型",
        "run": "运行",
    },
    "ja": {
        "summary": "要約",
        "hint": "要約の文をクリックまたはタップすると、その出典が表示されます。",
        "sources": "出典",
        "pick": "要約の文を選んでください。",
        "sections": "章ごとの要約",
        "tree": "要約の木",
        "usage": "使用量と費用",
        "level": "第{}層",
        "page": "{}ページ",
        "pages": "{}ページ",
        "chars": "文字",
        "passage": "原文",
        "nosource": "この文の出典は見つかりませんでした。",
        "calls": "呼び出し",
        "cached": "キャッシュ",
        "prompt": "入力トークン",
        "completion": "出力トークン",
        "cost": "費用",
        "truncated": "途中で切れた",
        "trimmed": "途中で切れ、最後の完全な文まで残した",
        "splits": "分割",
        "retries": "再試行",
        "context": "文脈を引き継いだ",
        "legend_context": "前の呼び出しの文脈を引き継いだ",
        "legend_cut": "max_tokens で切れた",
        "legend_split": "入力を分割または再試行",
        "legend_cached": "キャッシュから",
        "cited": "モデル自身が引用",
        "backend": "バックエンド",
        "model": "モデル",
        "run": "実行",
    },
}

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.6 -apple-system,"Segoe UI",Roboto,"Noto Sans","PingFang SC","Microsoft YaHei",sans-serif;
color:#1d232b;background:#f6f7f9;overflow-wrap:break-word}
header{padding:16px 20px;background:#243447;color:#fff}
header h1{margin:0;font-size:1.3em}
header .meta{opacity:.8;font-size:.85em}
main{display:flex;gap:20px;padding:20px;align-items:flex-start}
.col{flex:1 1 0;min-width:0}
section.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:14px 18px;margin-bottom:20px}
h2{font-size:1.1em;margin:.2em 0 .6em}
h3{font-size:1em;margin:1em 0 .3em;color:#3b4a5c}
.hint{color:#667;font-size:.85em;margin:0 0 .5em}
.s{cursor:pointer;border-radius:3px;padding:1px 0;transition:background .15s}
.s:hover{background:#e8f0fb}
.s.active{background:#ffd666}
.s.hl{background:#fff1b8;outline:1px solid #f0c040}
#sources{position:sticky;top:10px;max-height:calc(100vh - 20px);overflow:auto}
.chain{margin:0;padding-left:14px;border-left:2px solid #d0d8e2}
.chain .lvl{font-size:.75em;color:#667;text-transform:uppercase;letter-spacing:.03em}
.step{margin:6px 0}
.step>.text{background:#fff7d6;padding:2px 4px;border-radius:3px}
.passage{background:#eef6ee;border-left:4px solid #4a9a5a;padding:6px 10px;margin:6px 0;white-space:pre-wrap;
border-radius:0 4px 4px 0}
.badge{display:inline-block;background:#4a9a5a;color:#fff;border-radius:10px;padding:0 8px;font-size:.8em;margin-right:6px}
.badge.cited{background:#7b61c9}
sup.cite{color:#7b61c9;font-size:.7em;margin-left:1px}
.where{font-size:.8em;color:#556}
svg text{font-size:10px;fill:#334}
table.usage{border-collapse:collapse;width:100%;table-layout:fixed}
table.usage td{padding:3px 6px;border-bottom:1px solid #eee}
table.usage td:last-child{text-align:right;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.legend span{display:inline-block;margin-right:14px;font-size:.8em}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
.treebox{overflow-x:auto}
@media (max-width:760px){main{flex-direction:column;align-items:stretch;padding:10px;gap:0}.col{display:contents}
#sources{position:static;max-height:none}#final{order:1}#sources{order:2}#sections{order:3}#tree{order:4}#usage{order:5}
body{font-size:17px}}
"""

_JS = r"""
const D = JSON.parse(document.getElementById('tome-data').textContent);
const L = D.labels;
const byKey = {};
for (const n of D.tree) byKey[n.level + ':' + n.index] = n;
function sentenceText(n, j){const s = n.sentences[j]; return n.text.slice(s.span[0], s.span[1]);}
function pageLabel(p){
  if (!p) return '';
  if (L.page.includes('{}')) return p[0] === p[1] ? L.page.replace('{}', p[0]) : L.pages.replace('{}', p[0] + '–' + p[1]);
  return p[0] === p[1] ? L.page + ' ' + p[0] : L.pages + ' ' + p[0] + '–' + p[1];
}
function levelLabel(l){return L.level.includes('{}') ? L.level.replace('{}', l) : L.level + ' ' + l;}
function el(tag, cls, text){const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e;}
function mark(level, index, j){
  document.querySelectorAll('.s[data-k="' + level + ':' + index + ':' + j + '"]').forEach(e => e.classList.add('hl'));
}
function chain(level, index, j, depth){
  const n = byKey[level + ':' + index];
  const box = el('div', 'chain');
  const s = n.sentences[j];
  if (!s.supports.length) { box.appendChild(el('div', 'where', L.nosource)); return box; }
  for (const sup of s.supports) {
    const step = el('div', 'step');
    if (sup.node === null) {
      const p = el('div', 'passage');
      p.dataset.span = sup.span.join('-');
      const b = el('span', 'badge', sup.pages ? pageLabel(sup.pages) : L.chars + ' ' + sup.span[0] + '–' + sup.span[1]);
      p.appendChild(b);
      p.appendChild(el('span', 'ptext', sup.text));
      const section = sup.section === undefined ? n.section : sup.section;  // (a JSON from before passages named theirs)
      const where = el('div', 'where', L.passage + (section ? ' · ' + section : ''));
      step.appendChild(where); step.appendChild(p);
    } else {
      const child = byKey[(level - 1) + ':' + sup.node];
      mark(level - 1, sup.node, sup.sentence);
      const head = el('div', 'lvl', levelLabel(level - 1) + ' · #' + (sup.node + 1) + (child.section ? ' · ' + child.section : ''));
      if (sup.cited) head.appendChild(el('span', 'badge cited', L.cited));
      step.appendChild(head);
      step.appendChild(el('span', 'text', sentenceText(child, sup.sentence)));
      if (depth < 12) step.appendChild(chain(level - 1, sup.node, sup.sentence, depth + 1));
    }
    box.appendChild(step);
  }
  return box;
}
function pick(e){
  const t = e.target.closest('.s'); if (!t) return;
  document.querySelectorAll('.s.active,.s.hl').forEach(x => x.classList.remove('active', 'hl'));
  t.classList.add('active');
  const [level, index, j] = t.dataset.k.split(':').map(Number);
  const out = document.getElementById('chain');
  out.replaceChildren();
  const n = byKey[level + ':' + index];
  out.appendChild(el('div', 'step', '')).appendChild(el('span', 'text', sentenceText(n, j)));
  out.appendChild(chain(level, index, j, 0));
  if (window.matchMedia('(max-width:760px)').matches) document.getElementById('sources').scrollIntoView({behavior: 'smooth'});
}
document.addEventListener('click', pick);
document.addEventListener('keydown', e => { if (e.key === 'Enter') pick(e); });
"""


# A model's own citation ("[2]", "[1, 3]" with --cite): shown small, as a note, not as words of the summary.
_CITED = re.compile(r"\s*([\[［【]\s*\d{1,3}(?:\s*[,，、]\s*\d{1,3})*\s*[\]］】])")


def _sentences_html(node: dict[str, Any]) -> str:
    """A node's text with each sentence a clickable span (text between sentences kept as is)."""
    text, out, at = node["text"], [], 0
    for j, s in enumerate(node.get("sentences") or []):
        a, b = s["span"]
        out.append(html.escape(text[at:a]))
        key = f"{node['level']}:{node['index']}:{j}"
        sentence = _CITED.sub(r'<sup class="cite">\1</sup>', html.escape(text[a:b]))
        out.append(f'<span class="s" tabindex="0" data-k="{key}">{sentence}</span>')
        at = b
    out.append(html.escape(text[at:]))
    return "".join(out).replace("\n\n", "<br><br>")


def _tree_svg(tree: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """Levels as rows (level 0 at the bottom), one box per node, a line from each input to its merge."""
    levels: dict[int, list[dict[str, Any]]] = {}
    for n in tree:
        levels.setdefault(n["level"], []).append(n)
    if not levels:
        return ""
    top = max(levels)
    widest = max(len(v) for v in levels.values())
    # At least 10 px a node: a wide level scrolls in its box rather than shrinking into specks and unreadable labels.
    width = max(320, widest * 10 + 80)
    row, pad = 60, 40
    height = (top + 1) * row + 20
    pos: dict[tuple[int, int], tuple[float, float]] = {}
    for level, nodes in levels.items():
        y: float = 10 + (top - level) * row
        step = (width - pad - 10) / max(1, len(nodes))
        for k, n in enumerate(nodes):
            pos[(level, n["index"])] = (pad + step * (k + 0.5), y)
    parts = [
        (
            f'<svg viewBox="0 0 {width} {height}" width="100%" style="min-width:{width}px" role="img" '
            f'aria-label="{labels["tree"]}">'
        )
    ]
    for n in tree:
        if n["level"] == 0:
            continue
        x, y = pos[(n["level"], n["index"])]
        for i in n["inputs"]:
            cx, cy = pos[(n["level"] - 1, i)]
            parts.append(
                f'<line x1="{x:.1f}" y1="{y + 16}" x2="{cx:.1f}" y2="{cy}" stroke="#9aa8b8" stroke-width="1"/>'
            )
    for level in range(top + 1):
        y = 10 + (top - level) * row
        name = (
            labels["level"].replace("{}", str(level))
            if "{}" in labels["level"]
            else f"{labels['level']} {level}"
        )
        parts.append(f'<text x="2" y="{y + 12}">{html.escape(name)}</text>')
    for n in tree:
        x, y = pos[(n["level"], n["index"])]
        w = max(6.0, min(28.0, (width - pad) / max(1, len(levels[n["level"]])) - 4))
        fill = "#c9d6e6" if n.get("cached") else "#5b8bd0"
        stroke, dash = "none", ""
        if n.get("context", "none") != "none":
            stroke = "#2f9e6b"
        if n.get("calls", 1) > 1:
            stroke, dash = "#e08a1e", ' stroke-dasharray="3,2"'
        if n.get("truncated") or n.get(
            "trimmed"
        ):  # cut off at max_tokens (kept to its last sentence, or not)
            stroke = "#d9363e"
        title = (
            f"{n['level']}:{n['index'] + 1} · {n.get('section') or ''} · {n.get('tokens', 0)} tokens · "
            f"{n.get('calls', 1)} {labels['calls']} · {labels['context']}: {n.get('context', 'none')}"
            + (f" · {labels['truncated']}" if n.get("truncated") else "")
            + (f" · {labels['trimmed']}" if n.get("trimmed") else "")
        )
        parts.append(
            f'<rect class="node" data-node="{n["level"]}:{n["index"]}" x="{x - w / 2:.1f}" y="{y}" width="{w:.1f}" '
            f'height="16" rx="3" fill="{fill}" stroke="{stroke}" stroke-width="2.5"{dash}>'
            f"<title>{html.escape(title)}</title></rect>"
        )
    parts.append("</svg>")
    legend = (
        '<div class="legend">'
        f'<span><i style="background:#fff;border:2.5px solid #2f9e6b"></i>{labels["legend_context"]}</span>'
        f'<span><i style="background:#fff;border:2.5px dashed #e08a1e"></i>{labels["legend_split"]}</span>'
        f'<span><i style="background:#fff;border:2.5px solid #d9363e"></i>{labels["legend_cut"]}</span>'
        f'<span><i style="background:#c9d6e6"></i>{labels["legend_cached"]}</span></div>'
    )
    return f'<div class="treebox">{"".join(parts)}</div>{legend}'


def _usage_html(data: dict[str, Any], labels: dict[str, str]) -> str:
    u = data.get("usage") or {}

    def count(key: str) -> str:
        value = u.get(key)
        return f"{value:,}" if isinstance(value, int | float) else "-"

    cost = u.get("cost")
    rows = [
        (labels["backend"], data.get("backend") or ""),
        (labels["model"], data.get("model") or ""),
        (labels["calls"], count("calls")),
        (labels["cached"], count("cached_calls")),
        (labels["prompt"], count("prompt_tokens")),
        (labels["completion"], count("completion_tokens")),
        # The offline backend has no price: no cost rather than a made-up zero.
        (labels["cost"], f"{cost:.4f} {u.get('currency') or ''}" if isinstance(cost, int | float) else "-"),
        (labels["truncated"], str(u.get("truncated", 0))),
        (labels["trimmed"], str(u.get("trimmed", 0))),
        (labels["splits"], str(u.get("splits", 0))),
        (labels["retries"], str(u.get("retries", 0))),
        (labels["run"], data.get("run_id", "")),
    ]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f'<table class="usage">{body}</table>'


def render_report(data: dict[str, Any]) -> str:
    """The report for a run's JSON (``SummaryResult.to_json_dict()``, or a ``<name>.summary.json``)."""
    return "".join(report_pieces(data))


def report_pieces(data: dict[str, Any]) -> Iterator[str]:
    """:func:`render_report` in consecutive pieces, to be written as they come: a big tree's report is never one
    string, nor its tree a list of node dicts at once. ``data["tree"]`` may be any sequence of node dicts that can
    be iterated more than once (``SummaryResult.tree_dicts()`` makes each dict when it is reached)."""
    language = str(data.get("language") or "en")
    # The page's lang is the document's own (a Japanese text in Chinese glyphs reads wrong); labels in Japanese,
    # Chinese (also for Korean) or English.
    lang = language if re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*", language) else "en"
    labels = _LABELS["ja" if lang.startswith("ja") else "zh" if is_cjk(language) else "en"]
    tree: Sequence[dict[str, Any]] = data.get("tree") or []
    top = max((n["level"] for n in tree), default=0)
    finals = [n for n in tree if n["level"] == top]
    final_html = (
        "".join(f"<p>{_sentences_html(n)}</p>" for n in finals)
        or f"<p>{html.escape(data.get('final', ''))}</p>"
    )
    title = html.escape(str(data.get("title", "")))
    meta = html.escape(" · ".join(str(data.get(k) or "") for k in ("backend", "model", "run_id")))
    yield f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>{labels["summary"]}: {title}</title>
<style>{_CSS}</style>
</head>
<body>
<header><h1>{labels["summary"]}: {title}</h1><div class="meta">{meta}</div></header>
<main>
<div class="col">
<section class="card" id="final"><h2>{labels["summary"]}</h2><p class="hint">{labels["hint"]}</p>{final_html}</section>
"""
    # One level-0 node is the final summary itself: a "section summaries" card would only repeat it.
    if sum(1 for n in tree if n["level"] == 0) > 1:
        yield f"""<section class="card" id="sections"><h2>{labels["sections"]}</h2>"""
        yield from _sections_html(tree)
        yield "</section>\n"
    yield f"""<section class="card" id="tree"><h2>{labels["tree"]}</h2>{_tree_svg(_slim(tree), labels)}</section>
<section class="card" id="usage"><h2>{labels["usage"]}</h2>{_usage_html(data, labels)}</section>
</div>
<div class="col"><section class="card" id="sources"><h2>{labels["sources"]}</h2>
<div id="chain"><p class="hint">{labels["pick"]}</p></div></section></div>
</main>
<script type="application/json" id="tome-data">"""
    # The labels and the tree as JSON, a node at a time ("</" escaped: it can only occur inside a string, and a
    # string is never cut between two pieces).
    head = json.dumps({"labels": labels, "tree": []}, ensure_ascii=False)
    yield head.removesuffix("[]}").replace("</", "<\\/") + "["
    for i, node in enumerate(tree):
        yield (", " if i else "") + json.dumps(node, ensure_ascii=False).replace("</", "<\\/")
    yield f"""]}}</script>
<script>{_JS}</script>
</body>
</html>
"""


def _sections_html(tree: Sequence[dict[str, Any]]) -> Iterator[str]:
    """Level 0's summaries under their section titles (a title once for consecutive nodes that share it)."""
    title: str | None = None
    for n in tree:
        if n["level"] != 0:
            continue
        section = n.get("section", "")
        if section != title:
            title = section
            if section:
                yield f"<h3>{html.escape(section)}</h3>"
        yield f"<p>{_sentences_html(n)}</p>"


_SVG_KEYS = (
    "level",
    "index",
    "inputs",
    "cached",
    "context",
    "calls",
    "truncated",
    "trimmed",
    "section",
    "tokens",
)


def _slim(tree: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the tree's picture reads of each node (not its text or sentences)."""
    return [{k: n[k] for k in _SVG_KEYS if k in n} for n in tree]
