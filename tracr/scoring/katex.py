"""Math tests at parity with olmOCR-Bench: render LaTeX with KaTeX in headless Chromium and compare.

olmOCR-Bench's math test passes when some equation of the output *renders* like the
reference: either the reference's MathML (whitespace removed) is contained in the
hypothesis's, or every rendered reference glyph can be assigned to an identical
hypothesis glyph whose up/down/left/right neighbours (centres within 5 px) carry
the same characters. ``compare_rendered`` reproduces that rule; ``KatexRenderer``
renders the way olmOCR does (KaTeX display mode, 24 px, 800x400 viewport).

This is optional: it needs Playwright, a Chromium binary (Debian's ``chromium`` works;
pass ``executable_path``) and KaTeX's ``katex.min.js``/``katex.min.css`` (``find_katex_assets``
looks in ``$TRACR_KATEX_DIR`` and in an installed ``olmocr`` package). Plug it in with
``ScoringOptions(math_matcher=renderer.matcher)``; without it math tests use the token
fallback in ``latex.py``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Glyph", "Rendered", "KatexRenderer", "compare_rendered", "find_katex_assets", "find_chromium"]


@dataclass(frozen=True)
class Glyph:
    """One innermost rendered span: its text and bounding box (x, y, width, height)."""

    text: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Rendered:
    """KaTeX output of one equation; ``error`` is set (and the rest empty) when KaTeX rejects it."""

    mathml: str
    glyphs: tuple[Glyph, ...] = field(default=())
    error: str | None = None


def find_katex_assets() -> Path | None:
    """A folder holding ``katex.min.js`` and ``katex.min.css``: ``$TRACR_KATEX_DIR`` or olmocr's copy."""
    candidates: list[Path] = []
    if os.environ.get("TRACR_KATEX_DIR"):
        candidates.append(Path(os.environ["TRACR_KATEX_DIR"]))
    spec = importlib.util.find_spec("olmocr")
    if spec is not None and spec.submodule_search_locations:
        candidates.extend(Path(p) / "bench" / "katex" for p in spec.submodule_search_locations)
    for folder in candidates:
        if (folder / "katex.min.js").is_file() and (folder / "katex.min.css").is_file():
            return folder
    return None


def find_chromium() -> str | None:
    """A Chromium executable on PATH (Debian's ``chromium``), if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


_PAGE = """<!DOCTYPE html><html><head><style>
body { display: flex; justify-content: center; align-items: center; height: 100vh; margin: 0;
       background-color: white; color: black; }
#equation-container { padding: 0; font-size: %dpx; }
</style></head><body><div id="equation-container"></div></body></html>"""

_RENDER_JS = """(eq) => {
  try {
    katex.render(eq, document.getElementById("equation-container"), {displayMode: true, throwOnError: true});
  } catch (error) { return {error: error.message}; }
  const glyphs = [];
  for (const span of document.querySelectorAll('span')) {
    if (span.children.length === 0 && /\\S/.test(span.textContent)) {
      const r = span.getBoundingClientRect();
      glyphs.push([span.textContent.trim(), r.x, r.y, r.width, r.height]);
    }
  }
  const math = document.querySelector('.katex-mathml math');
  return {mathml: math ? math.outerHTML : "", glyphs: glyphs};
}"""


class KatexRenderer:
    """Renders LaTeX with KaTeX in one headless Chromium page; results are cached per equation."""

    def __init__(self, katex_dir: Path | None = None, *, executable_path: str | None = None, font_size: int = 24):
        from playwright.sync_api import sync_playwright

        folder = katex_dir or find_katex_assets()
        if folder is None:
            raise FileNotFoundError("KaTeX assets not found: set TRACR_KATEX_DIR to a folder with katex.min.js and katex.min.css")
        self._playwright = sync_playwright().start()
        args = ["--headless", "--no-sandbox", "--disable-gpu"]
        self._browser = self._playwright.chromium.launch(executable_path=executable_path or find_chromium(), args=args)
        self._page = self._browser.new_context(viewport={"width": 800, "height": 400}).new_page()
        self._page.set_content(_PAGE % font_size)
        self._page.add_style_tag(path=str(folder / "katex.min.css"))
        self._page.add_script_tag(path=str(folder / "katex.min.js"))
        if not self._page.evaluate("typeof katex !== 'undefined'"):
            self.close()
            raise RuntimeError(f"KaTeX failed to load from {folder}")
        self._cache: dict[str, Rendered] = {}

    def render(self, latex: str) -> Rendered:
        """KaTeX's rendering of ``latex`` (display mode)."""
        cached = self._cache.get(latex)
        if cached is not None:
            return cached
        result: dict[str, Any] = self._page.evaluate(_RENDER_JS, latex)
        if "error" in result:
            rendered = Rendered(mathml=str(result["error"]), error=str(result["error"]))
        else:
            rendered = Rendered(
                result["mathml"], tuple(Glyph(str(t), float(x), float(y), float(w), float(h)) for t, x, y, w, h in result["glyphs"])
            )
        self._cache[latex] = rendered
        return rendered

    def matcher(self, reference: str, hypothesis: str) -> bool:
        """``ScoringOptions.math_matcher``: both render and ``compare_rendered`` accepts them."""
        ref = self.render(reference)
        if ref.error:
            return False
        hyp = self.render(hypothesis)
        return hyp.error is None and compare_rendered(ref, hyp)

    def close(self) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()

    def __enter__(self) -> KatexRenderer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


_SEMANTICS = re.compile(r"<semantics>(.*?)</semantics>", re.DOTALL)
_ANNOTATION = re.compile(r"<annotation\b.*?</annotation>", re.DOTALL)
_WS = re.compile(r"\s+")


def _inner_mathml(mathml: str) -> str:
    """The presentation MathML inside ``<semantics>``, without the TeX annotation, whitespace removed."""
    m = _SEMANTICS.search(mathml)
    inner = _ANNOTATION.sub("", m.group(1)) if m else mathml
    return _WS.sub("", inner)


def _split(glyph: Glyph) -> list[Glyph]:
    n = len(glyph.text)
    return [Glyph(c, glyph.x + glyph.width * i / n, glyph.y, glyph.width / n, glyph.height) for i, c in enumerate(glyph.text)]


Neighbours = list[dict[str, int | None]]


def _neighbours(glyphs: list[Glyph], tol: float = 5) -> Neighbours:
    centres = [(g.x + g.width / 2, g.y + g.height / 2) for g in glyphs]
    out: Neighbours = []
    for i, (cx, cy) in enumerate(centres):
        best: dict[str, tuple[float, int] | None] = {"up": None, "down": None, "left": None, "right": None}
        for j, (ox, oy) in enumerate(centres):
            if i == j:
                continue
            for direction, dist, aligned in (
                ("up", cy - oy, abs(ox - cx) <= tol),
                ("down", oy - cy, abs(ox - cx) <= tol),
                ("left", cx - ox, abs(oy - cy) <= tol),
                ("right", ox - cx, abs(oy - cy) <= tol),
            ):
                current = best[direction]
                if aligned and dist > 0 and (current is None or dist < current[0]):
                    best[direction] = (dist, j)
        out.append({d: (v[1] if v else None) for d, v in best.items()})
    return out


def compare_rendered(reference: Rendered, hypothesis: Rendered) -> bool:
    """olmOCR-Bench's rule: MathML containment, else a neighbour-consistent glyph assignment."""
    if _inner_mathml(reference.mathml) in _inner_mathml(hypothesis.mathml):
        return True
    ref = [c for g in reference.glyphs if g.text != "\u200b" for c in _split(g)]
    hyp = [c for g in hypothesis.glyphs if g.text != "\u200b" for c in _split(g)]
    candidates = [[j for j, h in enumerate(hyp) if h.text == r.text] for r in ref]
    if any(not c for c in candidates):
        return False
    ref_nb, hyp_nb = _neighbours(ref), _neighbours(hyp)
    used = [False] * len(hyp)
    assignment: dict[int, int] = {}

    def place(i: int) -> bool:
        if i == len(ref):
            return True
        for cand in candidates[i]:
            if used[cand]:
                continue
            assignment[i] = cand
            used[cand] = True
            ok = True
            for direction in ("up", "down", "left", "right"):
                mine = ref_nb[i][direction]
                if mine is None:
                    continue
                theirs = hyp_nb[cand][direction]
                if theirs is None or (assignment[mine] != theirs if mine in assignment else hyp[theirs].text != ref[mine].text):
                    ok = False
                    break
            if ok and place(i + 1):
                return True
            used[cand] = False
            del assignment[i]
        return False

    return place(0)


def _debug_dump(rendered: Rendered) -> str:  # pragma: no cover - a helper for looking at failures
    return json.dumps({"mathml": rendered.mathml, "glyphs": [g.__dict__ for g in rendered.glyphs]}, indent=1)
