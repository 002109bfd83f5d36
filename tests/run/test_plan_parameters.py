"""A run's plan as a Prefect flow-run parameter: small enough for the server at 20,000 PDFs."""

from __future__ import annotations

import json

import pytest

from tracr.config.job import JobConfig
from tracr.run.plan import PDFS_LISTED, PdfPlan, PlannedPdfs, RunPlan


def _plan(pdfs: int) -> RunPlan:
    config = JobConfig.model_validate(
        {"job_id": "many", "input_path": "/in", "models": [{"model": "m", "base_url": "http://h/v1", "api_key_env": "K"}]}
    )
    spec = config.models[0]
    listed = [
        PdfPlan(path=f"/in/invoices/doc-{i:06d}.pdf", slug=f"doc-{i:06d}", page_count=1, pages=[1], size_bytes=5000) for i in range(pdfs)
    ]
    return RunPlan(
        job_id="many",
        outputs_root="/out",
        run=1,
        model=spec,
        pdfs=listed,
        prompt="OCR",
        max_tokens=64,
        temperature=0.0,
        render=config.render_for(spec),
    )


def test_a_plan_of_20000_pdfs_passes_prefects_parameter_size_check():
    from prefect._internal.schemas.validators import validate_parameter_size
    from prefect.settings import get_current_settings

    from flows.model_run import model_run_flow

    limit = get_current_settings().server.api.max_parameter_size
    plan = _plan(20_000)
    full = json.dumps([pdf.as_parameter() for pdf in plan.pdfs])
    assert len(full) > limit  # listed in full, the server would refuse the subflow (HTTP 422)
    parameters = model_run_flow.serialize_parameters({"plan": plan})
    validate_parameter_size(parameters, limit)
    summary = parameters["plan"]["pdfs"]
    assert summary["pdfs"] == 20_000 and summary["pages"] == 20_000 and summary["first"] == "doc-000000" and summary["last"] == "doc-019999"
    assert plan.pdfs[19_999].slug == "doc-019999"  # the run itself keeps every PDF


def test_a_small_plan_lists_its_pdfs_and_round_trips():
    plan = _plan(PDFS_LISTED)
    assert RunPlan.model_validate_json(plan.model_dump_json()) == plan
    with pytest.raises(ValueError):  # a summarised list is for people, not for rebuilding a plan
        RunPlan.model_validate_json(_plan(PDFS_LISTED + 1).model_dump_json())


def test_prefect_does_not_walk_a_plans_pdfs():
    """Prefect walks a subflow's parameters twice; a plan's PDFs are a leaf to it, not 20,000 items."""
    from prefect.utilities.collections import visit_collection

    plan = _plan(2_000)
    seen: list[type] = []
    visit_collection({"plan": plan}, lambda item: seen.append(type(item)) or item, return_data=True, max_depth=-1)
    assert PdfPlan not in seen and seen.count(RunPlan) == 1
    assert isinstance(plan.pdfs, PlannedPdfs) and plan.pdfs[1_999].slug == "doc-001999" and len(plan.pdfs) == 2_000
    assert plan.pdfs == list(plan.pdfs) and plan.pdfs[:2] == (plan.pdfs[0], plan.pdfs[1])
