"""The report as Markdown, for a repository or a wiki (and, without images, as a Prefect artifact).

Page images are written beside the file, in ``<stem>_files/``, and linked by relative
path. Text from outside is escaped: HTML special characters become entities and
``|`` is escaped in tables, so nothing an OCR model wrote renders as markup; outputs
go in fenced blocks whose fence is longer than any backtick run inside them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path

from tracr.config.collections import ALL
from tracr.reporting.content import ReportContent
from tracr.reporting.text import board_tables

__all__ = ["render_markdown"]


def _cell(value: object) -> str:
    return escape(str(value)).replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[Mapping[str, object]]) -> str:
    if not rows:
        return "_nothing yet_\n"
    keys = list(rows[0])
    lines = ["| " + " | ".join(_cell(k) for k in keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _fenced(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}\n"


def render_markdown(content: ReportContent, *, images_dir: Path | None = None, link_prefix: str = "") -> str:
    """The report as Markdown; with ``images_dir`` the page images are written there and linked as ``link_prefix/<name>``."""
    data = content.data
    out = [f"# {_cell(data.title)}\n\n", f"tracr report of job `{_cell(data.job_id)}`\n\n", "## Set-up\n\n"]
    out.append(
        f"Question: which OCR model turns *{_cell(data.title)}* into the most faithful Markdown, for each kind of document? "
        f"{len(data.pdfs)} PDFs, {len(data.page_keys())} pages, {len(data.models)} models; collections from "
        f"{'the input folders' if data.collections.source == 'folders' else 'the job config'} plus reviewer tags; "
        f"{len(data.human_votes)} human and {len(data.judge_votes)} judge votes.\n\n"
    )
    out.append(
        _table(
            [
                {
                    "model": m.slug,
                    "name": m.model,
                    "provider": m.provider,
                    "mode": m.mode,
                    "run": m.run,
                    "prompt": m.prompt or "(adapter prompt)",
                }
                for m in data.models
            ]
        )
    )
    out.append("\n## Leaderboards per collection\n\n")
    for board in content.boards:
        out.append(f"\n### {'Whole job' if board.name == ALL else 'Collection: ' + _cell(board.name)} ({board.pages} pages)\n\n")
        tables = board_tables(board)
        if not tables:
            out.append("_nothing ranked yet_\n")
        for heading, rows in tables:
            out.append(f"\n**{_cell(heading)}**\n\n{_table(rows)}")
    out.append("\n## Winners by collection\n\n")
    out += [f"- {_cell(s)}\n" for s in content.flips] or ["The same model leads every collection (or there is too little to say yet).\n"]
    out.append(f"\n## Quality against cost and speed\n\nWhole job; quality is {_cell(content.quality_label)}.\n\n")
    out.append(
        _table(
            [
                {
                    "model": p.model,
                    "quality": f"{p.quality:.1f}",
                    "cost/1k pages": "-" if p.cost is None else f"{p.cost:.2f}",
                    "s/page": "-" if p.seconds is None else f"{p.seconds:.2f}",
                }
                for p in content.points
            ]
        )
    )
    out.append("\n## Failures and page health\n\n")
    whole = next(b for b in content.boards if b.name == ALL)
    out.append(
        _table(
            [
                {"model": r.model, "failed or unhealthy": f"{100 * r.estimate:.1f}% [{100 * r.low:.1f}–{100 * r.high:.1f}]", "pages": r.n}
                for r in whole.health
            ]
        )
    )
    out.append("\n## Pages where the models disagree most\n\n")
    for k, item in enumerate(content.pages, start=1):
        out.append(
            f"\n### {_cell(item.pdf_slug)}, page {item.page}\n\ncollections: {_cell(', '.join(item.collections))}; "
            f"outputs differ by {100 * item.spread:.0f}%\n\n"
        )
        if item.image and images_dir is not None:
            images_dir.mkdir(parents=True, exist_ok=True)
            name = f"page-{k}.jpg"
            (images_dir / name).write_bytes(item.image)
            out.append(f"![{_cell(item.pdf_slug)} page {item.page}]({link_prefix}{name})\n\n")
        elif images_dir is None:
            out.append("_(page image in the HTML report)_\n\n")
        for model, text in sorted(item.outputs.items()):
            out.append(f"**{_cell(model)}**\n\n{_fenced(text)}\n")
    return "".join(out)
