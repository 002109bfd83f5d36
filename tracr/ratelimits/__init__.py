"""Provider limits and adaptive concurrency, as pure parts: the run's I/O lives in ``tasks/ocr``."""
