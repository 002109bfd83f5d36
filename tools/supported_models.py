"""Writes docs/supported-models.md from the model registry (tracr/adapters/registry.py), so the page cannot drift.

    python tools/supported_models.py > docs/supported-models.md   # regenerate
    python tools/supported_models.py --check                      # exit 1, with a diff summary, when the page is stale

The page is built from the registry entries alone: matching regex, request, parser,
furniture, serve flags, retry rule, prompt and sources of each family.
``tests/adapters/test_supported_models_doc.py`` runs :func:`check` so a registry
change without a regenerated page fails the tests.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tracr.adapters.records import describe_request  # noqa: E402
from tracr.adapters.registry import ADAPTERS, GENERIC, OLMOCR_TEMPERATURES, OLMOCR_V1_TEMPERATURES  # noqa: E402
from tracr.adapters.retry_rules import CHANDRA_MAX_RETRIES, OLMOCR_MAX_ATTEMPTS  # noqa: E402
from tracr.adapters.spec import Adapter, EngineKind, PartOrder, RetryRule  # noqa: E402

__all__ = ["DOC", "check", "render"]

DOC = REPO / "docs" / "supported-models.md"

#: How each parser reads a reply, in a few words (the parser modules' docstrings have the full rules).
PARSER_READS: dict[str, str] = {
    "none": "stored as it comes",
    "plain": "Markdown as it comes; one code fence around the whole reply is taken off",
    "olmocr": "YAML front matter (language, rotation, table and diagram flags), then the Markdown body; checked as olmOCR's FrontMatterParser",
    "olmocr-v1-json": "one JSON object; its `natural_text` is the page",
    "dots-layout": "JSON list of layout cells (bbox, category, text) → Markdown as dots.ocr's layoutjson2md; broken JSON repaired as its output cleaner",
    "deepseek-grounding": "Markdown with `<|ref|>…<|/ref|><|det|>…<|/det|>` grounding pairs: pairs removed, image blocks linked, end of sequence checked",
    "nanonets": "Markdown with `<page_number>`, `<watermark>`, `<img>` and `<signature>` tags",
    "chandra-html": "HTML layout blocks `<div data-bbox data-label>` → Markdown as Chandra's parse_markdown",
    "doctags": "DocTags → Markdown with docling-core",
    "paddleocr-vl": "one whole-page block: PaddleX's repetition cut, `\\(`/`\\[` → `$`/`$$`, OTSL tables → HTML",
    "mistral-ocr": "the JSON response's page `markdown`; separate tables put back, image references as placeholders",
    "mineru": "the layout list (boxes, types), then each block's reply (OTSL tables → HTML), assembled as MinerU's json2md",
}


def _ladder(values: Iterable[float]) -> str:
    return ", ".join(f"{value:g}" for value in values)


def retry_text(adapter: Adapter) -> str:
    """The family's rule for a reply that came back unusable, in one line."""
    match adapter.retry:
        case RetryRule.OLMOCR:
            ladder = OLMOCR_V1_TEMPERATURES if adapter.parser == "olmocr-v1-json" else OLMOCR_TEMPERATURES
            return (
                f"`olmocr`: a reply the parser cannot read, or one cut off (no stop) → ask again at the next temperature ({_ladder(ladder)}), "
                f"up to {OLMOCR_MAX_ATTEMPTS} attempts; rotation invalid → re-rendered turned by `rotation_correction`"
            )
        case RetryRule.CHANDRA:
            return f"`chandra`: repeated tail → ask again at temperature 0.3, top_p 0.95, up to {CHANDRA_MAX_RETRIES} times"
        case RetryRule.DEEPSEEK:
            return "`deepseek`: no end of sequence (cut at max_tokens) → the page fails as a repetition, as DeepSeek's own script drops it"
        case RetryRule.NONE:
            return "none"
    return f"`{adapter.retry.value}`"


def serve_text(adapter: Adapter) -> str:
    """The flags ``vllm serve`` gets for this family, shell-quoted; '—' for a model tracr does not serve."""
    if adapter.serve is None:
        return "—"
    args = list(adapter.serve.args)
    if adapter.serve.limit_mm_per_prompt:
        args += ["--limit-mm-per-prompt", json.dumps(dict(adapter.serve.limit_mm_per_prompt))]
    flags = code(shlex.join(args)) if args else "no extra flags"
    size = f" ({adapter.serve.params_b:g} B parameters for the fit check)" if adapter.serve.params_b else ""
    return flags + size


def sent_text(adapter: Adapter) -> str:
    """What a page's request holds: the registry's one-line description plus the system message and prefix."""
    if adapter is GENERIC:
        return adapter.notes
    parts = [describe_request(adapter)]
    if adapter.system is not None:
        parts.append(f"system message {code(adapter.system)}")
    if adapter.prefix and adapter.order is not PartOrder.IMAGE_ONLY:
        parts.append(f"literal prefix {code(adapter.prefix)} before the prompt")
    if adapter.fills_image_size:
        parts.append("the prompt gets the image's `{width}`/`{height}`")
    if "{anchor_text}" in adapter.text:
        parts.append("the prompt gets the page's text layer (`{anchor_text}`)")
    return "; ".join(parts)


def code(text: str) -> str:
    """``text`` as an inline code span (longer backtick fences when it holds backticks)."""
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str = "text") -> str:
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(adapter: Adapter) -> str:
    """The GitHub heading anchor of the family's subsection."""
    heading = f"{adapter.name} — {adapter.family}".lower()
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


INTRO = """\
# Supported models

<!-- Generated by tools/supported_models.py from tracr/adapters/registry.py: do not edit by hand.
     Regenerate with `python tools/supported_models.py > docs/supported-models.md`. -->

tracr asks each OCR model family the way it was trained or documented to be asked, and
reads its reply the family's way. Every family is one entry in the model registry
(`tracr/adapters/registry.py`): the request (system message, part order, literal prefix,
prompt, image preparation, sampling), the `vllm serve` flags, the reply parser, the
family's retry rule, the page furniture its reply marks, and where each setting comes from.

## How a model gets its entry

* **By model id.** Each entry has a regex, searched in the lower-cased model id
  (`models[].model`); the **first entry that matches wins**, in the order of the table below.
* **By name.** `adapter: <name>` on a model names an entry (or one of the job's own, below);
  use it when vLLM's `--served-model-name` hides the real id.
* **None.** `adapter: none` turns matching off: the model gets the job's generic
  prompt, tokens, temperature and render settings, and its reply is stored as it comes.
  A model that no entry matches gets the same.
* **Your own.** A job config can define adapters under `adapters:` and name them on a
  model with `adapter:` (`tracr/config/adapters.py`). A custom adapter starts from a
  built-in entry (`base`, default `generic`) and replaces what it names: `prompt`,
  `system`, `order` (`text_first`, `image_first`, `image_only`), `prefix`,
  `image` (`longest_side_px`, `shortest_side_px`, `dpi`, `max_pixels`), `temperature`,
  `max_tokens`, `top_p`, `stop`, `extra_body` (sent to vLLM as it is), `parser`
  (one of the parser names below, or `none`) and `retry` (`none`, `olmocr`, `chandra`, `deepseek`).

```yaml
adapters:
  - name: my-qwen-ft
    base: qwen-vl
    prompt: "Transcribe this page as Markdown. Tables as HTML."
    image: {longest_side_px: 1600}
    temperature: 0.0
    max_tokens: 6000
models:
  - model: my-org/qwen2.5-vl-ocr-ft
    mode: local
    provider: vllm
    adapter: my-qwen-ft
```

## Page furniture and raw replies

Page headers, footers, page numbers and watermarks that a family's reply marks as such
are **left out of the page by default** (olmOCR-Bench scores their absence); the column
"dropped by default" lists them, and each page records what it dropped. Set
`keep_furniture: true` on a model to keep them. Families whose reply does not mark
furniture (olmOCR is trained to leave headers and footers out) drop nothing.

When the parser changed the reply, the raw reply is kept as `<page>.reply.txt` beside
`<page>.md`, so nothing the model said is lost and the page can be parsed again (with
another parser, or with `keep_furniture`) without asking the model again. A reply the
parser cannot read fails the page, with the raw reply kept the same way.

## Prompt placeholders

* `{width}` and `{height}`: for entries marked so, replaced by the size in pixels of the
  image actually sent (after resizing), as olmOCR-Bench's `fullv3simple` prompt asks.
* `{anchor_text}` (olmOCR v1): replaced by the page's own text layer in olmOCR's
  "document anchoring" format (`Page dimensions: WxH`, then `[Image x0xy0 to x1xy1]` and
  `[XxY]text` lines), cut to 6,000 characters (`tracr/documents/pdf.py::page_anchor_text`).
"""


def _table(adapters: list[Adapter]) -> list[str]:
    lines = [
        "## Families",
        "",
        "| entry | family | model ids (regex) | what is sent | how the reply is read | dropped by default | `vllm serve` flags | retry rule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for adapter in adapters:
        match = code(adapter.match) if adapter.match else "no entry matched, or `adapter: none`"
        reads = f"{code(adapter.parser)}: {PARSER_READS[adapter.parser]}" if adapter.parser in PARSER_READS else code(adapter.parser)
        dropped = ", ".join(code(kind) for kind in adapter.furniture) or "nothing"
        cells = [
            f"[`{adapter.name}`](#{_anchor(adapter)})",
            adapter.family,
            match,
            sent_text(adapter),
            reads,
            dropped,
            serve_text(adapter),
            retry_text(adapter),
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    lines += ["", "`—` under `vllm serve` flags: not a model tracr serves (a hosted API, or whatever the job points at)."]
    return lines


def _prompt_lines(adapter: Adapter) -> list[str]:
    if adapter is GENERIC:
        return ["No prompt of its own: the model's `prompt`, else the job's `prompt`."]
    if adapter.engine is EngineKind.MISTRAL_OCR:
        return ["No prompt: the page goes to `POST /v1/ocr` as a one-page PDF."]
    if adapter.order is PartOrder.IMAGE_ONLY:
        return ["No text part: the image alone is sent."]
    lines: list[str] = []
    if adapter.system is not None:
        lines += ["System message:", "", fenced(adapter.system), ""]
    if adapter.prefix:
        lines += [f"Literal prefix, sent right before the prompt in the same text part: {code(adapter.prefix)}", ""]
    if not adapter.prompt:
        if adapter.engine is EngineKind.LAYOUT_THEN_BLOCKS:
            lines.append(
                "No single prompt: the engine sends the layout prompt, then a prompt chosen by each block's type (see the sources)."
            )
        else:
            lines.append("No prompt.")
        return lines
    lines += ["Prompt:", "", fenced(adapter.prompt)]
    if adapter.prompt.endswith("\n"):
        lines += ["", "The prompt ends with a newline."]
    if adapter.fills_image_size:
        lines += ["", "`{width}` and `{height}` are replaced by the size in pixels of the image sent."]
    if "{anchor_text}" in adapter.prompt:
        lines += ["", "`{anchor_text}` is replaced by the page's text layer in olmOCR's anchor format (see Prompt placeholders)."]
    return lines


def _sampling_extras(adapter: Adapter) -> str:
    """Stop strings and ``extra_body`` in full (the request line has the rest of the sampling)."""
    sampling = adapter.sampling
    parts: list[str] = []
    if sampling.stop:
        parts.append("stop " + ", ".join(code(stop) for stop in sampling.stop))
    if sampling.extra_body:
        parts.append("extra_body " + code(json.dumps(dict(sampling.extra_body), sort_keys=True)))
    return "; ".join(parts)


def _section(adapter: Adapter) -> list[str]:
    lines = [f"### {adapter.name} — {adapter.family}", ""]
    if adapter.match:
        lines.append(f"* Model ids: {code(adapter.match)}")
    lines.append(f"* Request: {sent_text(adapter)}")
    if adapter.engine is EngineKind.CHAT and _sampling_extras(adapter):
        lines.append(f"* Sampling, besides the above: {_sampling_extras(adapter)}")
    lines.append(
        f"* Reply: parser {code(adapter.parser)}; dropped by default: {', '.join(code(k) for k in adapter.furniture) or 'nothing'}"
    )
    if adapter.serve is not None:
        lines.append(f"* Serve: {serve_text(adapter)}")
    if adapter.retry is not RetryRule.NONE:
        lines.append(f"* Retry: {retry_text(adapter)}")
    if adapter.notes and adapter is not GENERIC:
        lines.append(f"* Note: {adapter.notes}")
    lines += ["", *_prompt_lines(adapter), "", "Sources:", ""]
    lines += [f"* {code(setting)}: {source}" for setting, source in adapter.sources.items()]
    return [*lines, ""]


def render() -> str:
    """The whole page, from the registry as it is now."""
    adapters = [*ADAPTERS, GENERIC]
    lines = [INTRO, *_table(adapters), "", "## Each family", ""]
    for adapter in adapters:
        lines += _section(adapter)
    lines += [
        "## Not confirmed",
        "",
        "Settings whose source says UNCONFIRMED: taken from the best source found, but not checked against the model's own.",
        "",
    ]
    unconfirmed = [
        f"* `{adapter.name}`, {code(setting)}: {source}"
        for adapter in adapters
        for setting, source in adapter.sources.items()
        if "UNCONFIRMED" in source
    ]
    lines += unconfirmed or ["None."]
    return "\n".join(lines).rstrip("\n") + "\n"


def check(path: Path = DOC) -> str | None:
    """``None`` when ``path`` is what :func:`render` makes now, else a short summary of the difference."""
    expected = render()
    actual = path.read_text(encoding="utf-8") if path.exists() else ""
    if actual == expected:
        return None
    name = str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    diff = list(difflib.unified_diff(actual.splitlines(), expected.splitlines(), name, "from the registry", lineterm="", n=0))
    changed = sum(1 for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---")))
    shown = "\n".join(diff[:40]) + ("\n…" if len(diff) > 40 else "")
    return f"{name} is stale: {changed} lines differ from the registry.\nRegenerate: python tools/supported_models.py > {name}\n{shown}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with docs/supported-models.md instead of printing; exit 1 when stale")
    args = parser.parse_args(argv)
    if not args.check:
        sys.stdout.write(render())
        return 0
    problem = check()
    if problem is None:
        print(f"{DOC.relative_to(REPO)} is up to date")
        return 0
    print(problem, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
