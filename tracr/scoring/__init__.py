"""Automatic scoring of OCR output: pure domain logic, no Prefect, no I/O beyond reading test files.

Modules: ``normalise`` (olmOCR-Bench text normalisation), ``tables`` (markdown/HTML
tables as olmOCR reads them), ``bench_tests`` (olmOCR-Bench tests), ``latex`` (math
token fallback), ``katex`` (optional math parity through Chromium), ``teds`` (table
tree edit distance), ``reference`` (edit distance, TEDS, reading order), ``health``
(checks without ground truth), ``stats`` (bootstrap, paired test), ``judge`` (LLM-judge
logic), ``cost`` (cost per 1,000 pages).
"""
