"""Fit check (GOOD / RISK / FAIL), GPU inventories and vLLM presets: pure functions."""

from __future__ import annotations

import json

import pytest

from tracr.config.models import model_spec
from tracr.serving.fit_check import GIB, FitVerdict, ModelShape, check_fit, estimate_params, shape_from_config, shape_from_model_dir
from tracr.serving.gpus import InventoryError, current_inventory, discover_gpus, parse_declared_gpus
from tracr.serving.vllm_presets import match_preset, merge_serve_args, size_from_name

# Qwen2.5-VL-7B's text config (the shape of olmOCR-2-7B)
QWEN25_VL_7B = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "torch_dtype": "bfloat16",
    "tie_word_embeddings": False,
}


def test_params_and_kv_cache_from_a_config_json():
    params = estimate_params(QWEN25_VL_7B)
    assert 7.0e9 < params < 8.0e9  # the language model of a 7B VLM
    shape = shape_from_config(QWEN25_VL_7B)
    assert shape.weight_bytes == pytest.approx(params * 2)
    # 2 × 28 layers × 4 KV heads × 128 head dim × 2 bytes
    assert shape.kv_bytes_per_token == 2 * 28 * 4 * 128 * 2


def test_fp8_quantisation_halves_the_weights_but_not_the_kv_cache():
    fp8 = shape_from_config({**QWEN25_VL_7B, "quantization_config": {"quant_method": "fp8"}})
    bf16 = shape_from_config(QWEN25_VL_7B)
    assert fp8.weight_bytes == pytest.approx(bf16.weight_bytes / 2)
    assert fp8.kv_bytes_per_token == bf16.kv_bytes_per_token


def test_a_model_folder_uses_its_safetensors_size(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(QWEN25_VL_7B))
    (tmp_path / "model-00001.safetensors").write_bytes(b"\0" * 3_000_000)
    shape = shape_from_model_dir(tmp_path)
    assert shape.weight_bytes == 3_000_000 and shape.kv_bytes_per_token == 2 * 28 * 4 * 128 * 2
    assert shape_from_model_dir(tmp_path / "missing") is None


def test_verdicts_with_numbers():
    shape = shape_from_config(QWEN25_VL_7B)  # ~15 GiB of bf16 weights, 56 KiB of KV per token
    good = check_fit(shape, [81920], max_model_len=16384, concurrent_seqs=16)
    assert good.verdict == FitVerdict.GOOD and good.budget_gib == pytest.approx(80 * 0.9 - 1.5, abs=0.01)
    risk = check_fit(shape, [24576], max_model_len=16384, concurrent_seqs=16)
    assert risk.verdict == FitVerdict.RISK  # one sequence fits a 24 GB card, sixteen do not
    fail = check_fit(shape, [16384], max_model_len=16384)
    assert fail.verdict == FitVerdict.FAIL
    assert "does not fit" in fail.message and f"{fail.need_min_gib} GiB" in fail.message and str(fail.budget_gib) in fail.message
    assert fail.need_min_gib > fail.budget_gib


def test_tensor_parallel_spreads_a_replica_over_its_gpus():
    shape = ModelShape(weight_bytes=60 * GIB, kv_bytes_per_token=0)
    assert check_fit(shape, [49152], tensor_parallel_size=1).verdict == FitVerdict.FAIL
    assert check_fit(shape, [49152, 49152], tensor_parallel_size=2).verdict == FitVerdict.GOOD
    # a replica is bounded by its smallest GPU
    assert check_fit(shape, [81920, 16384], tensor_parallel_size=2).verdict == FitVerdict.FAIL


def test_unknown_size_and_no_gpu():
    assert check_fit(None, [81920]).verdict == FitVerdict.UNKNOWN
    assert check_fit(ModelShape(GIB), []).verdict == FitVerdict.FAIL


def test_declared_inventories():
    two = parse_declared_gpus("2x80GB")
    assert two.count == 2 and two.source == "declared" and {g.memory_total_mib for g in two.gpus} == {81920}
    mixed = parse_declared_gpus("2xH100-80GB, 24GB")
    assert [g.index for g in mixed.gpus] == [0, 1, 2] and mixed.gpus[0].name == "H100" and mixed.gpus[2].memory_total_mib == 24576
    assert parse_declared_gpus("0").count == 0
    with pytest.raises(InventoryError, match="TRACR_GPUS: cannot read 'lots'"):
        parse_declared_gpus("lots")
    assert current_inventory({"TRACR_GPUS": "1x24GB"}).count == 1


def test_nvml_discovery_never_raises():
    inventory = discover_gpus()  # on a machine without a driver: empty, with the reason
    assert inventory.source in ("nvml", "none")
    if inventory.source == "none":
        assert inventory.count == 0 and inventory.error
    else:
        assert inventory.count >= 1 and inventory.driver_version and all(g.memory_total_mib > 0 for g in inventory.gpus)


@pytest.mark.parametrize(
    ("model", "preset"),
    [
        ("allenai/olmOCR-2-7B-1025-FP8", "olmocr-2"),
        ("rednote-hilab/dots.ocr", "dots.ocr"),
        ("nanonets/Nanonets-OCR2-3B", "nanonets-ocr2"),
        ("PaddlePaddle/PaddleOCR-VL", "paddleocr-vl"),
        ("deepseek-ai/DeepSeek-OCR", "deepseek-ocr"),
        ("lightonai/LightOnOCR-1B-1025", "lightonocr"),
        ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen-vl"),
        ("Qwen/Qwen3-VL-8B-Instruct", "qwen-vl"),
    ],
)
def test_presets_match_common_ocr_models(model, preset):
    assert match_preset(model).name == preset


def test_presets_can_be_forced_or_turned_off_and_user_flags_win():
    assert match_preset("my-org/finetune", "dots.ocr").name == "dots.ocr"
    assert match_preset("rednote-hilab/dots.ocr", "none") is None
    assert match_preset("org/plain-model") is None
    merged = merge_serve_args(
        ("--max-model-len", "16384", "--trust-remote-code", "--no-enable-prefix-caching"),
        ["--max-model-len=8192", "--enable-prefix-caching"],
    )
    assert merged == ["--trust-remote-code", "--max-model-len=8192", "--enable-prefix-caching"]
    assert size_from_name("Qwen/Qwen2.5-VL-72B-Instruct-AWQ") == 72.0 and size_from_name("org/model") is None


def test_vllm_command_carries_preset_flags_and_config_overrides():
    from tasks.serving.runtimes import vllm_command

    olm = model_spec(model="allenai/olmOCR-2-7B-1025-FP8", mode="local", provider="vllm")
    command = vllm_command(olm, 8123)
    assert command[:3] == ["vllm", "serve", "allenai/olmOCR-2-7B-1025-FP8"]
    assert command[command.index("--max-model-len") + 1] == "16384"
    own = model_spec(model="allenai/olmOCR-2-7B-1025-FP8", mode="local", max_model_len=8192, vllm_executable="/opt/vllm/bin/vllm")
    command = vllm_command(own, 8123)
    assert command[0] == "/opt/vllm/bin/vllm" and command.count("--max-model-len") == 1
    assert command[command.index("--max-model-len") + 1] == "8192"
    light = vllm_command(model_spec(model="lightonai/LightOnOCR-1B-1025", mode="local"), 1)
    assert json.loads(light[light.index("--limit-mm-per-prompt") + 1]) == {"video": 0, "image": 1}


def test_unknown_preset_is_a_config_error():
    from tracr.config.job import ConfigError, parse_job_config

    with pytest.raises(ConfigError, match=r"models\[0\]\.vllm_preset: unknown vLLM preset 'olmocr-9'"):
        parse_job_config({"job_id": "j", "input_path": __file__, "models": [{"model": "m", "mode": "local", "vllm_preset": "olmocr-9"}]})
