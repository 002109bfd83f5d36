"""Built-in prices, config overrides, a run's cost record and the show table: pure, on a real output tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracr.config.models import model_spec
from tracr.outputs.cost_report import cost_rows, cost_text
from tracr.outputs.layout import OutputLayout
from tracr.pricing.cost import NO_PRICE, cost_record
from tracr.pricing.prices import BUILT_IN_PRICES, Price, builtin_price, resolve_price


def test_every_built_in_price_says_when_and_where_it_was_read():
    for name, price in BUILT_IN_PRICES.items():
        assert price.as_of and price.source.startswith("https://"), name
        assert price.per_1000_pages is not None or price.output_per_million > 0, name


def test_models_match_their_listed_id_and_nothing_else():
    assert builtin_price("gpt-4o-mini-2024-07-18") is BUILT_IN_PRICES["gpt-4o-mini"]  # the longest listed id wins
    assert builtin_price("gpt-4o") is BUILT_IN_PRICES["gpt-4o"]
    assert builtin_price("openai/gpt-4.1-mini") is BUILT_IN_PRICES["gpt-4.1-mini"]
    assert builtin_price("gpt-4oo") is None and builtin_price("stub-ocr") is None and builtin_price("my-gpt-4o") is None


def test_the_config_price_overrides_the_table():
    spec = model_spec(model="gpt-4o", base_url="http://h/v1", price={"input_per_million": 1, "output_per_million": 3, "as_of": "2026-12"})
    price = resolve_price(spec.model, spec.price.to_price())
    assert (price.input_per_million, price.output_per_million, price.source, price.as_of) == (1, 3, "config", "2026-12")
    assert resolve_price("gpt-4o", None) is BUILT_IN_PRICES["gpt-4o"]


def test_cost_records_tokens_live_and_batch_and_never_a_zero_for_no_price():
    price = Price(input_per_million=2.0, output_per_million=8.0, as_of="2025-06", source="s")
    live = cost_record(1_000_000, 500_000, 200, price)
    assert live["total"] == pytest.approx(6.0) and live["per_1000_pages"] == pytest.approx(30.0) and live["price"]["mode"] == "live"
    batch = cost_record(1_000_000, 500_000, 200, price, batch=True)
    assert batch["total"] == pytest.approx(3.0) and batch["price"]["mode"] == "batch"
    unknown = cost_record(10, 10, 1, None)
    assert unknown["total"] is None and unknown["per_1000_pages"] is None and unknown["note"] == NO_PRICE
    by_page = cost_record(0, 0, 500, Price(per_1000_pages=1.0))
    assert by_page["total"] == pytest.approx(0.5)
    assert cost_record(5, 5, 0, price)["per_1000_pages"] is None  # nothing done: no per-page figure


def _run(root: Path, slug: str, run: int, meta: dict) -> None:
    folder = root / "job" / slug / f"run-{run}"
    folder.mkdir(parents=True)
    (folder / "run_metadata.json").write_text(json.dumps(meta))


def test_show_lists_cost_per_1000_pages_or_no_known_price(tmp_path):
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "job_metadata.json").write_text(json.dumps({"job_id": "job"}))
    price = Price(input_per_million=2.0, output_per_million=8.0, as_of="2025-06", source="https://example.test/p")
    _run(tmp_path, "priced", 1, {"cost": cost_record(1_000_000, 500_000, 200, price)})
    _run(tmp_path, "unpriced", 1, {"cost": cost_record(10, 20, 3, None)})
    _run(tmp_path, "local", 1, {"rollup": {}})  # no cost recorded: not shown as free
    layout = OutputLayout(tmp_path)
    rows = {row["model"]: row for row in cost_rows(layout, "job")}
    assert set(rows) == {"priced", "unpriced"}
    assert rows["priced"]["per 1,000 pages"] == "30.0000 USD" and rows["priced"]["price"] == "live 2025-06 (https://example.test/p)"
    assert rows["unpriced"]["per 1,000 pages"] == "no known price" and rows["unpriced"]["tokens in/out"] == "10/20"
    assert "cost (tokens the replies reported" in cost_text(layout, "job")
