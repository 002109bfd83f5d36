"""Job configuration: the YAML schema, its validation and its error messages.

A TRACR job config loads unchanged; tracr adds input globs and lists, page
selection, render settings, per-model timeouts and retries, and provider presets.
Everything is checked before any work starts, and errors name the field:
``models[1].base_url: required for mode api``.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from tracr.config.inputs import InputError, discover_pdfs
from tracr.config.pages import PageSelection, parse_page_selection
from tracr.config.providers import API_PRESETS, DEFAULT_LOCAL_RUNTIME, LOCAL_RUNTIMES
from tracr.config.scoring import ScoringConfig
from tracr.outputs.identifiers import JOB_ID_PATTERN
from tracr.outputs.slugs import slugify

__all__ = [
    "ConfigError",
    "JobConfig",
    "LoadedJob",
    "ModelSpec",
    "RenderSettings",
    "DEFAULT_PROMPT",
    "load_job_config",
    "parse_job_config",
]

DEFAULT_PROMPT = (
    "Convert this page to clean Markdown. Keep the reading order, render tables as "
    "Markdown tables, keep headings, and do not add commentary."
)
ENV_VAR_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_FLAG = re.compile(r"key|token|secret|password", re.IGNORECASE)
BLOCK_NAME_PATTERN = re.compile(r"^[a-z0-9-]{1,100}$")  # Prefect block document names


class ConfigError(ValueError):
    """A job config is invalid; ``problems`` holds one ``field: problem`` line each."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"invalid job config {source}" if source else "invalid job config"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RenderSettings(_Strict):
    """How a page becomes the image sent to a model."""

    longest_side_px: int = Field(1288, ge=64, le=10000, description="Longest image side in pixels (olmOCR uses 1288).")
    format: Literal["png", "jpeg"] = "png"
    jpeg_quality: int = Field(90, ge=1, le=100)


class ModelSpec(_Strict):
    """One model target: ``base_url + api key + model``, or a local runtime."""

    model: str = Field("", min_length=1, description="Required unless `block` names a ModelTarget block.")
    block: str | None = Field(None, description="Name of a ModelTarget block holding base_url, model and key.")
    name: str | None = Field(None, description="Label used for the output folder; defaults to `model`.")
    mode: Literal["api", "local"] = "api"
    provider: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: SecretStr | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    max_concurrent_requests: int = Field(16, ge=1, le=4096)
    extra_vllm_args: list[str] = Field(default_factory=list)
    timeout_s: float = Field(300.0, gt=0, description="Per-request timeout in seconds.")
    retries: int = Field(4, ge=0, le=20, description="Retries after the first attempt for transient errors.")
    retry_backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry, with jitter.")
    retry_backoff_max_s: float = Field(60.0, ge=0)
    startup_timeout_s: float = Field(600.0, gt=0, description="How long a local server may take to become healthy.")
    prompt: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    render: RenderSettings | None = Field(None, description="Per-model image settings; defaults to the job's.")
    # Local vLLM servers (docs/local-models.md)
    runtime: Literal["process", "docker"] = Field("process", description="vllm: run `vllm serve` as a process or in the vllm/vllm-openai container.")
    device: Literal["gpu", "cpu"] = Field("gpu", description="vllm: `cpu` for a CPU build of vLLM (no GPU slots, no fit check).")
    vllm_executable: str | None = Field(None, description="vllm: the executable to run (default: $TRACR_VLLM, else `vllm` on PATH).")
    vllm_preset: str | None = Field(None, description="vllm: serve-flag preset name, or `none`; default: matched by model name.")
    model_size_b: float | None = Field(None, gt=0, description="Parameters in billions, for the fit check when there is no config.json.")
    docker_image: str = Field("vllm/vllm-openai:latest", description="vllm with runtime docker: the image.")

    @field_validator("extra_vllm_args", mode="before")
    @classmethod
    def _split_args(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return shlex.split(value)
        if isinstance(value, Mapping):
            args: list[str] = []
            for key, val in value.items():
                flag = key if str(key).startswith("-") else f"--{key}"
                if val is True or val is None:
                    args.append(flag)
                elif val is not False:
                    args.extend([flag, str(val)])
            return args
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @model_validator(mode="after")
    def _apply_provider(self) -> "ModelSpec":
        if self.block is not None or not self.model:
            return self._use_block()
        if self.mode == "api":
            provider = (self.provider or "custom").lower()
            if provider not in API_PRESETS:
                raise ValueError(f"provider: unknown provider {self.provider!r} for mode api (choose from {', '.join(API_PRESETS)})")
            preset = API_PRESETS[provider]
            self.provider = provider
            self.base_url = self.base_url or preset.base_url
            self.api_key_env = self.api_key_env or preset.api_key_env
            if not self.base_url:
                raise ValueError("base_url: required for mode api")
        else:
            runtime = (self.provider or DEFAULT_LOCAL_RUNTIME).lower()
            if runtime not in LOCAL_RUNTIMES:
                raise ValueError(f"provider: unknown local runtime {self.provider!r} (choose from {', '.join(LOCAL_RUNTIMES)})")
            self.provider = runtime
        if self.api_key_env is not None and not ENV_VAR_PATTERN.match(self.api_key_env):
            # The value is not echoed: users sometimes paste the key itself here.
            raise ValueError("api_key_env: must name an environment variable (letters, digits, _), not hold the key itself")
        for arg in self.extra_vllm_args:
            if arg.startswith("-") and SECRET_FLAG.search(arg.split("=", 1)[0]):
                # Arguments become metadata and Prefect parameters; secrets must come from the environment.
                raise ValueError(
                    f"extra_vllm_args: {arg.split('=', 1)[0]} would put a secret on the command line; "
                    "set it in the environment instead (vLLM reads VLLM_API_KEY, HF_TOKEN)"
                )
        if self.vllm_preset is not None:
            from tracr.serving.vllm_presets import match_preset

            try:
                match_preset(self.model, self.vllm_preset)
            except KeyError as exc:
                raise ValueError(f"vllm_preset: {exc.args[0]}") from None
        if self.runtime == "docker" and self.provider != "vllm":
            raise ValueError(f"runtime: docker runs vLLM only (provider is {self.provider!r})")
        if self.base_url and not re.match(r"^https?://", self.base_url):
            raise ValueError(f"base_url: must start with http:// or https:// (got {self.base_url!r})")
        return self

    def _use_block(self) -> "ModelSpec":
        """A block-backed target: endpoint and key come from the block, loaded by the flow."""
        if self.block is None:
            raise ValueError("model: required (or name a ModelTarget block with `block`)")
        if not BLOCK_NAME_PATTERN.match(self.block):
            raise ValueError(f"block: {self.block!r} is not a Prefect block name (lowercase letters, digits and dashes)")
        if self.mode != "api":
            raise ValueError("block: a ModelTarget block names an API endpoint; remove `mode: local` or the block")
        for field in ("provider", "base_url", "api_key_env", "api_key"):
            if getattr(self, field) is not None:
                raise ValueError(f"{field}: comes from block {self.block!r}; remove it from the config")
        self.name = self.name or (None if self.model else self.block)  # the folder is the block's name
        return self

    @property
    def slug(self) -> str:
        """Folder name of this model under the job (stable across runs)."""
        return slugify(self.name or self.model)

    @property
    def gpus_needed(self) -> int:
        return self.tensor_parallel_size * self.data_parallel_size if self.provider == "vllm" and self.device == "gpu" else 0

    def public_dict(self) -> dict[str, Any]:
        """Everything about the target except secrets, for metadata and parameters."""
        data = self.model_dump(mode="json", exclude={"api_key"})
        data["slug"] = self.slug
        data["api_key_source"] = "block" if self.block else "config" if self.api_key is not None else ("env" if self.api_key_env else "none")
        return data


class JobConfig(_Strict):
    """A benchmark job: which PDFs, which pages, which models, and how to ask them."""

    job_id: str
    title: str | None = None
    input_path: str | list[str]
    prompt: str = DEFAULT_PROMPT
    max_tokens: int = Field(4096, ge=1)
    temperature: float = Field(0.0, ge=0, le=2)
    pages: str | int | list[int] | None = Field(None, description="Page selection, e.g. '1-3,7,10-' (default: all).")
    render: RenderSettings = Field(default_factory=RenderSettings)
    pdf_concurrency: int = Field(4, ge=1, le=256, description="PDFs of one run processed at the same time.")
    page_failure_alert_ratio: float = Field(0.1, gt=0, le=1, description="Failed share of a run's pages that emits tracr.run.page-failures.")
    page_failure_alert_count: int | None = Field(None, ge=1, description="Failed pages that emit tracr.run.page-failures (overrides the ratio).")
    models: list[ModelSpec] = Field(min_length=1)
    scoring: ScoringConfig | None = Field(None, description="References, prices and score-at-the-end (docs/scoring.md).")

    @field_validator("job_id")
    @classmethod
    def _job_id_is_a_folder_name(cls, value: str) -> str:
        if not JOB_ID_PATTERN.match(value):
            raise ValueError("must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("input_path")
    @classmethod
    def _input_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value):
            raise ValueError("names no input (give a PDF, a folder, a glob, or a list of them)")
        return value

    @field_validator("pages")
    @classmethod
    def _pages_parse(cls, value: Any) -> Any:
        parse_page_selection(value)
        return value

    @model_validator(mode="after")
    def _unique_model_slugs(self) -> "JobConfig":
        seen: dict[str, int] = {}
        for index, spec in enumerate(self.models):
            if spec.slug in seen:
                raise ValueError(
                    f"models[{index}].name: model folder {spec.slug!r} is already used by models[{seen[spec.slug]}]; "
                    "give one of them a distinct `name`"
                )
            seen[spec.slug] = index
        return self

    @property
    def page_selection(self) -> PageSelection:
        return parse_page_selection(self.pages)

    def prompt_for(self, spec: ModelSpec) -> str:
        return spec.prompt or self.prompt

    def max_tokens_for(self, spec: ModelSpec) -> int:
        return spec.max_tokens or self.max_tokens

    def render_for(self, spec: ModelSpec) -> RenderSettings:
        return spec.render or self.render

    def temperature_for(self, spec: ModelSpec) -> float:
        return self.temperature if spec.temperature is None else spec.temperature

    def public_dict(self) -> dict[str, Any]:
        """The normalised config without secrets, as recorded in job metadata."""
        data = self.model_dump(mode="json", exclude={"models"})
        data["models"] = [spec.public_dict() for spec in self.models]
        return data


class LoadedJob(BaseModel):
    """A validated config plus what validation resolved: the PDFs and the source file."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    config: JobConfig
    pdfs: list[Path]
    source: Path | None = None


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _allowed_keys(model: type[BaseModel]) -> list[str]:
    return list(model.model_fields)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    model: type[BaseModel] = JobConfig
    for part in loc:
        if part == "models":
            model = ModelSpec
        elif part == "render":
            model = RenderSettings
    return model


def format_validation_error(error: ValidationError) -> list[str]:
    """One ``field.path: problem`` line per pydantic error, with unknown keys explained."""
    lines: list[str] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        message = str(item["msg"])
        if item["type"] == "extra_forbidden":
            key = str(loc[-1])
            allowed = _allowed_keys(_model_at(loc[:-1]))
            hint = difflib.get_close_matches(key, allowed, n=1)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
            lines.append(f"{_location(loc)}: unknown key{suffix}")
            continue
        message = message.removeprefix("Value error, ")
        if item["type"] == "too_short" and loc == ("models",):
            lines.append("models: list at least one model")
            continue
        field = re.match(r"^([A-Za-z_]+): (.*)$", message, re.S)
        if field and (field.group(1) in ModelSpec.model_fields or field.group(1) in JobConfig.model_fields):
            where = _location(loc)
            lines.append(f"{where + '.' if where else ''}{field.group(1)}: {field.group(2)}")
        elif re.match(r"^models\[\d+\]\.", message):
            lines.append(message)
        else:
            lines.append(f"{_location(loc) or 'config'}: {message}")
    return lines


def _check_api_keys(config: JobConfig, env: Mapping[str, str]) -> list[str]:
    problems = []
    for index, spec in enumerate(config.models):
        if spec.mode != "api" or spec.api_key is not None:
            continue
        if spec.api_key_env and not env.get(spec.api_key_env):
            problems.append(
                f"models[{index}].api_key_env: environment variable {spec.api_key_env} is not set "
                f"(export it before running, or name another variable)"
            )
    return problems


def parse_job_config(
    data: Any,
    *,
    source: str | None = None,
    config_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    job_id: str | None = None,
) -> LoadedJob:
    """Validate a config mapping, its inputs and its key variables, all before any work.

    ``job_id`` overrides the config's own (``tracr run --job-id``). Raises
    :class:`ConfigError` listing every problem found.
    """
    if not isinstance(data, Mapping):
        raise ConfigError([f"config: expected a mapping of keys, got {type(data).__name__}"], source)
    data = dict(data)
    if job_id is not None:
        data["job_id"] = job_id
    try:
        config = JobConfig.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        raw_inputs = data.get("input_path")
        if isinstance(raw_inputs, (str, list)) and raw_inputs:  # report missing inputs in the same pass
            try:
                discover_pdfs(raw_inputs, config_dir=config_dir)
            except InputError as input_error:
                problems[:0] = str(input_error).splitlines()
        raise ConfigError(problems, source) from None
    problems = _check_api_keys(config, os.environ if env is None else env)
    pdfs: list[Path] = []
    try:
        pdfs = discover_pdfs(config.input_path, config_dir=config_dir)
    except InputError as exc:
        problems[:0] = str(exc).splitlines()
    if problems:
        raise ConfigError(problems, source)
    return LoadedJob(config=config, pdfs=pdfs, source=Path(source) if source else None)


def load_job_config(path: str | Path, *, env: Mapping[str, str] | None = None, job_id: str | None = None) -> LoadedJob:
    """Read and validate a YAML job config file (see :func:`parse_job_config`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"config: file not found: {path}"], str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{where}: not valid YAML: {problem}"], str(path)) from None
    return parse_job_config(data, source=str(path), config_dir=path.parent.resolve(), env=env, job_id=job_id)
