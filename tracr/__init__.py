"""tracr: benchmark OCR models over your own PDFs, orchestrated by Prefect.

This package holds the parts with no Prefect in them: the job config schema, the
output layout and its metadata, PDF access, retry policy and the built-in servers.
Prefect tasks live in ``tasks/``, flows in ``flows/``.
"""

__version__ = "0.1.0"
