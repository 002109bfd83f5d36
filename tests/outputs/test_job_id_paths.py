"""Job ids never become paths outside the outputs root: ``tracr export`` and ``tracr show``, in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from tracr.errors import ErrorClass, TracrError
from tracr.outputs.export import ExportError, export_pages
from tracr.outputs.identifiers import InvalidIdentifier
from tracr.outputs.layout import OutputLayout
from tracr.outputs.report import failed_pages, job_exists, metrics_rows, run_rows, show_job_text
from tracr.testing.output_tree import ModelProfile, TreeSpec, generate_tree

BAD_IDS = ["..", ".", "../odd", "a/b", "/abs", ".hidden", "", "a\x00b"]


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """``X/odd/fake-ocr`` as the outputs root, with a real job in ``X/odd`` (the parent) and one in the root."""
    odd = tmp_path / "X" / "odd"
    generate_tree(odd, TreeSpec(job_id="outside", models=(ModelProfile("model-a"),), pdfs=1, pages_per_pdf=2))
    root = odd / "fake-ocr"
    generate_tree(root, TreeSpec(job_id="inside", models=(ModelProfile("model-a"),), pdfs=1, pages_per_pdf=2))
    (odd / "job_metadata.json").write_text("{}")  # the parent itself looks like a job
    return root


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_export_refuses_a_job_id_that_is_not_a_folder_name(nested: Path, job_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = files_under(nested.parent.parent)
    with pytest.raises(ExportError, match="invalid job id") as caught:
        export_pages(OutputLayout(nested), job_id, "csv")
    assert isinstance(caught.value, TracrError) and caught.value.error_class is ErrorClass.IDENTIFIER
    assert main(["export", job_id, "--outputs", str(nested)]) == 2
    assert "invalid job id" in capsys.readouterr().err
    assert files_under(nested.parent.parent) == before  # no pages.csv anywhere: not X/odd/pages.csv, not in the root


def test_export_refuses_a_job_folder_that_is_a_symlink_out_of_the_root(nested: Path) -> None:
    (nested / "escape").symlink_to(nested.parent)  # X/odd/fake-ocr/escape -> X/odd, which has job_metadata.json
    with pytest.raises(ExportError, match="leaves the outputs root"):
        export_pages(OutputLayout(nested), "escape", "csv")
    assert not (nested.parent / "pages.csv").exists()


def test_export_of_a_real_job_lands_in_its_own_folder(nested: Path) -> None:
    path, rows = export_pages(OutputLayout(nested), "inside", "csv")
    assert path == nested / "inside" / "pages.csv" and path.is_file()
    assert rows == 2 and len(path.read_text().splitlines()) == 3
    with pytest.raises(ExportError, match="no job 'nope'"):
        export_pages(OutputLayout(nested), "nope", "csv")


@pytest.mark.parametrize("job_id", BAD_IDS)
def test_show_refuses_a_job_id_that_is_not_a_folder_name(nested: Path, job_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    layout = OutputLayout(nested)
    assert show_job_text(layout, job_id).startswith("invalid job id")
    assert not job_exists(layout, job_id)
    assert main(["show", job_id, "--outputs", str(nested)]) == 1
    out = capsys.readouterr().out
    assert "invalid job id" in out and "model-a" not in out  # nothing of the job next door
    for report in (
        lambda: run_rows(layout, job_id),
        lambda: metrics_rows(layout, job_id),
        lambda: failed_pages(layout, job_id, "model-a", 1),
    ):
        with pytest.raises(InvalidIdentifier):
            report()


def test_show_of_a_real_job(nested: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "inside", "--outputs", str(nested)]) == 0
    assert "job inside" in capsys.readouterr().out
    assert job_exists(OutputLayout(nested), "inside") and not job_exists(OutputLayout(nested), "outside")
    with pytest.raises(InvalidIdentifier, match="invalid model slug"):
        failed_pages(OutputLayout(nested), "inside", "../model-a", 1)
