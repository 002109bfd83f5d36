"""Credential-shaped values are refused wherever they sit in a config that gets persisted.

The config is written to run metadata and Prefect's flow-run parameters, so each
shape is tried in the field a user would put it in, through the loader the CLI
and the flow use; benign look-alikes (model names, paths, flags, URLs) must pass.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import write_config
from tracr.config.job import ConfigError, parse_job_config
from tracr.config.job_request import JobRequest
from tracr.config.secret_values import credential_problems, credential_shape

_VLLM = {"model": "allenai/olmOCR-7B-0825-FP8", "mode": "local", "provider": "vllm"}
_API = {"model": "gpt-4o-mini", "provider": "openai", "api_key_env": "OPENAI_API_KEY"}

#: (where, the model's fields or job fields, the field path the error must name)
SECRETS: list[tuple[str, dict[str, Any], str]] = [
    (
        "header in extra_vllm_args",
        {"models": [{**_VLLM, "extra_vllm_args": ["--header", "Authorization: Bearer sk-proj-Ab3dEf9hIj2lMn4pQr6tUv8xYz0"]}]},
        "models[0].extra_vllm_args[1]",
    ),
    ("bare bearer", {"models": [{**_VLLM, "extra_vllm_args": ["--header", "Bearer abcDEF1234567890xyz"]}]}, "models[0].extra_vllm_args[1]"),
    (
        "openai key in a prompt",
        {"models": [{**_API, "prompt": "use key sk-Ab3dEf9hIj2lMn4pQr6tUv8xYz0aB1cD2eF3 please"}]},
        "models[0].prompt",
    ),
    (
        "google key in base_url",
        {"models": [{**_API, "provider": "custom", "base_url": "https://g.example/v1?key=AIzaSyA1234567890abcdefghijklmnopqrstuv"}]},
        "models[0].base_url",
    ),
    (
        "hf token in args",
        {"models": [{**_VLLM, "extra_vllm_args": "--download-dir /d --revision hf_AbCdEfGhIjKlMnOpQrStUvWxYz12345678"}]},
        "models[0].extra_vllm_args[3]",
    ),
    ("github token in title", {"title": "ghp_" + "aB3" * 12}, "title"),
    ("slack token in name", {"models": [{**_API, "name": "xoxb-123456789012-abcdefghij"}]}, "models[0].name"),
    (
        "jwt in job prompt",
        {"prompt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"},
        "prompt",
    ),
    (
        "userinfo in base_url",
        {"models": [{**_API, "provider": "custom", "base_url": "https://user:hunter2@llm.example.com/v1"}]},
        "models[0].base_url",
    ),
    (
        "api_key query",
        {"models": [{**_API, "provider": "custom", "base_url": "https://llm.example.com/v1?api_key=abcd1234efgh5678"}]},
        "models[0].base_url",
    ),
    (
        "password query",
        {"models": [{**_API, "provider": "custom", "base_url": "https://llm.example.com/v1?password=hunter2"}]},
        "models[0].base_url",
    ),
    (
        "token= in an arg",
        {"models": [{**_VLLM, "extra_vllm_args": ["--hf-overrides", '{"token": "9f8e7d6c5b4a3f2e1d0c"}']}]},
        "models[0].extra_vllm_args[1]",
    ),
    (
        "aws key id in docker image",
        {"models": [{**_VLLM, "runtime": "docker", "docker_image": "registry/AKIAIOSFODNN7EXAMPLE:1"}]},
        "models[0].docker_image",
    ),
]

BENIGN: list[dict[str, Any]] = [
    {
        "models": [
            {
                **_VLLM,
                "extra_vllm_args": [
                    "--enforce-eager",
                    "--max-num-seqs",
                    "8",
                    "--tokenizer-mode",
                    "auto",
                    "--max-num-batched-tokens",
                    "8192",
                    "--ssl-keyfile",
                    "/etc/k.pem",
                    "--limit-mm-per-prompt",
                    '{"image": 1}',
                ],
            }
        ]
    },
    {"models": [{**_VLLM, "extra_vllm_args": {"trust-remote-code": True, "served-model-name": "olm", "revision": "main"}}]},
    {"models": [{"model": "Qwen/Qwen2.5-VL-7B-Instruct", "mode": "local", "provider": "vllm", "pass_env": ["HF_HUB_ENABLE_HF_TRANSFER"]}]},
    {"models": [{**_API, "provider": "custom", "base_url": "https://user@llm.example.com/v1"}]},
    {"models": [{**_API, "provider": "gemini", "api_key_env": "GEMINI_API_KEY"}]},
    {"models": [{**_API, "provider": "custom", "base_url": "http://127.0.0.1:8000/v1", "name": "hf_internal_testing-tiny-random"}]},
    {
        "title": "The bearer of this document; sk-learn-benchmarks-dataset-2024",
        "prompt": "Keep the word secret: as written. token=${TOKEN}",
    },
    {"models": [{**_VLLM, "runtime": "docker", "docker_image": "vllm/vllm-openai:v0.11.0"}]},
]


def _config(tmp_path, fields: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": "job", "input_path": str(tmp_path / "inputs"), "models": [_API], **fields}


def _env() -> dict[str, str]:
    return {"OPENAI_API_KEY": "x", "GEMINI_API_KEY": "x"}


@pytest.mark.parametrize(("case", "fields", "where"), SECRETS, ids=[s[0] for s in SECRETS])
def test_a_credential_anywhere_is_refused_naming_the_field(tmp_path, pdf_factory, case, fields, where):
    pdf_factory("doc.pdf", 1)
    with pytest.raises(ConfigError) as caught:
        parse_job_config(_config(tmp_path, fields), env=_env())
    problems = caught.value.problems
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{where}: looks like a credential"), problems[0]
    assert "api_key_env" in problems[0] and "environment variable" in problems[0]
    assert "\n" not in problems[0]


@pytest.mark.parametrize("fields", BENIGN, ids=range(len(BENIGN)))
def test_look_alikes_pass(tmp_path, pdf_factory, fields):
    pdf_factory("doc.pdf", 1)
    parse_job_config(_config(tmp_path, fields), env=_env())


@pytest.mark.parametrize("flag", ["--api-key", "--hf-token=abc", "--API_KEY", "--db-password"])
def test_secret_flags_are_still_refused(tmp_path, pdf_factory, flag):
    pdf_factory("doc.pdf", 1)
    with pytest.raises(ConfigError, match="would put a secret on the command line"):
        parse_job_config(_config(tmp_path, {"models": [{**_VLLM, "extra_vllm_args": [flag, "x"]}]}), env=_env())


def test_the_value_is_never_echoed_and_every_problem_gets_a_line(tmp_path, pdf_factory):
    pdf_factory("doc.pdf", 1)
    key = "sk-Ab3dEf9hIj2lMn4pQr6tUv8xYz0aB1cD2eF3"
    fields = {"title": key, "models": [{**_VLLM, "extra_vllm_args": ["--header", f"Authorization: Bearer {key}"]}, {**_API, "prompt": key}]}
    with pytest.raises(ConfigError) as caught:
        parse_job_config(_config(tmp_path, fields), env=_env())
    assert [p.split(":")[0] for p in caught.value.problems] == ["title", "models[0].extra_vllm_args[1]", "models[1].prompt"]
    assert key not in str(caught.value)


def test_api_key_keeps_its_own_handling(tmp_path, pdf_factory):
    """A key in the api_key field is moved to the environment by the flow, not refused here."""
    pdf_factory("doc.pdf", 1)
    loaded = parse_job_config(_config(tmp_path, {"models": [{**_API, "api_key": "sk-Ab3dEf9hIj2lMn4pQr6tUv8xYz0aB1cD2eF3"}]}), env={})
    assert loaded.config.models[0].api_key_source == "config"


def test_inline_request_refuses_credentials_in_fields_a_kind_drops():
    """Prefect stores the inline config as given, fields the model kind ignores included."""
    config = {"job_id": "j", "input_path": "in", "models": [{**_VLLM, "base_url": "https://u:p4ssw0rd@host/v1"}]}
    with pytest.raises(ValueError, match=r"config\.models\[0\]\.base_url: looks like a credential"):
        JobRequest(config=config)
    JobRequest(config={**config, "models": [_VLLM]})


def test_walk_names_mapping_keys_and_nested_lists():
    assert credential_problems({"a": [{"b": "x"}, {"Bearer abcDEF1234567890xyz": 1}]})[0].startswith("a[1].Bearer")
    assert credential_problems(["fine", ("also fine",)]) == []
    assert credential_shape("allenai/olmOCR-7B-0825-FP8") is None


def test_cli_prints_one_line_per_problem_and_no_traceback(tmp_path, pdf_factory):
    pdf_factory("doc.pdf", 1)
    path = write_config(
        tmp_path / "job.yaml",
        _config(tmp_path, {"models": [{**_VLLM, "extra_vllm_args": ["--header", "Authorization: Bearer abcDEF1234567890xyz"]}]}),
    )
    done = subprocess.run([sys.executable, "-m", "cli.main", "run", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "abcDEF1234567890xyz" not in done.stderr
    assert "  - models[0].extra_vllm_args[1]: looks like a credential (an Authorization header value)" in done.stderr
