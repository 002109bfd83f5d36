"""Scoring settings of a job config and of one scoring request (docs/scoring.md).

In a job config::

    references:
      tests: bench/tests.jsonl      # olmOCR-Bench tests (a JSONL file, or a folder of them: one category per file)
      markdown: bench/reference/    # reference pages, <pdf_slug>/<page>.md
    score: true                     # score at the end of the job
    strict_present: false           # olmOCR-Bench's rule by default; true fixes olmocr issue 461

Prices (``price:`` per model) live here too, so cost per 1,000 pages can be
reported beside quality.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracr.outputs.files import read_json
from tracr.outputs.layout import OutputLayout

__all__ = ["References", "ScoringConfig", "ModelPrice", "ScoreRequest", "score_request"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class References(_Strict):
    """Where a job's ground truth is; relative paths are read from the config's folder."""

    tests: str | None = Field(None, description="olmOCR-Bench test JSONL file, or a folder of them (one category per file).")
    markdown: str | None = Field(None, description="Folder of reference pages, <pdf_slug>/<page>.md.")


class ModelPrice(_Strict):
    """What a model costs: per million tokens (hosted), or per GPU hour (local)."""

    input_per_million: float | None = Field(None, ge=0)
    output_per_million: float | None = Field(None, ge=0)
    gpu_hour: float | None = Field(None, ge=0, description="Price of one GPU hour; cost follows from measured pages/s.")
    gpus: int = Field(1, ge=1, description="GPUs the model's server holds (for gpu_hour).")

    @model_validator(mode="after")
    def _one_kind(self) -> ModelPrice:
        tokens = self.input_per_million is not None or self.output_per_million is not None
        if tokens and self.gpu_hour is not None:
            raise ValueError("price: give token prices or gpu_hour, not both")
        if not tokens and self.gpu_hour is None:
            raise ValueError("price: give input_per_million/output_per_million or gpu_hour")
        return self


class ScoringConfig(_Strict):
    """The ``scoring`` block of a job config."""

    references: References = Field(default_factory=References)
    score: bool = Field(False, description="Score the job when it ends (health checks always; tests and references when given).")
    strict_present: bool = Field(False, description="Fix olmOCR-Bench's near-empty-output flaw (olmocr issue 461).")
    prices: dict[str, ModelPrice] = Field(default_factory=dict, description="Model slug -> price, for cost per 1,000 pages.")


class ScoreRequest(_Strict):
    """One scoring of one job: what the ``score-job`` flow is given (plain, serialisable)."""

    job_id: str
    outputs: str
    tests: str | None = None
    references: str | None = None
    strict_present: bool = False
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    seed: int = 0
    n_boot: int = Field(1000, ge=10)


def score_request(
    outputs: Path, job_id: str, *, tests: str | None = None, references: str | None = None, strict_present: bool | None = None
) -> ScoreRequest:
    """A request from explicit values, falling back on the job config's ``scoring`` block (relative paths from the config's folder)."""
    meta = read_json(OutputLayout(outputs).job_metadata(job_id)) or {}
    raw = (meta.get("config") or {}).get("scoring")
    config = ScoringConfig.model_validate(raw) if isinstance(raw, dict) else ScoringConfig()
    source = meta.get("config_source")
    base = Path(source).parent if isinstance(source, str) and source != "inline" else Path.cwd()

    def resolve(value: str | None) -> str | None:
        return None if value is None else str(Path(value) if Path(value).is_absolute() else (base / value).resolve())

    return ScoreRequest(
        job_id=job_id,
        outputs=str(outputs),
        tests=str(Path(tests).resolve()) if tests else resolve(config.references.tests),
        references=str(Path(references).resolve()) if references else resolve(config.references.markdown),
        strict_present=config.strict_present if strict_present is None else strict_present,
        prices=config.prices,
    )
