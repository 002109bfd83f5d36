"""The model registry: how each OCR model family is asked, and how its reply becomes Markdown."""
