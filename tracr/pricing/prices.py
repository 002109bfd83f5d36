"""Built-in list prices of common hosted models, each with the date and page it was read from.

Kept small on purpose: a price tracr cannot vouch for is worse than none, so a
model not listed (and not priced in its config) records "no known price" rather
than a cost of zero. Prices move: a config's ``price`` overrides the table, and
the date says how old a built-in one is. All in US dollars per million tokens
(Mistral OCR: per 1,000 pages); batch prices are half, as the providers list them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUILT_IN_PRICES", "Price", "builtin_price", "resolve_price"]

OPENAI_SOURCE = "https://openai.com/api/pricing/"
ANTHROPIC_SOURCE = "https://www.anthropic.com/pricing#api"
MISTRAL_SOURCE = "https://mistral.ai/pricing#api-pricing"
GOOGLE_SOURCE = "https://ai.google.dev/gemini-api/docs/pricing"


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price: per million input and output tokens, or per 1,000 pages; and where it came from."""

    input_per_million: float = 0.0
    output_per_million: float = 0.0
    per_1000_pages: float | None = None  # priced by page, not token (Mistral OCR)
    batch_factor: float = 0.5  # what the batch endpoint charges, as a share of the live price
    currency: str = "USD"
    as_of: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "input_per_million": self.input_per_million,
            "output_per_million": self.output_per_million,
            "currency": self.currency,
            "as_of": self.as_of,
            "source": self.source,
        }
        if self.per_1000_pages is not None:
            data["per_1000_pages"] = self.per_1000_pages
        return data


def _tokens(inp: float, out: float, as_of: str, source: str) -> Price:
    return Price(input_per_million=inp, output_per_million=out, as_of=as_of, source=source)


#: Model id (as the provider spells it, without a dated suffix) -> list price.
BUILT_IN_PRICES: dict[str, Price] = {
    "gpt-4o": _tokens(2.50, 10.00, "2025-06", OPENAI_SOURCE),
    "gpt-4o-mini": _tokens(0.15, 0.60, "2025-06", OPENAI_SOURCE),
    "gpt-4.1": _tokens(2.00, 8.00, "2025-06", OPENAI_SOURCE),
    "gpt-4.1-mini": _tokens(0.40, 1.60, "2025-06", OPENAI_SOURCE),
    "gpt-4.1-nano": _tokens(0.10, 0.40, "2025-06", OPENAI_SOURCE),
    "claude-sonnet-4": _tokens(3.00, 15.00, "2025-06", ANTHROPIC_SOURCE),
    "claude-3-5-haiku": _tokens(0.80, 4.00, "2025-06", ANTHROPIC_SOURCE),
    "gemini-2.0-flash": _tokens(0.10, 0.40, "2025-06", GOOGLE_SOURCE),
    "pixtral-large": _tokens(2.00, 6.00, "2025-06", MISTRAL_SOURCE),
    "mistral-ocr": Price(per_1000_pages=1.00, as_of="2025-06", source=MISTRAL_SOURCE),
}


def builtin_price(model: str) -> Price | None:
    """The listed price of ``model``: its id, or the longest listed id it starts with (``gpt-4o-mini-2024-07-18``).

    A router's ``vendor/model`` id is matched by its model part.
    """
    name = model.lower().rsplit("/", 1)[-1]
    matches = [key for key in BUILT_IN_PRICES if name == key or name.startswith(key + "-")]
    return BUILT_IN_PRICES[max(matches, key=len)] if matches else None


def resolve_price(model: str, override: Price | None) -> Price | None:
    """The config's price when it gives one, else the built-in one, else None (no known price)."""
    return override if override is not None else builtin_price(model)
