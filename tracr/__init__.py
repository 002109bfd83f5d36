"""tracr: benchmark OCR models over your own PDFs, orchestrated by Prefect.

This package is the domain: plain Python with no Prefect in it, grouped by concept.

* ``config/``    the job config (models as typed kinds), inputs, page selection, presets
* ``run/``       what a run plans and does: plan, status machine, retries, events, resume, claims
* ``outputs/``   the output tree: layout, journal, metadata records, rollups, metrics, export, report
* ``index/``     the DuckDB index of the output tree and the reviewer's queries
* ``review/``    votes, ratings, pairing, safe markdown, text diffs
* ``serving/``   local model servers' facts: GPUs, fit check, vLLM presets, failure classes, process groups
* ``documents/`` PDF access and the sample PDFs
* ``servers/``   the OpenAI-compatible servers tracr ships (the built-in OCR model)
* ``testing/``   stand-ins for tests and benchmarks (stub endpoint, fake vLLM, synthetic trees)
* ``errors.py``  the one error model; ``doctor.py`` the judgements of ``tracr doctor``

Prefect tasks live in ``tasks/``, flows in ``flows/``, the command line in ``cli/``.
"""

__version__ = "0.1.0"
