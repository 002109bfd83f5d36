"""Reports on a job: rankings per collection and the shareable report (``tracr report``; docs/collections.md, docs/report.md).

Above both :mod:`tracr.review` (votes) and :mod:`tracr.scoring` (tests, health), which
are siblings that do not import each other; this package brings them together.
"""
