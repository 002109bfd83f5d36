"""The report as one self-contained HTML file: readable offline, by e-mail, with no request to any server.

Inline CSS, page images as ``data:`` URLs, charts as inline SVG, no script and no
external URL at all; a Content-Security-Policy of ``default-src 'none'`` makes the
browser refuse anything else even if a model's output smuggled a URL in. Every
text from outside (model names, outputs, file names, prompts, errors) goes through
:func:`html.escape`, so it is shown as text and never rendered as markup.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape

from tracr.config.collections import ALL
from tracr.reporting.content import Point, ReportContent
from tracr.reporting.rankings import CollectionBoard
from tracr.reporting.text import board_tables

__all__ = ["render_html", "CSP", "SECTIONS"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
SECTIONS = ("setup", "leaderboards", "winners", "quality", "health", "disagreements")

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:28px 0 8px;border-bottom:2px solid #d8dde6;padding-bottom:4px}
h3{font-size:16px;margin:18px 0 6px}section{background:#fff;border:1px solid #e1e5ec;border-radius:8px;padding:4px 18px 14px;margin:14px 0}
table{border-collapse:collapse;margin:6px 0 10px;font-size:14px}th,td{border-bottom:1px solid #e6e9ef;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f0f2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#5d6778}.flip{background:#fff6e0;border-left:4px solid #e0a400;padding:6px 10px;margin:6px 0}
.boards{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:14px}
.board{border:1px solid #e6e9ef;border-radius:6px;padding:2px 12px 8px}
.charts{display:flex;flex-wrap:wrap;gap:18px}
.page{display:grid;grid-template-columns:minmax(260px,360px) 1fr;gap:14px;border-top:1px solid #e6e9ef;padding-top:10px;margin-top:10px}
.page img{max-width:100%;border:1px solid #ccd3de}
.outs{display:grid;grid-template-columns:repeat(auto-fit,minmax(240px,1fr));gap:10px}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f8fa;border:1px solid #e6e9ef;padding:8px;margin:4px 0;max-height:360px;overflow:auto;font-size:12.5px}
pre.failed{background:#fdecec;border-color:#f3b6b6}code{font-size:13px}
"""


def _table(rows: Sequence[Mapping[str, object]]) -> str:
    if not rows:
        return '<p class="muted">nothing yet</p>'
    head = "".join(f"<th>{escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"num" if isinstance(v, (int, float)) else ""}">{escape(str(v))}</td>' for v in row.values())
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(value: float) -> str:
    """An axis number: whole above 100 (ratings), three significant digits below."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def interval_svg(rows: Sequence[tuple[str, float, float, float]], *, unit: str = "") -> str:
    """A forest plot: each model's estimate as a dot on its interval, on one shared axis."""
    if not rows:
        return ""
    low = min(r[2] for r in rows)
    high = max(r[3] for r in rows)
    span = (high - low) or 1.0
    width, label_w, row_h = 460, 110, 22
    plot_w = width - label_w - 20

    def x(value: float) -> float:
        return label_w + (value - low) / span * plot_w

    parts = [f'<svg width="{width}" height="{row_h * len(rows) + 24}" role="img">']
    for k, (model, est, lo, hi) in enumerate(rows):
        y = 14 + k * row_h
        parts.append(f'<text x="0" y="{y + 4}" font-size="12">{escape(model[:16])}</text>')
        parts.append(f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{y}" y2="{y}" stroke="#5b7bb5" stroke-width="3"/>')
        parts.append(f'<circle cx="{x(est):.1f}" cy="{y}" r="4.5" fill="#1f3f7a"/>')
    axis_y = 14 + len(rows) * row_h - 6
    parts.append(f'<text x="{label_w}" y="{axis_y + 12}" font-size="10" fill="#5d6778">{_num(low)}{escape(unit)}</text>')
    parts.append(
        f'<text x="{width - 20}" y="{axis_y + 12}" font-size="10" fill="#5d6778" text-anchor="end">{_num(high)}{escape(unit)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def scatter_svg(points: Sequence[tuple[str, float, float]], x_label: str, y_label: str) -> str:
    """Models as labelled dots: x (cost or seconds per page) against y (quality); better is up and to the left."""
    if not points:
        return f'<p class="muted">no {escape(x_label)} measured</p>'
    width, height, pad = 440, 300, 56
    xs = [p[1] for p in points]
    ys = [p[2] for p in points]
    x0, x1 = min(0.0, min(xs)), max(xs) or 1.0
    y0, y1 = min(ys), max(ys)
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    x1 = x1 if x1 > x0 else x0 + 1

    def sx(v: float) -> float:
        return pad + (v - x0) / (x1 - x0) * (width - pad - 20)

    def sy(v: float) -> float:
        return height - pad - (v - y0) / (y1 - y0) * (height - pad - 20)

    parts = [f'<svg width="{width}" height="{height}" role="img">']
    parts.append(f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" stroke="#8a94a6"/>')
    parts.append(f'<line x1="{pad}" y1="10" x2="{pad}" y2="{height - pad}" stroke="#8a94a6"/>')
    parts.append(f'<text x="{width / 2}" y="{height - 12}" font-size="12" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(
        f'<text x="14" y="{height / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 {height / 2})">{escape(y_label)}</text>'
    )
    for value, anchor in ((x0, "start"), (x1, "end")):
        parts.append(
            f'<text x="{sx(value):.1f}" y="{height - pad + 14}" font-size="10" text-anchor="{anchor}" fill="#5d6778">{_num(value)}</text>'
        )
    for value in (y0, y1):
        parts.append(f'<text x="{pad - 4}" y="{sy(value) + 4:.1f}" font-size="10" text-anchor="end" fill="#5d6778">{_num(value)}</text>')
    for model, xv, yv in points:
        right_half = sx(xv) > width / 2  # label inside the chart, never cut off at its edge
        label_x = sx(xv) - 8 if right_half else sx(xv) + 8
        label_y = sy(yv) + 18 if sy(yv) < 24 else sy(yv) - 8
        parts.append(f'<circle cx="{sx(xv):.1f}" cy="{sy(yv):.1f}" r="6" fill="#2f6fd0" fill-opacity="0.8"/>')
        parts.append(
            f'<text x="{label_x:.1f}" y="{label_y:.1f}" font-size="12" text-anchor="{"end" if right_half else "start"}">{escape(model[:20])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _setup(content: ReportContent) -> str:
    data = content.data
    models = [
        {
            "model": m.slug,
            "name": m.model,
            "provider": m.provider,
            "mode": m.mode,
            "run": m.run,
            "max tokens": m.max_tokens if m.max_tokens is not None else "-",
            "prompt": m.prompt or "(the model's adapter prompt)",
        }
        for m in data.models
    ]
    boards = {b.name: b for b in content.boards}
    pdfs_in: dict[str, set[str]] = {}
    for pdf, page in data.page_keys():
        for name in data.collections.of(pdf, page):
            pdfs_in.setdefault(name, set()).add(pdf)
    collections = [
        {"collection": name, "pages": boards[name].pages if name in boards else 0, "PDFs": len(pdfs_in.get(name, ()))}
        for name in data.collections.names
    ]
    source = {"folders": "the input folder of each PDF", "config": "the job config's collections"}[data.collections.source]
    question = escape(data.title)
    return (
        '<section id="setup"><h2>Set-up</h2>'
        f"<p><b>Question:</b> which OCR model turns <i>{question}</i> into the most faithful Markdown, for each kind of document?</p>"
        f"<p>{len(data.pdfs)} PDFs, {len(data.page_keys())} pages, {len(data.models)} models. "
        f"Collections come from {escape(source)}, plus reviewer tags. Votes: {len(data.human_votes)} human, {len(data.judge_votes)} judge; "
        f"tests: {'scored' if data.test_rows else 'none'}.</p>"
        f"<h3>Models and how each was asked</h3>{_table(models)}<h3>Collections</h3>{_table(collections)}</section>"
    )


def _board(board: CollectionBoard) -> str:
    title = "Whole job" if board.name == ALL else f"Collection: {board.name}"
    parts = [f'<div class="board"><h3>{escape(title)} <span class="muted">({board.pages} pages)</span></h3>']
    tables = board_tables(board)
    if not tables:
        parts.append('<p class="muted">nothing ranked yet</p>')
    for heading, rows in tables:
        parts.append(f"<p><b>{escape(heading)}</b></p>{_table(rows)}")
        if heading.startswith("human votes"):
            parts.append(interval_svg([(r.model, r.rating, r.ci_low, r.ci_high) for r in board.human]))
        elif heading.startswith("judge votes"):
            parts.append(interval_svg([(r.model, r.rating, r.ci_low, r.ci_high) for r in board.judge]))
        elif heading == "reference pages":
            parts.append(interval_svg([(r.model, r.estimate, r.low, r.high) for r in board.reference]))
        elif heading.startswith("olmOCR"):
            parts.append(interval_svg([(r.model, 100 * r.estimate, 100 * r.low, 100 * r.high) for r in board.tests], unit="%"))
    parts.append("</div>")
    return "".join(parts)


def _quality(content: ReportContent) -> str:
    def pick(attr: str) -> list[tuple[str, float, float]]:
        out = []
        for p in content.points:
            value = getattr(p, attr)
            if value is not None:
                out.append((p.model, float(value), p.quality))
        return out

    cost = scatter_svg(pick("cost"), "cost per 1,000 pages", content.quality_label)
    speed = scatter_svg(_seconds(content.points), "seconds per page", content.quality_label)
    return (
        '<section id="quality"><h2>Quality against cost and speed</h2>'
        f'<p class="muted">Whole job; quality is {escape(content.quality_label)}. Up and to the left is better.</p>'
        f'<div class="charts"><figure><figcaption>against cost</figcaption>{cost}</figure>'
        f"<figure><figcaption>against speed</figcaption>{speed}</figure></div></section>"
    )


def _seconds(points: Sequence[Point]) -> list[tuple[str, float, float]]:
    return [(p.model, p.seconds, p.quality) for p in points if p.seconds is not None]


def _health(content: ReportContent) -> str:
    data = content.data
    kinds = list((data.summary or {}).get("issue_kinds") or [])
    summary_models = (data.summary or {}).get("models") or {}
    rows = []
    for m in data.models:
        stats = [s for (model, _, _), s in data.pages.items() if model == m.slug]
        failed = [s for s in stats if s.status != "done"]
        errors: dict[str, int] = {}
        for s in failed:
            errors[s.error_class or s.status] = errors.get(s.error_class or s.status, 0) + 1
        row: dict[str, object] = {
            "model": m.slug,
            "pages": len(stats),
            "failed": f"{len(failed)} ({100 * len(failed) / len(stats):.1f}%)" if stats else "-",
            "errors": ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "-",
        }
        by_kind = ((summary_models.get(m.slug) or {}).get("health") or {}).get("by_kind") or {}
        for kind in kinds:
            row[kind] = f"{100 * by_kind[kind]:.1f}%" if kind in by_kind else "-"
        rows.append(row)
    note = "" if kinds else '<p class="muted">Health checks by kind appear after <code>tracr score</code>.</p>'
    per_collection = "".join(
        f"<h3>{escape('Whole job' if b.name == ALL else b.name)}</h3>"
        + _table(
            [
                {
                    "model": r.model,
                    "failed or unhealthy": f"{100 * r.estimate:.1f}%",
                    "95% CI": f"{100 * r.low:.1f}–{100 * r.high:.1f}%",
                    "pages": r.n,
                }
                for r in b.health
            ]
        )
        for b in content.boards
    )
    return f'<section id="health"><h2>Failures and page health</h2>{_table(rows)}{note}{per_collection}</section>'


def _disagreements(content: ReportContent) -> str:
    if not content.pages:
        return '<section id="disagreements"><h2>Pages where the models disagree most</h2><p class="muted">no page with two outputs</p></section>'
    parts = ['<section id="disagreements"><h2>Pages where the models disagree most</h2>']
    for item in content.pages:
        where = f"{item.pdf_slug}, page {item.page}"
        image = (
            f'<img alt="{escape(where)}" src="data:image/jpeg;base64,{base64.b64encode(item.image).decode("ascii")}">'
            if item.image
            else '<p class="muted">page image not available (the PDF is not readable here)</p>'
        )
        outs = "".join(
            f'<div><b>{escape(model)}</b><pre class="{"failed" if model in item.failed else ""}">{escape(text)}</pre></div>'
            for model, text in sorted(item.outputs.items())
        )
        parts.append(
            f'<div class="page"><div><h3>{escape(where)}</h3><p class="muted">collections: {escape(", ".join(item.collections))}; '
            f"outputs differ by {100 * item.spread:.0f}% (mean normalised edit distance)</p>{image}</div>"
            f'<div class="outs">{outs}</div></div>'
        )
    parts.append("</section>")
    return "".join(parts)


def render_html(content: ReportContent) -> str:
    """The whole report as one HTML document."""
    data = content.data
    flips = "".join(f'<p class="flip">{escape(s)}</p>' for s in content.flips) or (
        '<p class="muted">The same model leads every collection (or there is too little to say yet).</p>'
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(data.title)}: OCR models compared</title>"
        f"<style>{_CSS}</style></head><body><main>"
        f"<h1>{escape(data.title)}</h1><p class='muted'>tracr report of job <code>{escape(data.job_id)}</code></p>"
        + _setup(content)
        + '<section id="leaderboards"><h2>Leaderboards per collection</h2>'
        + '<p class="muted">Ratings are Bradley–Terry (400·log10 odds + 1000) with 95% bootstrap intervals; pass rates with intervals resampled within test categories; '
        + "health rates with Wilson intervals; speed and cost with intervals resampled over pages. "
        + "The counts say how much is behind each number.</p>"
        + f'<div class="boards">{"".join(_board(b) for b in content.boards)}</div></section>'
        + f'<section id="winners"><h2>Winners by collection</h2>{flips}</section>'
        + _quality(content)
        + _health(content)
        + _disagreements(content)
        + "</main></body></html>"
    )
