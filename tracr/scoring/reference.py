"""Scoring a page against reference markdown (OmniDocBench-style), as separate sub-scores.

* Text: character NED = Levenshtein / max length on OmniDocBench-cleaned text (HTML
  tags dropped, only word characters kept), and word NED over ``\\w+`` tokens.
  Both report their raw distance and length so a corpus can be character-weighted.
* Tables: TEDS and structure-only TEDS (``teds.py``); each reference table is paired
  with the unused predicted table that scores best, a missing one scores 0.
* Reading order: reference and predicted lines (blocks, tables left out) are matched one-to-one by
  fuzzy similarity; over the matched ones, Kendall tau and the normalised edit distance
  of their order (OmniDocBench's reading-order metric).

The composite is there for convenience only; callers should show the sub-scores.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from tracr.scoring.normalise import clean_for_edit_distance, normalize_text
from tracr.scoring.teds import TableTree, tables_as_trees, teds

__all__ = [
    "EditDistance",
    "TableScore",
    "OrderScore",
    "ReferenceScore",
    "char_edit_distance",
    "word_edit_distance",
    "table_scores",
    "reading_order",
    "kendall_tau",
    "score_page",
    "corpus_char_ned",
]

_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class EditDistance:
    """``distance`` edits over ``length`` (the longer side); ``ned`` is their ratio (0 = identical)."""

    distance: int
    length: int

    @property
    def ned(self) -> float:
        return self.distance / self.length if self.length else 0.0


def _plain(text: str) -> str:
    return _TAG.sub(" ", text)


def char_edit_distance(prediction: str, reference: str) -> EditDistance:
    """Character Levenshtein on cleaned text (OmniDocBench's text metric)."""
    a = clean_for_edit_distance(_plain(prediction))
    b = clean_for_edit_distance(_plain(reference))
    return EditDistance(Levenshtein.distance(a, b), max(len(a), len(b)))


def word_edit_distance(prediction: str, reference: str) -> EditDistance:
    """Levenshtein over word tokens, so one wrong word costs one edit however long it is."""
    a = _WORD.findall(normalize_text(_plain(prediction)))
    b = _WORD.findall(normalize_text(_plain(reference)))
    return EditDistance(Levenshtein.distance(a, b), max(len(a), len(b)))


def _greedy_pairs(scores: npt.NDArray[Any], minimum: float) -> list[tuple[int, int]]:
    """One-to-one (row, column) pairs, best score first, none below ``minimum``."""
    pairs: list[tuple[int, int]] = []
    if scores.size == 0:
        return pairs
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for flat in np.argsort(-scores, axis=None, kind="stable"):
        row, col = divmod(int(flat), scores.shape[1])
        if scores[row, col] < minimum:
            break
        if row not in used_rows and col not in used_cols:
            pairs.append((row, col))
            used_rows.add(row)
            used_cols.add(col)
    return pairs


@dataclass(frozen=True)
class TableScore:
    """Tables of one page: mean TEDS over reference tables (``None`` when it has none)."""

    teds: float | None
    teds_structure: float | None
    reference_tables: int
    predicted_tables: int
    per_table: tuple[tuple[float, float], ...] = ()


def table_scores(prediction: str, reference: str) -> TableScore:
    """Pair each reference table with its best unused predicted table; score TEDS both ways."""
    refs = tables_as_trees(reference)
    preds = tables_as_trees(prediction)
    if not refs:
        return TableScore(None, None, 0, len(preds))
    full = np.array([[teds(p, r) for p in preds] for r in refs]) if preds else np.zeros((len(refs), 0))
    by_ref = dict(_greedy_pairs(full, 0.0))
    per_table: list[tuple[float, float]] = []
    for r, ref in enumerate(refs):
        if r in by_ref:
            pred: TableTree = preds[by_ref[r]]
            per_table.append((float(full[r, by_ref[r]]), teds(pred, ref, structure_only=True)))
        else:
            per_table.append((0.0, 0.0))
    return TableScore(
        teds=float(np.mean([t for t, _ in per_table])),
        teds_structure=float(np.mean([s for _, s in per_table])),
        reference_tables=len(refs),
        predicted_tables=len(preds),
        per_table=tuple(per_table),
    )


def kendall_tau(order: Sequence[int]) -> float:
    """Kendall tau between ``0..n-1`` and ``order`` (distinct values): 1 same order, -1 reversed."""
    n = len(order)
    if n < 2:
        return 1.0
    concordant = discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            if order[i] < order[j]:
                concordant += 1
            elif order[i] > order[j]:
                discordant += 1
    return (concordant - discordant) / (n * (n - 1) / 2)


@dataclass(frozen=True)
class OrderScore:
    """Reading order over blocks matched between reference and prediction."""

    kendall_tau: float | None
    order_ned: float | None
    matched: int
    reference_blocks: int


_HTML_TABLE = re.compile(r"<table\b.*?</table>", re.IGNORECASE | re.DOTALL)


def _without_tables(text: str) -> str:
    """Text with HTML tables and runs of two or more ``|`` lines removed (tables have TEDS)."""
    lines = _HTML_TABLE.sub("\n", text).split("\n")
    keep: list[str] = []
    run: list[str] = []
    for line in lines + [""]:
        if "|" in line:
            run.append(line)
            continue
        if len(run) == 1:
            keep.extend(run)
        run = []
        keep.append(line)
    return "\n".join(keep)


def _blocks(text: str) -> list[str]:
    lines = (clean_for_edit_distance(_plain(line)) for line in _without_tables(text).splitlines())
    return [line for line in lines if line]


def reading_order(prediction: str, reference: str, *, min_similarity: float = 60.0) -> OrderScore:
    """Match lines one-to-one (best ``fuzz.ratio`` first, at least ``min_similarity``) and compare their order."""
    refs = _blocks(reference)
    preds = _blocks(prediction)
    if not refs:
        return OrderScore(None, None, 0, 0)
    if not preds:
        return OrderScore(None, None, 0, len(refs))
    sim = process.cdist(refs, preds, scorer=fuzz.ratio, dtype=np.float32)
    matches = _greedy_pairs(sim, min_similarity)
    if len(matches) < 2:
        return OrderScore(None, None, len(matches), len(refs))
    matches.sort()
    pred_positions = [p for _, p in matches]
    ranks = [sorted(pred_positions).index(p) for p in pred_positions]
    ned = Levenshtein.distance(list(range(len(ranks))), ranks) / len(ranks)
    return OrderScore(kendall_tau(ranks), ned, len(matches), len(refs))


@dataclass(frozen=True)
class ReferenceScore:
    """All sub-scores of one page against its reference."""

    chars: EditDistance
    words: EditDistance
    tables: TableScore
    order: OrderScore

    @property
    def char_ned(self) -> float:
        return self.chars.ned

    @property
    def word_ned(self) -> float:
        return self.words.ned

    @property
    def composite(self) -> float:
        """OmniDocBench-like mean of (1 - char NED) and TEDS (when the page has tables), in [0, 1]."""
        parts = [1.0 - self.char_ned]
        if self.tables.teds is not None:
            parts.append(self.tables.teds)
        return sum(parts) / len(parts)


def score_page(prediction: str, reference: str) -> ReferenceScore:
    """Every reference sub-score for one page."""
    return ReferenceScore(
        chars=char_edit_distance(prediction, reference),
        words=word_edit_distance(prediction, reference),
        tables=table_scores(prediction, reference),
        order=reading_order(prediction, reference),
    )


def corpus_char_ned(scores: Iterable[ReferenceScore]) -> float:
    """Character-weighted NED over many pages (long pages count more than short ones)."""
    distance = length = 0
    for score in scores:
        distance += score.chars.distance
        length += score.chars.length
    return distance / length if length else 0.0
