"""docs/supported-models.md is generated from the model registry: a registry change needs a regenerated page."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    path = REPO / "tools" / "supported_models.py"
    spec = importlib.util.spec_from_file_location("tracr_tools_supported_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_committed_page_matches_the_registry() -> None:
    problem = _generator().check()
    assert problem is None, problem


def test_every_family_has_a_row_and_a_section(tmp_path: Path) -> None:
    from tracr.adapters.registry import ADAPTERS, GENERIC

    generator = _generator()
    page = generator.render()
    rows = [line for line in page.splitlines() if line.startswith("| [`")]
    assert len(rows) == len(ADAPTERS) + 1
    for adapter in (*ADAPTERS, GENERIC):
        assert f"| [`{adapter.name}`](#" in page
        assert f"### {adapter.name} — {adapter.family}" in page
        if adapter.prompt:
            assert adapter.prompt.rstrip("\n") in page  # the exact prompt, in its fenced block
    unconfirmed = page.split("## Not confirmed", 1)[1]
    for adapter in ADAPTERS:
        for source in adapter.sources.values():
            if "UNCONFIRMED" in source:
                assert source in unconfirmed

    stale = tmp_path / "supported-models.md"
    stale.write_text(page.replace("olmocr", "olmOCR", 1), encoding="utf-8")
    problem = generator.check(stale)
    assert problem is not None and "stale" in problem
