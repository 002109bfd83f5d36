"""Model kinds: one type per way tracr gets a page's text.

A config never names the kind: :func:`model_kind` reads it from the keys configs
have always had (``block``, ``mode``, ``provider``, ``runtime``), so every existing
config, TRACR's included, loads unchanged. TRACR writes every field for every
model, so a kind drops the fields of other kinds instead of refusing them, and
keeps, checks and records only its own.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from tracr.config.providers import API_PRESETS, DEFAULT_LOCAL_RUNTIME, LOCAL_RUNTIMES
from tracr.config.render import RenderSettings
from tracr.outputs.slugs import slugify
from tracr.pricing.prices import Price

__all__ = [
    "ApiModel",
    "BlockModel",
    "EndpointModel",
    "KINDS",
    "KeyedModel",
    "LocalServerModel",
    "MODEL_FIELDS",
    "ModelBase",
    "ModelSpec",
    "OcrServerModel",
    "PriceSetting",
    "ProviderLimits",
    "TextLayerModel",
    "VllmDockerModel",
    "VllmModel",
    "VllmProcessModel",
    "model_kind",
    "model_spec",
]

ENV_VAR_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: A flag whose value is a secret (``--api-key``, ``--hf-token``), not ``--tokenizer`` or ``--max-num-batched-tokens``.
SECRET_FLAG = re.compile(r"(?:key|token|secret|password|passwd|credentials?)(?![a-z])", re.IGNORECASE)
BLOCK_NAME_PATTERN = re.compile(r"^[a-z0-9-]{1,100}$")  # Prefect block document names
DEFAULT_DOCKER_IMAGE = "vllm/vllm-openai:latest"
RUNTIMES = ("process", "docker")


class ModelBase(BaseModel):
    """What every kind has: the model, its folder name, and the request settings of a run."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: ClassVar[str]
    #: Whether a run of this kind starts (or joins) a local server first.
    serves_locally: ClassVar[bool] = False

    model: str = Field(min_length=1)
    name: str | None = Field(None, description="Label used for the output folder; defaults to `model`.")
    max_concurrent_requests: int = Field(16, ge=1, le=4096)
    timeout_s: float = Field(300.0, gt=0, description="Per-request timeout in seconds.")
    prompt: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    render: RenderSettings | None = Field(None, description="Per-model image settings; defaults to the adapter's, then the job's.")
    adapter: str | None = Field(
        None,
        description="Registry entry or custom adapter to ask the model with; `none` for the generic prompt; default: matched by model id.",
    )
    keep_furniture: bool = Field(False, description="Keep page headers, footers, page numbers and watermarks the family's reply marks.")
    max_page_chars: int = Field(
        500_000,
        ge=1,
        description="Characters of a page's text stored at most; longer (runaway) output is cut and the page records capped_at.",
    )

    @model_validator(mode="before")
    @classmethod
    def _own_fields_only(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = cls._check_input(dict(data))
        # Another kind's field is dropped; a key no kind knows stays, to be refused as unknown.
        return {key: value for key, value in data.items() if key in cls.model_fields or key not in MODEL_FIELDS}

    @classmethod
    def _check_input(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The kind's checks and defaults on its raw fields (those of other kinds still there)."""
        return data

    @property
    def slug(self) -> str:
        """Folder name of this model under the job (stable across runs)."""
        return slugify(self.name or self.model)

    @property
    def gpus_needed(self) -> int:
        return 0

    @property
    def api_key_source(self) -> str:
        return "none"

    def public_dict(self) -> dict[str, Any]:
        """The kind's own fields, never a secret, for metadata and parameters."""
        data = self.model_dump(mode="json", exclude={"api_key"})
        data.update(kind=self.kind, slug=self.slug, api_key_source=self.api_key_source)
        for key, default in _DIGEST_NEUTRAL_DEFAULTS:
            if data.get(key) == default:
                data.pop(key, None)  # configs without them keep the digest they had before the fields existed
        return data


#: Fields added after configs were digested: left out at their defaults, so older configs keep their digest.
_DIGEST_NEUTRAL_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("adapter", None),
    ("keep_furniture", False),
    ("requests_per_minute", None),
    ("tokens_per_minute", None),
    ("rate_limit_key", None),
    ("adaptive_concurrency", True),
    ("adaptive_latency_s", None),
    ("price", None),
    ("batch", False),
    ("batch_poll_s", 30.0),
)
RATE_LIMIT_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class PriceSetting(BaseModel):
    """A model's price in the config: overrides the built-in list price (tracr/pricing/prices.py)."""

    model_config = ConfigDict(extra="forbid")

    input_per_million: float = Field(0.0, ge=0, description="Price per million input tokens.")
    output_per_million: float = Field(0.0, ge=0, description="Price per million output tokens.")
    per_1000_pages: float | None = Field(None, ge=0, description="Price per 1,000 pages, for endpoints billed by page.")
    batch_factor: float = Field(0.5, gt=0, le=1, description="The batch price as a share of the live one.")
    currency: str = Field("USD", min_length=1, max_length=8)
    as_of: str = Field("", max_length=40, description="When the price was read (shown beside costs).")
    source: str = Field("config", max_length=300)

    def to_price(self) -> Price:
        return Price(**self.model_dump())


class ProviderLimits(BaseModel):
    """A hosted endpoint's budget and how a run backs off (see docs/rate-limits.md)."""

    requests_per_minute: int | None = Field(
        None, ge=1, le=1_000_000, description="The key's request budget per minute, shared by every run, job and host using it."
    )
    tokens_per_minute: int | None = Field(
        None, ge=1, le=1_000_000_000, description="The key's token budget per minute (input and output), shared like requests_per_minute."
    )
    rate_limit_key: str | None = Field(
        None,
        description="A name for the budget (models naming it share it); default: a digest of the API key. Never the key itself.",
    )
    adaptive_concurrency: bool = Field(
        True, description="Halve the requests in flight on 429s (honouring Retry-After), add one per round of successes up to max."
    )
    adaptive_latency_s: float | None = Field(None, gt=0, description="Also back off when a reply takes longer than this.")
    price: PriceSetting | None = Field(None, description="The model's price; default: the built-in list price, if tracr knows one.")
    batch: bool = Field(
        False, description="Send pages through the provider's Batch API (max_concurrent_requests pages a batch) at the batch price."
    )
    batch_poll_s: float = Field(30.0, gt=0, description="How often a batch's status is asked.")

    @field_validator("rate_limit_key")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        if value is not None and (not RATE_LIMIT_KEY_PATTERN.match(value) or value.lower().startswith(("sk-", "sk_"))):
            # The value is not echoed: it may be the key pasted by mistake.
            raise ValueError("must be a short name (letters, digits, . _ -, at most 40), not the API key")
        return value


class TextLayerModel(ModelBase):
    """The PDF's own text layer as Markdown: the zero-cost baseline (``provider: pdf-text``)."""

    kind: ClassVar[str] = "pdf-text"

    mode: Literal["local"] = "local"
    provider: Literal["pdf-text"] = "pdf-text"

    @classmethod
    def _check_input(cls, data: dict[str, Any]) -> dict[str, Any]:
        data["provider"] = cls.model_fields["provider"].default  # the kind was matched case-insensitively
        return data


class EndpointModel(ModelBase):
    """A kind that asks an OpenAI-compatible endpoint, so retries transient errors."""

    retries: int = Field(4, ge=0, le=20, description="Retries after the first attempt for transient errors.")
    retry_backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry, with jitter.")
    retry_backoff_max_s: float = Field(60.0, ge=0)


class BlockModel(EndpointModel, ProviderLimits):
    """A hosted endpoint kept in a ModelTarget block: URL and key are read inside the run."""

    kind: ClassVar[str] = "block"

    block: str = Field(description="Name of a ModelTarget block holding base_url, model and key.")
    model: str = Field("", min_length=1, description="Filled from the block when the job plans, unless set here.")
    mode: Literal["api"] = "api"

    @classmethod
    def _check_input(cls, data: dict[str, Any]) -> dict[str, Any]:
        block = data.get("block")
        if isinstance(block, str) and not BLOCK_NAME_PATTERN.match(block):
            raise ValueError(f"block: {block!r} is not a Prefect block name (lowercase letters, digits and dashes)")
        if data.get("mode", "api") != "api":
            raise ValueError("block: a ModelTarget block names an API endpoint; remove `mode: local` or the block")
        for field in ("provider", "base_url", "api_key_env", "api_key"):
            if data.get(field) is not None and not (field == "api_key" and data[field] == ""):
                raise ValueError(f"{field}: comes from block {block!r}; remove it from the config")
        if not data.get("name") and not data.get("model"):
            data["name"] = block  # the folder is the block's name
        return data

    @property
    def api_key_source(self) -> str:
        return "block"


class KeyedModel(EndpointModel):
    """An endpoint whose key comes from an environment variable (or, discouraged, the config)."""

    api_key_env: str | None = None
    api_key: SecretStr | None = None

    @field_validator("api_key", mode="before")
    @classmethod
    def _blank_key_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("api_key_env")
    @classmethod
    def _names_a_variable(cls, value: str | None) -> str | None:
        if value is not None and not ENV_VAR_PATTERN.match(value):
            # The value is not echoed: users sometimes paste the key itself here.
            raise ValueError("must name an environment variable (letters, digits, _), not hold the key itself")
        return value

    @property
    def api_key_source(self) -> str:
        return "config" if self.api_key is not None else "env" if self.api_key_env else "none"


class ApiModel(KeyedModel, ProviderLimits):
    """A hosted OpenAI-compatible endpoint; ``provider`` presets fill what the config leaves empty."""

    kind: ClassVar[str] = "api"

    mode: Literal["api"] = "api"
    provider: str = "custom"
    base_url: str | None = Field(None, description="Required, unless the provider's preset has one.")

    @classmethod
    def _check_input(cls, data: dict[str, Any]) -> dict[str, Any]:
        provider = str(data.get("provider") or "custom").lower()
        preset = API_PRESETS.get(provider)
        if preset is not None:  # an unknown provider is refused once the fields have parsed
            data.update(
                provider=provider,
                base_url=data.get("base_url") or preset.base_url,
                api_key_env=data.get("api_key_env") or preset.api_key_env,
            )
        return data

    @field_validator("base_url")
    @classmethod
    def _is_http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise ValueError(f"must start with http:// or https:// (got {value!r})")
        return value

    @model_validator(mode="after")
    def _has_endpoint(self) -> ApiModel:
        if self.provider not in API_PRESETS:
            raise ValueError(f"provider: unknown provider {self.provider!r} for mode api (choose from {', '.join(API_PRESETS)})")
        if not self.base_url:
            raise ValueError("base_url: required for mode api")
        return self


class LocalServerModel(KeyedModel):
    """A model served on this host for the run's time, as an OpenAI-compatible endpoint."""

    serves_locally: ClassVar[bool] = True

    mode: Literal["local"] = "local"
    provider: str
    startup_timeout_s: float = Field(600.0, gt=0, description="How long a local server may take to become healthy.")
    pass_env: list[str] = Field(
        default_factory=list,
        description="Names of environment variables the server also gets from tracr's (it gets an allow list, not everything).",
    )

    @field_validator("pass_env")
    @classmethod
    def _pass_env_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not ENV_VAR_PATTERN.match(name):
                # The value is not echoed: it may be a pasted secret.
                raise ValueError("each entry must name an environment variable (letters, digits, _), not hold a value")
        return value

    def public_dict(self) -> dict[str, Any]:
        data = super().public_dict()
        if not self.pass_env:
            data.pop("pass_env")  # configs without it keep the digest they had before the field existed
        return data

    @classmethod
    def _check_input(cls, data: dict[str, Any]) -> dict[str, Any]:
        data["provider"] = cls.model_fields["provider"].default  # the kind was matched case-insensitively
        return data


class OcrServerModel(LocalServerModel):
    """The built-in RapidOCR server on the CPU (``provider: tracr-ocr``)."""

    kind: ClassVar[str] = "tracr-ocr"
    #: RapidOCR reads text about 16 px tall or more: at the job's 1288 px longest side a
    #: newspaper's text is 5 px and a very tall page's is one. 144 dpi (raised for small pages,
    #: capped in pixels) gives it text it can read; bench/rapidocr_recall.py measures it.
    page_render_rules: ClassVar[dict[str, Any]] = {"dpi": 144.0, "min_shortest_side_px": 1000, "max_pixels": 40_000_000}

    provider: Literal["tracr-ocr"] = "tracr-ocr"

    def page_render(self, job_render: RenderSettings) -> RenderSettings:
        """The job's render, sized for RapidOCR unless the job chose a size rule of its own."""
        if self.render is not None:
            return self.render
        if job_render.model_fields_set & {"longest_side_px", "dpi", "shortest_side_px", "exact_px"}:
            return job_render
        return job_render.model_copy(update=self.page_render_rules)


class VllmModel(LocalServerModel):
    """``vllm serve`` on this host's GPUs (or a CPU build): parallelism, memory, flags, fit check."""

    provider: Literal["vllm"] = "vllm"
    runtime: str
    device: Literal["gpu", "cpu"] = Field("gpu", description="`cpu` for a CPU build of vLLM (no GPU slots, no fit check).")
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1)
    max_model_len: int | None = Field(None, ge=1)
    extra_vllm_args: list[str] = Field(default_factory=list)
    vllm_preset: str | None = Field(None, description="Serve-flag preset name, or `none`; default: matched by model name.")
    model_size_b: float | None = Field(None, gt=0, description="Parameters in billions, for the fit check when there is no config.json.")

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

    @field_validator("extra_vllm_args")
    @classmethod
    def _no_secret_flags(cls, value: list[str]) -> list[str]:
        for arg in value:
            flag = arg.split("=", 1)[0]
            if arg.startswith("-") and SECRET_FLAG.search(flag):
                # Arguments become metadata and Prefect parameters; secrets must come from the environment.
                raise ValueError(
                    f"{flag} would put a secret on the command line; set it in the environment instead (vLLM reads VLLM_API_KEY, HF_TOKEN)"
                )
        return value

    @model_validator(mode="after")
    def _preset_exists(self) -> VllmModel:
        if self.vllm_preset is not None:
            from tracr.serving.vllm_presets import match_preset

            try:
                match_preset(self.model, self.vllm_preset)
            except KeyError as exc:
                raise ValueError(f"vllm_preset: {exc.args[0]}") from None
        return self

    @property
    def gpus_needed(self) -> int:
        return self.tensor_parallel_size * self.data_parallel_size if self.device == "gpu" else 0

    @property
    def preset_choice(self) -> str | None:
        """The serve-flag preset asked for: ``vllm_preset``, else a built-in ``adapter`` (its serve flags), else matching."""
        if self.vllm_preset is not None:
            return self.vllm_preset
        from tracr.serving.vllm_presets import VLLM_PRESETS

        if self.adapter is not None and (self.adapter.lower() == "none" or any(p.name == self.adapter.lower() for p in VLLM_PRESETS)):
            return self.adapter
        return None


class VllmProcessModel(VllmModel):
    """vLLM run as a ``vllm serve`` process (``runtime: process``, the default)."""

    kind: ClassVar[str] = "vllm"

    runtime: Literal["process"] = "process"
    vllm_executable: str | None = Field(None, description="The executable to run (default: $TRACR_VLLM, else `vllm` on PATH).")


class VllmDockerModel(VllmModel):
    """vLLM run in the vllm/vllm-openai container (``runtime: docker``)."""

    kind: ClassVar[str] = "vllm-docker"

    runtime: Literal["docker"] = "docker"
    docker_image: str = Field(DEFAULT_DOCKER_IMAGE, description="The image.")


KINDS: tuple[type[ModelBase], ...] = (ApiModel, BlockModel, VllmProcessModel, VllmDockerModel, OcrServerModel, TextLayerModel)
#: Every field some kind has: a key outside this set is unknown to all of them.
MODEL_FIELDS: frozenset[str] = frozenset(name for kind in KINDS for name in kind.model_fields)


def model_kind(data: Any) -> str:
    """The kind a model's fields name, from the keys configs have always had.

    ``block`` makes a block target; else ``mode`` (default ``api``) and, for local
    models, ``provider`` (default ``vllm``) and ``runtime``. Raises ValueError
    naming the field when the fields name no kind.
    """
    if isinstance(data, ModelBase):
        return data.kind
    if not isinstance(data, Mapping):
        raise ValueError(f"expected a mapping of model fields, got {type(data).__name__}")
    if data.get("block") is not None:
        return "block"
    if "model" not in data:
        raise ValueError("model: required (or name a ModelTarget block with `block`)")
    mode, provider, runtime = data.get("mode", "api"), data.get("provider"), data.get("runtime", "process")
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime: Input should be {' or '.join(map(repr, RUNTIMES))}")
    if mode == "api":
        kind, provider = "api", str(provider or "custom").lower()
    elif mode == "local":
        kind = provider = str(provider or DEFAULT_LOCAL_RUNTIME).lower()
        if kind not in LOCAL_RUNTIMES:
            raise ValueError(f"provider: unknown local runtime {data.get('provider')!r} (choose from {', '.join(LOCAL_RUNTIMES)})")
    else:
        raise ValueError("mode: Input should be 'api' or 'local'")
    if runtime == "docker":
        if kind != "vllm":
            raise ValueError(f"runtime: docker runs vLLM only (provider is {provider!r})")
        return "vllm-docker"
    return kind


def _tag(data: Any) -> str | None:
    try:
        return model_kind(data)
    except ValueError:
        return None


def _check_kind(data: Any) -> Any:
    """Reports why the fields name no kind, before pydantic would only say "no tag"."""
    model_kind(data)
    return data


ModelSpec: TypeAlias = Annotated[
    Annotated[ApiModel, Tag(ApiModel.kind)]
    | Annotated[BlockModel, Tag(BlockModel.kind)]
    | Annotated[VllmProcessModel, Tag(VllmProcessModel.kind)]
    | Annotated[VllmDockerModel, Tag(VllmDockerModel.kind)]
    | Annotated[OcrServerModel, Tag(OcrServerModel.kind)]
    | Annotated[TextLayerModel, Tag(TextLayerModel.kind)],
    Discriminator(_tag),
    BeforeValidator(_check_kind),
]
"""One model target of a job config: whichever kind its fields name."""

_ADAPTER: TypeAdapter[ModelSpec] = TypeAdapter(ModelSpec)


def model_spec(**fields: Any) -> ModelSpec:
    """The kind of model these config fields name, validated (``model_spec(model=..., mode="local")``)."""
    return _ADAPTER.validate_python(fields)
