"""Every family's request, as tracr sends it, accepted by real vLLM under that family's serve flags.

A field or flag vLLM rejects (an ``extra_body`` key, a ``stop`` list, a logits processor
that does not load, a ``--limit-mm-per-prompt`` JSON) must fail here, not on a user's GPU.
One server per distinct set of serve flags (built by tracr's own ``vllm_command`` from the
registry, plus this machine's ``--dtype float32 --enforce-eager``), each family's
messages built by ``tracr.adapters.requests`` and sent by the OCR client that runs use.
The tiny model's text is gibberish; what is checked is that vLLM takes each request whole:
the image counted in the prompt, tokens generated, no 400.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from tasks.ocr.request import OcrClient
from tasks.serving.process import running_server
from tasks.serving.runtimes import server_spec_for
from tracr.adapters.registry import ADAPTERS, adapter_by_name
from tracr.adapters.requests import build_messages
from tracr.adapters.spec import Adapter, EngineKind
from tracr.config.models import VllmProcessModel, model_spec
from tracr.documents.pdf import render_page_data_url
from tracr.outputs.layout import RunLocation
from tracr.run.retry import RetryPolicy

pytestmark = [pytest.mark.vllm_cpu, pytest.mark.timeout(1500)]

SAMPLE = Path(__file__).resolve().parents[2] / "tracr" / "samples" / "text_report.pdf"
#: Families whose serve flags need a package outside vLLM: their requests go to the plain server.
NEEDS_PLUGIN = {"mineru2.5": "mineru_vl_utils (its logits processor) must be installed beside vLLM"}


def _flag_groups() -> dict[tuple[str, ...], list[Adapter]]:
    """Chat families (and MinerU's two steps) by the serve flags their server gets."""
    groups: dict[tuple[str, ...], list[Adapter]] = defaultdict(list)
    for adapter in ADAPTERS:
        if adapter.engine is EngineKind.MISTRAL_OCR:
            continue  # a hosted OCR endpoint, not vLLM
        serve = adapter.serve
        key = (
            ()
            if serve is None or adapter.name in NEEDS_PLUGIN
            else (*_without_ours(serve.args), *map(str, sorted(serve.limit_mm_per_prompt.items())))
        )
        groups[key].append(adapter)
    return dict(groups)


def _without_ours(args: tuple[str, ...]) -> tuple[str, ...]:
    """Serve flags less the ones this machine sets itself (context length, dtype), which win anyway."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in OURS:
            skip = True
        else:
            out.append(arg)
    return tuple(out)


OURS = ("--max-model-len", "--dtype")
GROUPS = _flag_groups()


def _requests(adapter: Adapter, image_url: str) -> list[tuple[list[dict], dict]]:
    """What the engine sends for one page: one chat request, or MinerU's layout and block requests."""
    if adapter.engine is EngineKind.LAYOUT_THEN_BLOCKS:
        from tracr.adapters.parsers import mineru

        out = []
        for prompt, step in (
            (mineru.LAYOUT_PROMPT, mineru.LAYOUT_STEP),
            ("\nText Recognition:", "text"),
            ("\nTable Recognition:", "table"),
        ):
            messages = build_messages(adapter.with_overrides(prompt=prompt), image_url)
            out.append((messages, {**mineru.sampling_for(step), "max_tokens": 8}))
        return out
    sampling = adapter.sampling.request_kwargs()
    sampling["max_tokens"] = 8  # the tiny model's context is 4096 tokens; the request's shape is what is tested
    return [
        (
            build_messages(adapter, image_url, width=448, height=317, anchor_text="Page dimensions: 595.0x842.0\n[72x72]Quarterly report"),
            sampling,
        )
    ]


@pytest.mark.parametrize("flags", list(GROUPS), ids=lambda flags: GROUPS[flags][0].name)
async def test_vllm_takes_each_familys_request_under_its_serve_flags(flags, tmp_path, tiny_vlm, vllm_cpu):
    families = GROUPS[flags]
    spec = model_spec(
        model=str(tiny_vlm),
        mode="local",
        provider="vllm",
        adapter="none" if not flags else families[0].name,
        max_model_len=4096,
        extra_vllm_args=["--dtype", "float32", "--enforce-eager"],
        vllm_executable=str(vllm_cpu),
        startup_timeout_s=420,
    )
    assert isinstance(spec, VllmProcessModel)
    location = RunLocation(tmp_path / "out", "families", "tiny", 1)
    server = server_spec_for(spec, location)
    for flag in flags:  # the registry's flags reach the command line
        if not flag.startswith("('"):
            assert flag in server.command, flag
    image = render_page_data_url(str(SAMPLE), 1, 448)
    async with running_server(server) as handle:
        client = OcrClient(
            base_url=handle.base_url,
            api_key="EMPTY",
            model=str(tiny_vlm),
            max_concurrent_requests=2,
            timeout_s=120,
            policy=RetryPolicy(0, 0.1, 0.1),
        )
        try:
            for adapter in families:
                for messages, sampling in _requests(adapter_by_name(adapter.name), image):
                    result = await client.complete(messages, sampling)
                    assert result.ok, f"{adapter.name}: vLLM refused the request: {result.error}\n{location.server_log.read_text()[-3000:]}"
                    assert result.input_tokens and result.input_tokens > 16, (adapter.name, result)
                    assert result.output_tokens and 0 < result.output_tokens <= 8, (adapter.name, result)
        finally:
            await client.aclose()
