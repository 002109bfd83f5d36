"""The model registry: one entry per OCR model family, the only place that knows how each is asked.

Matching is by model id (a regex searched in the lower-cased id), first entry wins;
``adapter: <name>`` in a config names one explicitly (vLLM's ``--served-model-name``
hides the id), ``adapter: none`` turns matching off. A model no entry matches gets
the job's generic prompt (:data:`GENERIC`). Sources: docs/supported-models.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from tracr.adapters import prompts
from tracr.adapters.spec import Adapter, EngineKind, ImagePrep, PartOrder, RetryRule, Sampling, ServeFlags

__all__ = ["ADAPTERS", "GENERIC", "adapter_by_name", "adapter_names", "match_adapter", "OLMOCR_TEMPERATURES", "OLMOCR_V1_TEMPERATURES"]

#: olmocr/pipeline.py TEMPERATURE_BY_ATTEMPT (olmOCR-2, pipeline >= v0.4.0).
OLMOCR_TEMPERATURES = (0.1, 0.1, 0.2, 0.3, 0.5, 0.8, 0.9, 1.0)
#: olmocr/pipeline.py at v0.1.76 (olmOCR v1).
OLMOCR_V1_TEMPERATURES = (0.1, 0.1, 0.2, 0.3, 0.5, 0.8, 0.1, 0.8)

_OLMOCR_SERVE = ServeFlags(("--max-model-len", "16384"), {"video": 0}, params_b=8.3)
_OLMOCR_SOURCES = {
    "prompt": "allenai/olmocr olmocr/prompts/prompts.py; text first: olmocr/pipeline.py::build_page_query",
    "image": "allenai/olmocr --target_longest_image_dim 1288 (olmocr/data/renderpdf.py renders by that longest side)",
    "sampling": "allenai/olmocr olmocr/pipeline.py: max_tokens 8000, TEMPERATURE_BY_ATTEMPT",
    "parser": "allenai/olmocr olmocr/train/front_matter.py::FrontMatterParser and PageResponse",
    "retry": "allenai/olmocr olmocr/pipeline.py::process_page: rotation re-render, 8 attempts with rising temperature",
    "serve": "allenai/olmocr olmocr/pipeline.py vllm flags: --max-model-len 16384, --limit-mm-per-prompt video 0",
}

GENERIC = Adapter(
    name="generic",
    family="any other model",
    match="",
    parser="none",
    notes="the job's prompt (or the model's), text first, the job's render settings; the reply is stored as it comes",
    sources={"prompt": "tracr's own (tracr/config/job.py DEFAULT_PROMPT)"},
)

ADAPTERS: tuple[Adapter, ...] = (
    Adapter(
        name="olmocr-2",
        family="allenai olmOCR-2 (olmOCR-2-7B-1025, -FP8)",
        match=r"olmocr-2|olmocr.*1025",
        prompt=prompts.OLMOCR_V4,
        order=PartOrder.TEXT_FIRST,
        image=ImagePrep(longest_side_px=1288),
        sampling=Sampling(temperature=OLMOCR_TEMPERATURES[0], max_tokens=8000),
        parser="olmocr",
        retry=RetryRule.OLMOCR,
        serve=_OLMOCR_SERVE,
        sources=_OLMOCR_SOURCES,
        notes="trained to leave headers and footers out (allenai/olmocr#268): nothing marked to drop",
    ),
    Adapter(
        name="olmocr-0825",
        family="allenai olmOCR 0725/0825 (olmOCR-7B-0725, -0825)",
        match=r"olmocr-7b-0[78]25",
        prompt=prompts.OLMOCR_0825,
        order=PartOrder.TEXT_FIRST,
        image=ImagePrep(longest_side_px=1288),
        sampling=Sampling(temperature=OLMOCR_TEMPERATURES[0], max_tokens=4500),
        parser="olmocr",
        retry=RetryRule.OLMOCR,
        serve=_OLMOCR_SERVE,
        sources={
            **_OLMOCR_SOURCES,
            "prompt": "allenai/olmocr v0.3.0 build_no_anchoring_yaml_prompt (text first since v0.3.0)",
            "sampling": "allenai/olmocr v0.3.x: max_tokens 4500; temperature ladder as pipeline >= v0.4.0 (v0.3 ladder UNCONFIRMED)",
        },
    ),
    Adapter(
        name="olmocr-v1",
        family="allenai olmOCR v1 (olmOCR-7B-0225-preview)",
        match=r"olmocr-7b-0225",
        prompt=prompts.OLMOCR_V1,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=1024),
        sampling=Sampling(temperature=OLMOCR_V1_TEMPERATURES[0], max_tokens=3000),
        parser="olmocr-v1-json",
        retry=RetryRule.OLMOCR,
        serve=ServeFlags(params_b=8.3),
        sources={
            "prompt": "allenai/olmocr v0.1.76 build_finetuning_prompt; anchor text: tracr's PyMuPDF rendering of olmOCR's pdfreport format",
            "image": "huggingface.co/allenai/olmOCR-7B-0225-preview: longest side 1024",
            "sampling": "allenai/olmocr v0.1.76 pipeline.py temperatures; max_tokens 3000 (UNCONFIRMED)",
            "parser": "allenai/olmocr v0.1.76 pipeline.py: json.loads, natural_text",
        },
        notes="the prompt carries the page's own text layer (document anchoring), truncated to 6000 characters",
    ),
    Adapter(
        name="dots.ocr",
        family="rednote-hilab dots.ocr",
        match=r"dots\.?ocr",
        prompt=prompts.DOTS_LAYOUT_ALL_EN,
        prefix=prompts.DOTS_IMAGE_PREFIX,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, dpi=200, max_pixels=11_289_600),
        sampling=Sampling(temperature=0.1, top_p=1.0, max_tokens=16384),
        parser="dots-layout",
        furniture=("page_header", "page_footer"),
        serve=ServeFlags(("--trust-remote-code", "--chat-template-content-format", "string"), params_b=3.0),
        sources={
            "prompt": "rednote-hilab/dots.ocr dots_ocr/utils/prompts.py prompt_layout_all_en; prefix and order: dots_ocr/model/inference.py",
            "image": "rednote-hilab/dots.ocr dots_ocr/utils/doc_utils.py (200 dpi), consts.py MAX_PIXELS",
            "sampling": "rednote-hilab/dots.ocr dots_ocr/parser.py and tools/eval_omnidocbench.md",
            "parser": "rednote-hilab/dots.ocr dots_ocr/utils/layout_utils.py::layoutjson2md (no_page_hf), output_cleaner.py",
            "serve": "rednote-hilab/dots.ocr README (vLLM serve flags)",
        },
    ),
    Adapter(
        name="deepseek-ocr-2",
        family="deepseek-ai DeepSeek-OCR-2",
        match=r"deepseek-ocr-?2",
        prompt=prompts.DEEPSEEK_GROUNDING,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, dpi=144),
        sampling=Sampling(temperature=0.0, max_tokens=8192, extra_body={"skip_special_tokens": False}),
        parser="deepseek-grounding",
        retry=RetryRule.DEEPSEEK,
        furniture=("page_header", "page_footer", "page_number"),
        serve=ServeFlags(("--trust-remote-code",), params_b=3.4),
        sources={
            "prompt": "deepseek-ai/DeepSeek-OCR-2 DeepSeek-OCR2-hf/run_dpsk_ocr2.py (grounding prompt; deepseek-ai/DeepSeek-OCR-2#16 finds it the best)",
            "image": "as DeepSeek-OCR (144 dpi); the model's processor crops at 768 (run_dpsk_ocr2.py image_size 768, sgl-project/sglang#35999)",
            "sampling": "as DeepSeek-OCR's official script; an n-gram logits processor for OCR-2 is UNCONFIRMED",
            "serve": "trust remote code (sglang's DeepSeek OCR docs); whether vLLM's OpenAI server takes OCR-2's processor is UNCONFIRMED",
        },
    ),
    Adapter(
        name="deepseek-ocr",
        family="deepseek-ai DeepSeek-OCR",
        match=r"deepseek-ocr",
        prompt=prompts.DEEPSEEK_GROUNDING,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, dpi=144),
        sampling=Sampling(
            temperature=0.0,
            max_tokens=8192,
            extra_body={
                "skip_special_tokens": False,
                "vllm_xargs": {"ngram_size": 30, "window_size": 90, "whitelist_token_ids": [128821, 128822]},
            },
        ),
        parser="deepseek-grounding",
        retry=RetryRule.DEEPSEEK,
        furniture=("page_header", "page_footer", "page_number"),
        serve=ServeFlags(
            (
                "--logits-processors",
                "vllm.model_executor.models.deepseek_ocr:NGramPerReqLogitsProcessor",
                "--no-enable-prefix-caching",
                "--mm-processor-cache-gb",
                "0",
            ),
            params_b=3.3,
        ),
        sources={
            "prompt": "deepseek-ai/DeepSeek-OCR DeepSeek-OCR-vllm/config.py (grounding prompt); image first: vllm-project/recipes DeepSeek-OCR.md",
            "image": "deepseek-ai/DeepSeek-OCR run_dpsk_ocr_pdf.py: 144 dpi",
            "sampling": "vllm-project/recipes DeepSeek-OCR.md: temperature 0, n-gram processor extra_body; max_tokens 8192 (official PDF script)",
            "parser": "deepseek-ai/DeepSeek-OCR run_dpsk_ocr_pdf.py (ref/det tags, EOS) and run_dpsk_ocr_eval_batch.py",
            "retry": "deepseek-ai/DeepSeek-OCR run_dpsk_ocr_pdf.py SKIP_REPEAT: a page without end of sequence is dropped",
            "serve": "vllm-project/recipes DeepSeek-OCR.md",
        },
    ),
    Adapter(
        name="nanonets-ocr2",
        family="nanonets Nanonets-OCR2 and Nanonets-OCR-s",
        match=r"nanonets-ocr",
        prompt=prompts.NANONETS_OCR,
        system=prompts.NANONETS_SYSTEM,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, shortest_side_px=1280),
        sampling=Sampling(temperature=0.0, max_tokens=4096),
        parser="nanonets",
        furniture=("page_number", "watermark"),
        serve=ServeFlags(("--max-model-len", "15000"), params_b=3.8),
        sources={
            "prompt": "allenai/olmocr olmocr/bench/runners/run_nanonetsocr_2.py (system message, image first); card prompt UNCONFIRMED",
            "image": "allenai/olmocr run_nanonetsocr_2.py: shortest side 1280 (Nanonets cookbook image2md.ipynb)",
            "sampling": "allenai/olmocr run_nanonetsocr_2.py: temperature 0, max_tokens 4096",
            "parser": "tags from the prompt and the Nanonets-OCR2 card: <page_number>, <watermark>, <img>, <signature>",
        },
    ),
    Adapter(
        name="lightonocr",
        family="lightonai LightOnOCR-1B and LightOnOCR-2-1B",
        match=r"lightonocr",
        order=PartOrder.IMAGE_ONLY,
        image=ImagePrep(longest_side_px=1540),
        sampling=Sampling(temperature=0.2, top_p=0.9, max_tokens=4096),
        parser="plain",
        serve=ServeFlags(("--mm-processor-cache-gb", "0", "--no-enable-prefix-caching"), {"image": 1}, params_b=1.0),
        sources={
            "prompt": "LightOnOCR-2-1B model card: no system or user prompt (the model repeats it); the image alone",
            "image": "LightOnOCR-2-1B model card: longest side 1540 px",
            "sampling": "LightOnOCR-2-1B model card payload: max_tokens 4096, temperature 0.2, top_p 0.9",
            "serve": "LightOnOCR model card vllm serve flags",
        },
    ),
    Adapter(
        name="chandra",
        family="datalab-to Chandra (chandra-ocr 0.1.x)",
        match=r"chandra",
        prompt=prompts.CHANDRA_OCR_LAYOUT,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, dpi=192, min_shortest_side_px=1024, max_pixels=3072 * 2048),
        sampling=Sampling(temperature=0.0, top_p=0.1, max_tokens=12384),
        parser="chandra-html",
        retry=RetryRule.CHANDRA,
        furniture=("page_header", "page_footer"),
        serve=ServeFlags(
            ("--max-model-len", "32768", "--max-num-seqs", "32", "--max-num-batched-tokens", "65536", "--dtype", "bfloat16"),
            params_b=9.0,
        ),
        sources={
            "prompt": "datalab-to/chandra chandra/prompts.py ocr_layout; image first: chandra/model/vllm.py",
            "image": "datalab-to/chandra chandra/input.py (192 dpi, shorter side >= 1024), model/util.py scale_to_fit (3072x2048 px area)",
            "sampling": "datalab-to/chandra chandra/model/vllm.py: temperature 0, top_p 0.1, MAX_OUTPUT_TOKENS 12384",
            "parser": "datalab-to/chandra chandra/output.py parse_html/parse_markdown (headers and footers dropped by default)",
            "retry": "datalab-to/chandra chandra/model/vllm.py + util.py detect_repeat_token: retry at 0.3/0.95, up to 6",
            "serve": "datalab-to/chandra chandra/scripts/vllm.py",
        },
    ),
    Adapter(
        name="granite-docling",
        family="IBM granite-docling-258M",
        match=r"granite-docling",
        prompt=prompts.DOCLING_PAGE,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, dpi=144),
        sampling=Sampling(
            temperature=0.0, max_tokens=4096, stop=("</doctag>", "<|end_of_text|>"), extra_body={"skip_special_tokens": False}
        ),
        parser="doctags",
        furniture=("page_header", "page_footer"),
        serve=ServeFlags(params_b=0.26),
        sources={
            "prompt": "docling-project/docling docling/datamodel/vlm_prompts.py DOCLING_BASE_PAGE_PROMPT",
            "image": "docling-project/docling vlm_model_specs.py: scale 2.0 (144 dpi)",
            "sampling": "docling-project/docling vlm_model_specs.py GRANITEDOCLING_VLLM_API: temperature 0, max_tokens 4096, stop strings",
            "parser": "docling-project/docling-core DocTagsDocument + DoclingDocument.load_from_doctags + export_to_markdown",
        },
    ),
    Adapter(
        name="smoldocling",
        family="docling-project SmolDocling-256M",
        match=r"smoldocling",
        prompt=prompts.DOCLING_PAGE,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, dpi=144),
        sampling=Sampling(
            temperature=0.0, max_tokens=8192, stop=("</doctag>", "<end_of_utterance>"), extra_body={"skip_special_tokens": False}
        ),
        parser="doctags",
        furniture=("page_header", "page_footer"),
        serve=ServeFlags(params_b=0.26),
        sources={
            "prompt": "docling-project/docling DOCLING_BASE_PAGE_PROMPT (uv-scripts uses 'Convert page to Docling.': which one it was trained on is UNCONFIRMED)",
            "image": "docling-project/docling vlm_model_specs.py: scale 2.0",
            "sampling": "docling-project/docling vlm_model_specs.py SMOLDOCLING: temperature 0, stop strings",
            "parser": "docling-project/docling-core DocTags to Markdown",
        },
    ),
    Adapter(
        name="mineru2.5",
        family="opendatalab MinerU2.5 (MinerU2.5-2509-1.2B)",
        match=r"mineru2\.5|mineru-?2\.5",
        system=prompts.MINERU_SYSTEM,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, dpi=200),
        sampling=Sampling(temperature=0.0, max_tokens=4096),
        parser="mineru",
        engine=EngineKind.LAYOUT_THEN_BLOCKS,
        furniture=("page_header", "page_footer", "page_number", "aside_text"),
        serve=ServeFlags(("--logits-processors", "mineru_vl_utils:MinerULogitsProcessor"), params_b=1.2),
        sources={
            "prompt": "opendatalab/mineru-vl-utils mineru_client.py: layout '\\nLayout Detection:' on a 1036x1036 page, then a task prompt per block",
            "image": "opendatalab/MinerU mineru/utils/pdf_image_tools.py: 200 dpi; crops from the page",
            "sampling": "opendatalab/mineru-vl-utils DEFAULT_SAMPLING_PARAMS / MinerUSamplingParams",
            "parser": "opendatalab/mineru-vl-utils post_process (OTSL to HTML), json2md; furniture as MinerU's discarded blocks",
            "serve": "opendatalab/mineru-vl-utils README: --logits-processors mineru_vl_utils:MinerULogitsProcessor (vLLM >= 0.10.1)",
        },
    ),
    Adapter(
        name="paddleocr-vl",
        family="PaddlePaddle PaddleOCR-VL (whole page)",
        match=r"paddleocr-vl",
        prompt="OCR:",
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=None, dpi=144, max_pixels=1_003_520),
        sampling=Sampling(temperature=0.0, max_tokens=4096),
        parser="paddleocr-vl",
        serve=ServeFlags(
            ("--trust-remote-code", "--max-num-batched-tokens", "16384", "--no-enable-prefix-caching", "--mm-processor-cache-gb", "0"),
            params_b=0.9,
        ),
        sources={
            "prompt": "vllm-project/recipes PaddleOCR-VL.md: image first, 'OCR:'; whole page as PaddleX use_layout_detection=False",
            "image": "PaddlePaddle/PaddleX readers.py (zoom 2.0, 144 dpi), pipeline max_pixels 1003520",
            "sampling": "vllm-project/recipes PaddleOCR-VL.md temperature 0; PaddleX max_new_tokens 4096",
            "parser": "PaddlePaddle/PaddleX paddleocr_vl/pipeline.py, result.py (repetition cut, delimiters, OTSL)",
            "serve": "vllm-project/recipes PaddleOCR-VL.md",
        },
        notes="PaddleOCR-VL's own layout stage is a separate detector (PP-DocLayoutV2), not the VLM; tracr asks the VLM for the whole page",
    ),
    Adapter(
        name="qwen-vl",
        family="Qwen2-VL / Qwen2.5-VL / Qwen3-VL as generic OCR",
        match=r"qwen[\d.]*-vl",
        prompt=prompts.OLMOCR_BENCH_BASIC,
        order=PartOrder.TEXT_FIRST,
        image=ImagePrep(longest_side_px=1024),
        sampling=Sampling(temperature=0.1, max_tokens=8000),
        parser="plain",
        serve=ServeFlags(),
        sources={
            "prompt": "allenai/olmocr olmocr/bench/prompts.py basic, as olmOCR-Bench ran Qwen2.5-VL (runners/run_server.py)",
            "image": "allenai/olmocr run_server.py: longest side 1024",
            "sampling": "allenai/olmocr bench/scripts/convert_all.sh: temperature 0.1; run_server.py max_tokens 8000",
        },
        notes="size for the fit check read from the model id (e.g. 7B)",
    ),
    Adapter(
        name="mistral-ocr",
        family="Mistral OCR (hosted)",
        match=r"mistral-ocr",
        parser="mistral-ocr",
        engine=EngineKind.MISTRAL_OCR,
        furniture=("page_header", "page_footer"),
        image=ImagePrep(longest_side_px=None),
        sources={
            "request": "allenai/olmocr olmocr/bench/runners/run_mistral.py; Mistral OCR API POST /v1/ocr",
            "parser": "allenai/olmocr run_mistral.py: pages[0].markdown unchanged",
        },
        notes="not a chat endpoint: the page goes to POST /v1/ocr as a one-page PDF; no prompt, no sampling",
    ),
    Adapter(
        name="gpt",
        family="OpenAI GPT-4o / GPT-4.1 / GPT-5 and o-series (chat completions)",
        match=r"(^|/)(gpt-|o[134](-|$)|chatgpt)",
        prompt=prompts.OLMOCR_BENCH_FULLV3SIMPLE,
        fills_image_size=True,
        order=PartOrder.TEXT_FIRST,
        image=ImagePrep(longest_side_px=2048),
        sampling=Sampling(temperature=0.1, max_tokens=10000),
        parser="plain",
        sources={
            "prompt": "allenai/olmocr olmocr/bench/prompts.py fullv3simple (its newest plain-reply prompt for API models)",
            "image": "allenai/olmocr olmocr/bench/runners/run_chatgpt.py: longest side 2048, text first",
            "sampling": "allenai/olmocr run_chatgpt.py: temperature 0.1, max_completion_tokens 10000",
        },
    ),
    Adapter(
        name="gemini",
        family="Google Gemini (OpenAI-compatible endpoint)",
        match=r"gemini",
        prompt=prompts.OLMOCR_BENCH_FULLV3SIMPLE,
        fills_image_size=True,
        order=PartOrder.IMAGE_FIRST,
        image=ImagePrep(longest_side_px=2048),
        sampling=Sampling(temperature=0.1, top_p=1.0, max_tokens=10000),
        parser="plain",
        sources={
            "prompt": "allenai/olmocr olmocr/bench/prompts.py fullv3simple (implemented for Gemini in run_gemini.py)",
            "image": "allenai/olmocr olmocr/bench/runners/run_gemini.py: longest side 2048, image first",
            "sampling": "allenai/olmocr run_gemini.py: temperature 0.1, top_p 1.0, max_output_tokens 10000 (top_k 32 has no OpenAI field)",
        },
    ),
    Adapter(
        name="claude",
        family="Anthropic Claude (OpenAI-compatible endpoint)",
        match=r"claude",
        prompt=prompts.OLMOCR_BENCH_FULLV3SIMPLE,
        fills_image_size=True,
        order=PartOrder.TEXT_FIRST,
        image=ImagePrep(longest_side_px=2048),
        sampling=Sampling(temperature=0.1, max_tokens=10000),
        parser="plain",
        sources={
            "prompt": "allenai/olmocr olmocr/bench/prompts.py fullv3simple (tracr's choice for hosted chat models)",
            "image": "tracr: as the GPT and Gemini runners (longest side 2048)",
            "sampling": "tracr: as run_chatgpt.py (run_claude.py's max_tokens 3000 cuts dense pages)",
        },
    ),
)

_BY_NAME = {adapter.name: adapter for adapter in (*ADAPTERS, GENERIC)}


def adapter_names() -> list[str]:
    return [adapter.name for adapter in ADAPTERS]


def adapter_by_name(name: str, extra: Iterable[Adapter] = ()) -> Adapter:
    """The entry called ``name`` (a config's own adapters first); a clear error lists the choices."""
    custom = {adapter.name: adapter for adapter in extra}
    found = custom.get(name) or _BY_NAME.get(name.lower())
    if found is None:
        choices = ", ".join([*custom, *adapter_names(), "none"])
        raise KeyError(f"unknown adapter {name!r} (choose from {choices})")
    return found


def match_adapter(model: str, choice: str | None = None, extra: Iterable[Adapter] = ()) -> Adapter:
    """The entry for ``model``: ``choice`` names one (``none``: the generic one), else the first id match."""
    if choice is not None:
        return GENERIC if choice.lower() == "none" else adapter_by_name(choice, extra)
    lowered = model.lower()
    for adapter in ADAPTERS:
        if adapter.match and re.search(adapter.match, lowered):
            return adapter
    return GENERIC
