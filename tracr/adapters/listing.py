"""The registry as text: the table ``tracr models`` prints and one entry in full."""

from __future__ import annotations

from collections.abc import Sequence

from tracr.adapters.records import describe_request
from tracr.adapters.spec import Adapter

__all__ = ["registry_table_text", "adapter_detail_text"]


def _row(adapter: Adapter) -> list[str]:
    serve = " ".join(adapter.serve.args) if adapter.serve and adapter.serve.args else "-"
    return [adapter.name, adapter.match or "(no match)", adapter.parser, ", ".join(adapter.furniture) or "-", serve]


def registry_table_text(adapters: Sequence[Adapter]) -> str:
    headers = ["adapter", "matches model ids (regex)", "reply parser", "dropped by default", "vllm serve flags"]
    rows = [_row(a) for a in adapters]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers) - 1)]
    lines = []
    for row in [headers, ["-" * w for w in widths] + ["-" * 16], *rows]:
        lines.append("  ".join(cell.ljust(widths[i]) if i < len(widths) else cell for i, cell in enumerate(row)).rstrip())
    lines.append("")
    lines.append("`tracr models NAME` shows an entry in full (prompt, sampling, sources); docs/supported-models.md has them all.")
    return "\n".join(lines)


def adapter_detail_text(adapter: Adapter) -> str:
    lines = [
        f"{adapter.name}: {adapter.family}",
        f"  matches:    {adapter.match or '(nothing: name it with adapter: ' + adapter.name + ')'}",
        f"  request:    {describe_request(adapter)}",
        f"  system:     {adapter.system!r}" if adapter.system else "  system:     (none)",
        f"  prefix:     {adapter.prefix!r}" if adapter.prefix else "  prefix:     (none)",
        f"  parser:     {adapter.parser}; retry rule: {adapter.retry.value}; engine: {adapter.engine.value}",
        f"  drops:      {', '.join(adapter.furniture) or '(nothing marked)'} (keep_furniture: true keeps it)",
    ]
    if adapter.serve is not None:
        limit = f" --limit-mm-per-prompt {dict(adapter.serve.limit_mm_per_prompt)}" if adapter.serve.limit_mm_per_prompt else ""
        lines.append(f"  serve:      vllm serve MODEL {' '.join(adapter.serve.args)}{limit}".rstrip())
    if adapter.notes:
        lines.append(f"  note:       {adapter.notes}")
    lines.append("  sources:")
    lines += [f"    {key}: {value}" for key, value in adapter.sources.items()]
    if adapter.prompt:
        lines += ["  prompt:", *("    " + line for line in adapter.prompt.splitlines())]
    return "\n".join(lines)
