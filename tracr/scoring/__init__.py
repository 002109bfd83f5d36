"""Automatic scoring of OCR output: pure domain logic, no Prefect, no I/O beyond reading test files.

Modules: ``normalise`` (olmOCR-Bench text normalisation), ``tables`` (markdown/HTML
tables), ``bench_tests`` (olmOCR-Bench tests), ``latex`` (math fallback), ``reference``
(edit distance, TEDS, reading order), ``health`` (checks without ground truth),
``stats`` (bootstrap, paired test), ``judge`` (LLM-judge logic), ``cost``.
"""
