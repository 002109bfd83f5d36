"""Render workers load only what they run: PyMuPDF's layout model loads only where the text layer is read
(which reads the same either way), and no worker imports the job's CLI or its config models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import make_pdf

REPO = Path(__file__).resolve().parents[2]

TEXT_LAYER = textwrap.dedent(
    """
    import json, sys
    if sys.argv[2] == "pymupdf-first":
        import pymupdf  # the layout model loads at once, as in any program that imports PyMuPDF itself
    from tracr.documents.pdf import page_text_markdown
    loaded_before = sys.modules.get("pymupdf.layout") is not None
    text = page_text_markdown(sys.argv[1], 1)
    import pymupdf, pymupdf4llm
    print(json.dumps({"loaded_before": loaded_before, "text": text,
                      "layout_mode": pymupdf4llm._use_layout, "layout_active": pymupdf._get_layout is not None}))
    """
)

WORKERS = textwrap.dedent(
    """
    import asyncio, sys, time
    from tasks.documents.render_pool import RenderPool
    from tracr.config.job import RenderSettings

    def maps(pid):
        return open(f"/proc/{pid}/maps").read()

    async def main():
        pool = RenderPool(2)
        await pool.warm()
        await pool.data_url(sys.argv[1], 1, RenderSettings(longest_side_px=300, format="png"))
        pids = [process.pid for process in pool._executor._processes.values()]
        deadline = time.monotonic() + 60
        while not all("pymupdf" in maps(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)  # a worker spawned last may still be importing
        for pid in pids:
            print("onnxruntime" in maps(pid), "pymupdf" in maps(pid))
        pool.shutdown()

    asyncio.run(main())
    """
)


#: Run as the main module, as the ``tracr`` script runs cli.main: spawn would import it again in every worker.
WORKER_MODULES = textwrap.dedent(
    """
    import asyncio, json, sys
    import cli.main  # noqa: F401  (what the tracr console script imports at its top)
    from tasks.documents.render_pool import RenderPool

    async def main():
        pool = RenderPool(1)
        await pool.warm()
        loop = asyncio.get_running_loop()
        modules = await loop.run_in_executor(pool._executor, eval, "sorted(__import__('sys').modules)")
        main_file = await loop.run_in_executor(pool._executor, eval, "getattr(__import__('sys').modules['__main__'], '__file__', None)")
        print(json.dumps({"modules": modules, "main_file": main_file}))
        pool.shutdown()

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def _python(script: str, *args: str, as_file: Path | None = None) -> str:
    if as_file is not None:
        as_file.write_text(script)
    command = [sys.executable, str(as_file)] if as_file is not None else [sys.executable, "-c", script]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _two_column_pdf(path: Path) -> Path:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((50, 60), "Quarterly Report", fontsize=22)
    for column, x in enumerate((50, 320)):
        for line in range(12):
            page.insert_text((x, 110 + 16 * line), f"column {column + 1} line {line + 1} of the body text", fontsize=10)
    doc.save(path)
    return path


def test_the_text_layer_loads_the_layout_model_when_it_reads_and_reads_as_pymupdf_would(tmp_path):
    pdf = str(_two_column_pdf(tmp_path / "columns.pdf"))
    deferred = json.loads(_python(TEXT_LAYER, pdf, "tracr-first"))
    eager = json.loads(_python(TEXT_LAYER, pdf, "pymupdf-first"))
    assert deferred["loaded_before"] is False and eager["loaded_before"] is True
    assert deferred["layout_mode"] is True and deferred["layout_active"] is True  # switched on at first use
    assert eager["layout_mode"] is True and eager["layout_active"] is True
    assert "column 2 line 12" in deferred["text"]
    assert deferred["text"] == eager["text"]


def test_render_workers_never_load_the_layout_model(tmp_path):
    pdf = str(make_pdf(tmp_path / "a.pdf", 1))
    lines = _python(WORKERS, pdf).split()
    assert lines == ["False", "True"] * 2  # PyMuPDF is loaded, its ONNX layout model is not


def test_render_workers_import_neither_the_cli_that_started_them_nor_tracrs_config(tmp_path):
    seen = json.loads(_python(WORKER_MODULES, as_file=tmp_path / "tracr_like_main.py"))
    modules = set(seen["modules"])
    assert "tracr.documents.pdf" in modules and "pymupdf" in modules  # what a worker runs is there
    assert seen["main_file"] is None  # the parent's main script was not run again as __mp_main__
    unwanted = {"cli.main", "cli.running", "tasks.documents.render_pool", "tracr.config.job", "pydantic", "yaml", "prefect"}
    assert not modules & unwanted, sorted(modules & unwanted)
