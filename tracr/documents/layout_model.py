"""PyMuPDF's layout model and pymupdf4llm, loaded only where the text layer is read.

``import pymupdf`` imports ``pymupdf.layout`` (an ONNX layout model) and
``pymupdf4llm`` (which brings onnxruntime) when they are installed: a few hundred
ms of CPU and tens of MB in every process, the job's and each render worker's,
although only ``page_text_markdown`` (the text-layer baseline) uses them. Importing
this module before PyMuPDF defers both to :func:`enable_layout_model`; a process
that imported PyMuPDF first keeps what it has.
"""

from __future__ import annotations

import sys

__all__ = ["defer_layout_model", "enable_layout_model"]

#: What ``import pymupdf`` pulls in by itself (it catches the ImportError of each).
_DEFERRED = ("pymupdf.layout", "pymupdf4llm")


def defer_layout_model() -> None:
    """Make PyMuPDF's own imports of its layout model and pymupdf4llm fail quietly until enabled."""
    if "pymupdf" not in sys.modules:
        for name in _DEFERRED:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None in sys.modules: "import fails"


def enable_layout_model() -> None:
    """Load the layout model and pymupdf4llm in layout mode now if they were deferred (else a no-op)."""
    deferred = [name for name in _DEFERRED if name in sys.modules and sys.modules[name] is None]
    if not deferred:
        return
    for name in deferred:
        del sys.modules[name]
    try:
        import pymupdf.layout  # noqa: F401  (activates itself on import)
    except ImportError:
        return
    import pymupdf4llm

    pymupdf4llm.use_layout(True)  # what it chooses by itself when the layout model was imported before it


defer_layout_model()
