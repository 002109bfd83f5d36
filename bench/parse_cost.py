"""CPU time to read one model reply into a page, per reply parser, against the identity parser.

    python bench/parse_cost.py                          # 5 rounds of ~0.3 s per parser, Markdown table
    python bench/parse_cost.py --pages 200 --json bench/results/parse_cost.json
    python bench/parse_cost.py --synthetic              # every parser on a ~30 KB reply built in its format

For each parser a registry family uses (``tracr/adapters/registry.py``), the reply is the
largest realistic fixture under ``tests/adapters/fixtures/<dir>/`` (``<dir>``: the parser's
module name, or its first word: ``dots`` for ``dots_layout``) that the parser accepts;
fixtures of failure cases (truncated, repetition, no EOS, error, malformed) are left out.
A parser with no such fixture gets a synthetic reply in its format: a realistic block
(a paragraph and an HTML table) repeated to ``--synthetic-kb`` (default 30 KB).
MinerU2.5's page is two kinds of reply (the layout list, then one reply per block), so
its row is ``parse_layout`` on ``mineru/layout.txt`` plus ``assemble`` with ``mineru/blocks.json``,
as its engine reads a page.

Each parser reads its reply through :func:`tracr.adapters.parsing.parse_reply` (the run-time
and re-parse path, default ``keep_furniture=False``), once untimed (imports, caches), then in
``--rounds`` rounds of either ``--pages`` calls or, by default, as many as fit in ``--round-s``
seconds. Reported: the fastest round's pages/s and µs/page (slower rounds lost time to whatever
else the machine ran), and the ratio of µs/page to the ``none`` parser (the reply returned as
the page: what the dispatch alone costs), measured in the same run. ``--synthetic`` gives every
parser a synthetic reply (MinerU2.5 keeps its fixture pair). One process, one core; nothing is
written unless ``--json`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracr.adapters.parsing import PARSERS, parse_reply  # noqa: E402
from tracr.adapters.registry import ADAPTERS  # noqa: E402
from tracr.adapters.replies import ReplyFormatError  # noqa: E402
from tracr.adapters.spec import EngineKind  # noqa: E402

FIXTURES = REPO / "tests" / "adapters" / "fixtures"
REFERENCE = "none"
#: Fixture names of failure cases: not a realistic page.
FAILURE_CASES = ("truncated", "repetit", "no_eos", "error", "malformed", "bad_", "not_", "markdown_reply")

PARA = (
    "The thermal conductivity \\(k\\) of the recycled alloys was measured at room temperature on disc specimens "
    "12.7 mm in diameter, using the laser flash method described in Section 2.3. Conductivity falls steadily as the "
    "number of remelting cycles grows; the drop becomes marked after the third cycle, when iron picked up from the "
    "furnace lining forms plate-shaped intermetallic phases that scatter conduction electrons."
)
TABLE = (
    "<table><tr><th>Cycles</th><th>k (W/m·K)</th><th>Fe (wt.%)</th></tr>"
    "<tr><td>0</td><td>201</td><td>0.12</td></tr><tr><td>3</td><td>174</td><td>0.41</td></tr></table>"
)
OLMOCR_FRONT = "---\nprimary_language: en\nis_rotation_valid: True\nrotation_correction: 0\nis_table: False\nis_diagram: False\n---\n"


def _markdown_block(i: int) -> str:
    return f"## {i}. Results\n\n{PARA}\n\n{TABLE}\n\n"


def _repeat(block: Callable[[int], str], size: int, sep: str = "") -> str:
    parts: list[str] = []
    total = 0
    while total < size:
        parts.append(block(len(parts) + 1))
        total += len(parts[-1]) + len(sep)
    return sep.join(parts)


def _markdown(size: int) -> str:
    return _repeat(_markdown_block, size)


def _deepseek(size: int) -> str:
    from tracr.adapters.parsers.deepseek_grounding import EOS

    def block(i: int) -> str:
        y = 40 + (i * 37) % 850
        return f"<|ref|>sub_title<|/ref|><|det|>[[73, {y}, 503, {y + 20}]]<|/det|>\n## {i}. Results\n\n<|ref|>text<|/ref|><|det|>[[73, {y + 25}, 926, {y + 90}]]<|/det|>\n{PARA}\n\n"

    return _repeat(block, size) + EOS


def _dots(size: int) -> str:
    def cell(i: int) -> str:
        y = 40 + (i * 53) % 1900
        category, text = ("Table", TABLE) if i % 4 == 0 else ("Text", PARA)
        return json.dumps({"bbox": [118, y, 1530, y + 120], "category": category, "text": text})

    return "[" + _repeat(cell, size, ", ") + "]"


def _chandra(size: int) -> str:
    def div(i: int) -> str:
        y = 40 + (i * 37) % 900
        label, html = (
            ("Table", TABLE)
            if i % 4 == 0
            else ("Text", f"<p>{PARA.replace(chr(92) + '(', '<math>').replace(chr(92) + ')', '</math>')}</p>")
        )
        return f'<div data-bbox="78 {y} 1000 {y + 60}" data-label="{label}">{html}</div>\n'

    return _repeat(div, size)


def _doctags(size: int) -> str:
    def block(i: int) -> str:
        y = 20 + (i * 17) % 440
        return f"<text><loc_40><loc_{y}><loc_460><loc_{y + 30}>{PARA}</text>\n"

    return "<doctag>" + _repeat(block, size) + "</doctag>"


#: A synthetic reply of about ``size`` characters in the parser's format.
SYNTHETIC: dict[str, Callable[[int], str]] = {
    REFERENCE: _markdown,
    "plain": _markdown,
    "nanonets": lambda size: _markdown(size) + "<page_number>217</page_number>",
    "paddleocr-vl": _markdown,
    "olmocr": lambda size: OLMOCR_FRONT + _markdown(size),
    "olmocr-v1-json": lambda size: json.dumps(
        {"primary_language": "en", "is_rotation_valid": True, "rotation_correction": 0, "is_table": False, "is_diagram": False}
        | {"natural_text": _markdown(size)}
    ),
    "mistral-ocr": lambda size: json.dumps({"pages": [{"index": 0, "markdown": _markdown(size), "images": []}]}),
    "deepseek-grounding": _deepseek,
    "dots-layout": _dots,
    "chandra-html": _chandra,
    "doctags": _doctags,
}


def _fixture_dirs(parser: str) -> list[Path]:
    module = PARSERS[parser][0] if parser in PARSERS else parser.replace("-", "_")
    names = dict.fromkeys([module, module.split("_")[0]])
    return [FIXTURES / name for name in names if (FIXTURES / name).is_dir()]


def _accepts(parser: str, raw: str) -> bool:
    try:
        parse_reply(parser, raw)
    except ReplyFormatError:
        return False
    return True


def _largest_fixture(parser: str) -> Path | None:
    """The largest fixture the parser reads, failure cases left out."""
    candidates = [
        path
        for folder in _fixture_dirs(parser)
        for path in folder.iterdir()
        if path.is_file() and not any(mark in path.name for mark in FAILURE_CASES)
    ]
    for path in sorted(candidates, key=lambda p: p.stat().st_size, reverse=True):
        if _accepts(parser, path.read_text(encoding="utf-8")):
            return path
    return None


def _mineru_case() -> tuple[Callable[[], object], str, int] | None:
    from tracr.adapters.parsers import mineru

    layout_path, blocks_path = FIXTURES / "mineru" / "layout.txt", FIXTURES / "mineru" / "blocks.json"
    if not (layout_path.is_file() and blocks_path.is_file()):
        return None
    layout = layout_path.read_text(encoding="utf-8")
    replies = [block["reply"] for block in json.loads(blocks_path.read_text(encoding="utf-8"))]

    def read_page() -> object:
        return mineru.assemble(zip(mineru.parse_layout(layout), replies, strict=True))

    size = len(layout.encode()) + sum(len(reply.encode()) for reply in replies if reply)
    return read_page, "mineru/layout.txt + blocks.json", size


def _reply(parser: str, synthetic_kb: float, force_synthetic: bool) -> tuple[str, str]:
    """The reply a parser reads here, and where it comes from."""
    size = int(synthetic_kb * 1024)
    # The identity parser reads the plain family's reply: its cost does not depend on the text.
    path = None if force_synthetic else _largest_fixture("plain" if parser == REFERENCE else parser)
    if path is not None:
        return path.read_text(encoding="utf-8"), str(path.relative_to(FIXTURES))
    if parser in SYNTHETIC:
        return SYNTHETIC[parser](size), f"synthetic ~{synthetic_kb:g} KB"
    return _markdown(size), f"synthetic Markdown ~{synthetic_kb:g} KB (no builder for this format)"


def cases(synthetic_kb: float, force_synthetic: bool) -> list[dict]:
    """One case per parser: how a page is read, from which reply, and the families that use it."""
    families: dict[str, list[str]] = {REFERENCE: ["(reference: the reply is the page)"]}
    engines: dict[str, EngineKind] = {}
    for adapter in ADAPTERS:
        families.setdefault(adapter.parser, []).append(adapter.name)
        engines[adapter.parser] = adapter.engine
    out: list[dict] = []
    for parser, names in families.items():
        case: dict = {"parser": parser, "families": names}
        if engines.get(parser) is EngineKind.LAYOUT_THEN_BLOCKS:
            try:
                found = _mineru_case() if parser == "mineru" else None
            except Exception as exc:  # a parser still being written
                out.append({**case, "skipped": f"{type(exc).__name__}: {exc}"[:160]})
                continue
            if found is None:
                out.append({**case, "skipped": "a two-step page with no reader in this benchmark"})
            else:
                out.append({**case, "read": found[0], "reply": found[1], "bytes": found[2]})
            continue
        try:
            raw, case["reply"] = _reply(parser, synthetic_kb, force_synthetic)
            parse_reply(parser, raw)
        except Exception as exc:  # a parser still being written, or a synthetic reply it rejects
            out.append({**case, "skipped": f"{type(exc).__name__}: {exc}"[:160]})
            continue
        case["bytes"] = len(raw.encode())
        case["read"] = lambda parser=parser, raw=raw: parse_reply(parser, raw)
        out.append(case)
    return out


def measure(read: Callable[[], object], rounds: int, pages: int | None, round_s: float) -> list[float]:
    """Seconds per page in each round: ``pages`` reads, or as many as fit in ``round_s``."""
    read()  # imports and first-call caches out of the measurement
    start = time.perf_counter()
    read()
    batch = max(1, int(0.005 / max(time.perf_counter() - start, 1e-7)))  # ~5 ms between clock reads
    results: list[float] = []
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        while True:
            count = batch if pages is None else min(batch, pages - done)
            for _ in range(count):
                read()
            done += count
            finished = done >= pages if pages is not None else time.perf_counter() - start >= round_s
            if finished:
                break
        results.append((time.perf_counter() - start) / done)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per parser; the fastest is reported (default: 5)")
    parser.add_argument("--pages", type=int, default=None, help="pages per round (default: as many as fit in --round-s)")
    parser.add_argument("--round-s", type=float, default=0.3, help="seconds per round when --pages is not given (default: 0.3)")
    parser.add_argument("--synthetic-kb", type=float, default=30.0, help="size of a synthetic reply (default: 30)")
    parser.add_argument("--synthetic", action="store_true", help="a synthetic reply for every parser, fixtures or not")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="write the numbers to FILE")
    args = parser.parse_args()

    started = time.perf_counter()
    rows: list[dict] = []
    for case in cases(args.synthetic_kb, args.synthetic):
        read = case.pop("read", None)
        if read is None:
            rows.append(case)
            print(f"{case['parser']:20} skipped: {case['skipped']}", file=sys.stderr, flush=True)
            continue
        per_page = min(measure(read, args.rounds, args.pages, args.round_s))
        rows.append({**case, "us_per_page": round(per_page * 1e6, 2), "pages_per_s": round(1 / per_page, 1)})
        print(f"{case['parser']:20} {per_page * 1e6:12.1f} µs/page  ({case['reply']})", file=sys.stderr, flush=True)
    reference = next(row["us_per_page"] for row in rows if row["parser"] == REFERENCE)
    for row in rows:
        if "us_per_page" in row:
            row["ratio_to_none"] = round(row["us_per_page"] / reference, 1)

    print("| parser | families | reply | bytes | pages/s | µs/page | × `none` |")
    print("|---|---|---|---:|---:|---:|---:|")
    for row in rows:
        names = ", ".join(row["families"])
        if "skipped" in row:
            print(f"| `{row['parser']}` | {names} | skipped: {row['skipped']} | | | | |")
            continue
        print(
            f"| `{row['parser']}` | {names} | `{row['reply']}` | {row['bytes']:,} | {row['pages_per_s']:,.0f} "
            f"| {row['us_per_page']:,.1f} | {row['ratio_to_none']:,.1f} |"
        )
    elapsed = time.perf_counter() - started
    print(
        f"\n{args.rounds} rounds per parser, fastest round; {elapsed:.1f} s in all; python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    if args.json:
        results = {
            "rounds": args.rounds,
            "pages": args.pages,
            "round_s": args.round_s,
            "synthetic": args.synthetic,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "elapsed_s": round(elapsed, 1),
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results: {args.json}")


if __name__ == "__main__":
    main()
