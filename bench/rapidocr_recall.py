"""How much of a page's text the built-in CPU model (tracr-ocr) reads, before and after tiling.

    python bench/rapidocr_recall.py                          # /work/shared/corpus/gnarly, page 1 of each PDF
    python bench/rapidocr_recall.py some/folder --pages 2 --max-pdfs 10

For each PDF in the folder (sorted by name; at most ``--max-pdfs``), its first
``--pages`` pages that have a text layer are rendered the way tracr renders them
and read by the server's own OCR function (``OcrEngine.read``, no HTTP) in each
setting of ``--settings``:

* ``one-pass@1288``: the whole image in one RapidOCR call at the job's default
  render (longest side 1288 px): the server as it was;
* ``tiled@1288``: full-width strips at that render;
* ``tiled@<N>dpi``: strips, rendered at N dpi (capped at ``--max-pixels``);
* ``tiled@tracr-ocr``: strips, at the render tracr now uses for ``provider: tracr-ocr``
  (``OcrServerModel.page_render_rules``): the server as a new user meets it.

Characters recovered = the multiset overlap of non-space characters between
the OCR text and the page's text layer (PyMuPDF ``get_text``), over the text
layer's non-space characters: order-blind, so it measures what was read, not
the reading order. Seconds are per page, OCR only (not rendering), with
``--threads`` onnxruntime threads. Prints a Markdown table per page and totals.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pymupdf  # noqa: E402

from tracr.config.models import OcrServerModel  # noqa: E402
from tracr.config.render import RenderSettings  # noqa: E402
from tracr.documents.pdf import render_page  # noqa: E402
from tracr.servers.rapidocr_server import OcrEngine  # noqa: E402

DEFAULT_FOLDER = Path("/work/shared/corpus/gnarly")


def recovered(ocr: str, reference: str) -> int:
    """Non-space characters of ``reference`` that ``ocr`` also has (multiset overlap)."""
    got, want = Counter("".join(ocr.split())), Counter("".join(reference.split()))
    return sum(min(got[c], n) for c, n in want.items())


def render(path: Path, page: int, setting: str, max_pixels: int) -> bytes:
    """The page as tracr renders it for ``setting`` (``...@1288`` or ``...@<N>dpi``)."""
    size = setting.split("@", 1)[1]
    if size == "tracr-ocr":
        rules = OcrServerModel(model="tracr-ocr", mode="local").page_render(RenderSettings()).args()
        return render_page(str(path), page, *rules)
    if size.endswith("dpi"):
        return render_page(str(path), page, dpi=float(size[:-3]), max_pixels=max_pixels)
    return render_page(str(path), page, longest_side_px=int(size))


def pages_with_text(path: Path, count: int) -> list[tuple[int, str]]:
    """The first ``count`` 1-based pages with a text layer, with that text."""
    found: list[tuple[int, str]] = []
    with pymupdf.open(path) as doc:
        for number, page in enumerate(doc, start=1):
            text = page.get_text()
            if len("".join(text.split())) >= 20:
                found.append((number, text))
            if len(found) == count:
                break
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--pages", type=int, default=1, help="pages with a text layer per PDF")
    parser.add_argument("--max-pdfs", type=int, default=0, help="0: every PDF in the folder")
    parser.add_argument("--settings", default="one-pass@1288,tiled@tracr-ocr")
    parser.add_argument("--max-pixels", type=int, default=40_000_000, help="cap on a dpi render")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    pdfs = sorted(args.folder.glob("*.pdf"))[: args.max_pdfs or None]
    if not pdfs:
        sys.exit(f"no PDFs in {args.folder}")
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    engines = {mode: OcrEngine(args.threads, tile=mode == "tiled") for mode in {s.split("@")[0] for s in settings}}
    totals = {s: [0, 0.0] for s in settings}
    reference_total = 0
    header = "| page | text layer | " + " | ".join(f"{s} chars (s)" for s in settings) + " |"
    print(header)
    print("|" + "---|" * (2 + len(settings)))
    for path in pdfs:
        for page, text in pages_with_text(path, args.pages):
            want = len("".join(text.split()))
            reference_total += want
            cells = []
            for setting in settings:
                image = render(path, page, setting, args.max_pixels)
                start = time.perf_counter()
                got = engines[setting.split("@")[0]].read(image)
                seconds = time.perf_counter() - start
                n = recovered(got, text)
                totals[setting][0] += n
                totals[setting][1] += seconds
                cells.append(f"{n} ({seconds:.1f})")
            print(f"| {path.name} p{page} | {want} | " + " | ".join(cells) + " |", flush=True)
    cells = [f"**{n} = {n / max(reference_total, 1):.0%} ({s:.0f})**" for n, s in totals.values()]
    print(f"| **total** | **{reference_total}** | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
