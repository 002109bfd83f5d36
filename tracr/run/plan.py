"""What a run will do, as plain data safe to hand to Prefect as flow parameters.

Plans carry the names of key variables, never key values: Prefect stores and shows
flow-run parameters, so a secret in a plan would leak into its database and UI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, overload

from pydantic import BaseModel, GetCoreSchemaHandler, field_serializer
from pydantic_core import core_schema

from tracr.adapters.spec import Adapter
from tracr.config.job import ModelSpec, RenderSettings
from tracr.config.models import KeyedModel
from tracr.outputs.layout import RunLocation

__all__ = ["PdfPlan", "PlannedPdfs", "RunPlan", "PDFS_LISTED"]

#: PDFs a plan lists when it becomes JSON (a Prefect flow-run parameter); more are summarised,
#: since Prefect refuses parameters over 512 KB (about 3,000 PDFs) and nobody reads 20,000 in the UI.
PDFS_LISTED = 200


@dataclass(frozen=True, slots=True)
class PdfPlan:
    """One input PDF as inspected before the job starts.

    A slotted dataclass, not a pydantic model: a run holds one per PDF for its
    whole life, and at 20,000 PDFs that is 5 MiB instead of 25. Pydantic still
    validates it as a field of :class:`RunPlan` (a dict becomes one, an instance
    passes as it is).
    """

    path: str
    slug: str
    page_count: int = 0
    pages: Sequence[int] = ()
    size_bytes: int = 0
    error: str | None = None

    def as_parameter(self) -> dict[str, Any]:
        return {**asdict(self), "pages": list(self.pages)}


class PlannedPdfs(Sequence[PdfPlan]):
    """A run's PDFs, in order: a sequence Prefect passes along without walking into it.

    Prefect walks a flow's parameters item by item, twice for every subflow (to
    resolve futures, and to record the subflow's inputs), which for 20,000 PDFs
    cost 0.56 s a walk and a few MiB, per model. It walks lists, tuples, sets,
    dicts, dataclasses and pydantic models; this is none of those, so it stops here.
    """

    __slots__ = ("_pdfs",)

    def __init__(self, pdfs: Iterable[PdfPlan] = ()) -> None:
        self._pdfs = tuple(pdfs)

    @overload
    def __getitem__(self, index: int) -> PdfPlan: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[PdfPlan]: ...
    def __getitem__(self, index: int | slice) -> PdfPlan | Sequence[PdfPlan]:
        return self._pdfs[index]

    def __len__(self) -> int:
        return len(self._pdfs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PlannedPdfs):
            return self._pdfs == other._pdfs
        return isinstance(other, Sequence) and self._pdfs == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so not hashable

    def __repr__(self) -> str:
        return f"PlannedPdfs({len(self._pdfs)} PDFs)"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """An instance as it is; anything else validated as a list of :class:`PdfPlan` first."""
        from_list = core_schema.no_info_after_validator_function(cls, handler.generate_schema(list[PdfPlan]))
        return core_schema.union_schema([core_schema.is_instance_schema(cls), from_list])


class RunPlan(BaseModel):
    """Everything one model run needs, minus secrets."""

    job_id: str
    outputs_root: str
    run: int
    model: ModelSpec
    pdfs: PlannedPdfs
    prompt: str
    max_tokens: int
    temperature: float
    render: RenderSettings
    adapter: Adapter | None = None  # how the model is asked and read (None: the text layer, or a plan from before adapters)
    pdf_concurrency: int = 4
    resume: bool = False  # continue this run in place, skipping finished pages
    config_digest: str | None = None
    failure_alert_pages: int | None = None  # failed pages that emit tracr.run.page-failures

    def model_post_init(self, __context: object) -> None:
        if isinstance(self.model, KeyedModel) and self.model.api_key is not None:
            raise ValueError("a RunPlan must not carry an API key value; pass api_key_env instead")

    @field_serializer("pdfs", when_used="json")
    def _pdfs_as_parameter(self, pdfs: PlannedPdfs) -> list[dict[str, Any]] | dict[str, Any]:
        """Up to ``PDFS_LISTED`` PDFs as they are; more as a summary (the run gets the list itself, not its JSON)."""
        if len(pdfs) <= PDFS_LISTED:
            return [pdf.as_parameter() for pdf in pdfs]
        return {
            "pdfs": len(pdfs),
            "pages": sum(len(pdf.pages) for pdf in pdfs),
            "broken": sum(pdf.error is not None for pdf in pdfs),
            "first": pdfs[0].slug,
            "last": pdfs[-1].slug,
            "listed_in": "inputs.jsonl",
        }

    @property
    def model_slug(self) -> str:
        return self.model.slug

    @property
    def location(self) -> RunLocation:
        return RunLocation(Path(self.outputs_root), self.job_id, self.model_slug, self.run)

    @property
    def pages_total(self) -> int:
        return sum(len(pdf.pages) for pdf in self.pdfs)
