"""Speed of tracr.scoring on a synthetic 10,000-page job generated in memory.

    python bench/scoring_bench.py                  # 10,000 pages of about 3 KB
    python bench/scoring_bench.py --pages 2000 --seed 1

Measures, on one core (single process):

* health: ``check_page`` (all checks, expected script given) per page;
* tests: olmOCR-Bench scoring of five tests per page (present, absent, order, table,
  baseline) through ``run_repeats`` with one repeat.

Pages mix prose, markdown and HTML tables, and a few failures (loops, blank pages,
Cyrillic pages, broken tables). Prints pages/s by wall clock and by CPU time (the
CPU figure is the one that does not depend on what else the machine is running).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence

from tracr.scoring.bench_tests import BenchTest, parse_test, run_repeats
from tracr.scoring.health import check_page

WORDS = (
    "the of and water treatment plant report site level measured value annual quality north south results "
    "sample analysis average standard method data figure section increase decrease monitoring station"
).split()


def make_page(rng: random.Random, index: int) -> tuple[str, str]:
    """One ~3 KB page and its finish reason; about 1 page in 20 is unhealthy."""
    kind = index % 20
    body = " ".join(rng.choice(WORDS) for _ in range(380))
    table = "| Site | pH | Volume |\n|---|---|---|\n" + "".join(
        f"| S{i} | {rng.uniform(6, 8):.1f} | {rng.randint(1, 99)} |\n" for i in range(8)
    )
    html = (
        "<table><tr><th>Region</th><th colspan='2'>Metals</th></tr>"
        + "".join(f"<tr><td>R{i}</td><td>{rng.randint(1, 30)}</td><td>0.0{i}</td></tr>" for i in range(4))
        + "</table>"
    )
    page = f"# Report page {index}\n\n## Introduction\n\n{body[:1200]}\n\n{table}\n## Methods\n\n{body[1200:]}\n\n{html}\n"
    if kind == 0:
        return page[:800] + "the results of the sample " * 120, "length"
    if kind == 1:
        return "", "stop"
    if kind == 2:
        return "Отчёт о качестве воды. " * 100, "stop"
    if kind == 3:
        return page.replace("</table>", ""), "stop"
    return page, "stop"


def make_tests(index: int) -> list[BenchTest]:
    base: dict[str, object] = {"pdf": f"job/doc{index}.pdf", "page": 1}
    specs: list[dict[str, object]] = [
        {"type": "present", "text": "Introduction", "id": f"{index}-p"},
        {"type": "absent", "text": "CONFIDENTIAL DRAFT", "id": f"{index}-a"},
        {"type": "order", "before": "Introduction", "after": "Methods", "id": f"{index}-o"},
        {"type": "table", "cell": "S3", "right": "7.0", "top_heading": "Site", "max_diffs": 1, "id": f"{index}-t"},
        {"type": "baseline", "id": f"{index}-b"},
    ]
    return [parse_test({**base, **spec}) for spec in specs]


def timed(label: str, pages: int, work: Callable[[], object]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label:<28} {pages / wall:>10,.0f} pages/s wall   {pages / cpu:>10,.0f} pages/s CPU   ({wall:.2f} s)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    pages = [make_page(rng, i) for i in range(args.pages)]
    tests = [make_tests(i) for i in range(args.pages)]
    mean_kb = sum(len(p.encode()) for p, _ in pages) / len(pages) / 1024
    print(f"{args.pages:,} synthetic pages, mean {mean_kb:.1f} KB")

    kinds: Counter[str] = Counter()

    def health() -> None:
        for markdown, finish in pages:
            for issue in check_page(markdown, finish, expected_scripts={"Latin"}):
                kinds[issue.kind.value] += 1

    passed: Counter[str] = Counter()

    def scoring() -> None:
        for (markdown, _), page_tests in zip(pages, tests, strict=False):
            for test in page_tests:
                passed[test.type] += run_repeats(test, [markdown]).passed

    timed("health check_page", args.pages, health)
    timed("olmOCR tests (5 per page)", args.pages, scoring)
    print("issues by kind:", dict(sorted(kinds.items())))
    print("tests passed by type:", dict(sorted(passed.items())), f"of {args.pages} each")


if __name__ == "__main__":
    main()
