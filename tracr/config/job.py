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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tracr.adapters.registry import GENERIC, match_adapter
from tracr.adapters.spec import Adapter, ImagePrep, Sampling
from tracr.config.adapters import CustomAdapter
from tracr.config.collections import CollectionSpec, unmatched_specs
from tracr.config.inputs import InputError, discover_pdfs
from tracr.config.models import KINDS, MODEL_FIELDS, ApiModel, ModelSpec, OcrServerModel, TextLayerModel, model_spec
from tracr.config.pages import PageSelection, parse_page_selection
from tracr.config.render import RenderSettings
from tracr.config.scoring import ScoringConfig
from tracr.config.secret_values import credential_problems
from tracr.errors import ErrorClass, TracrError
from tracr.outputs.identifiers import JOB_ID_PATTERN
from tracr.outputs.slugs import pdf_slugs

__all__ = [
    "ConfigCheck",
    "ConfigError",
    "JobConfig",
    "LoadedJob",
    "ModelSpec",
    "RenderSettings",
    "DEFAULT_PROMPT",
    "check_job_config",
    "check_job_config_file",
    "load_job_config",
    "parse_job_config",
]

DEFAULT_PROMPT = (
    "Convert this page to clean Markdown. Keep the reading order, render tables as "
    "Markdown tables, keep headings, and do not add commentary."
)
KIND_BY_TAG: dict[str, type[BaseModel]] = {kind.kind: kind for kind in KINDS}


class ConfigError(TracrError, ValueError):
    """A job config is invalid; ``problems`` holds one ``field: problem`` line each."""

    default_class = ErrorClass.CONFIG

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        head = f"invalid job config {source}" if source else "invalid job config"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


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
    pdf_concurrency: int = Field(4, ge=1, le=256, description="PDFs of one run feeding pages into its request slots at the same time.")
    page_failure_alert_ratio: float = Field(
        0.1, gt=0, le=1, description="Failed share of a run's pages that emits tracr.run.page-failures."
    )
    page_failure_alert_count: int | None = Field(
        None, ge=1, description="Failed pages that emit tracr.run.page-failures (overrides the ratio)."
    )
    models: list[ModelSpec] = Field(min_length=1)
    adapters: list[CustomAdapter] = Field(default_factory=list, description="The job's own adapters (docs/supported-models.md).")
    scoring: ScoringConfig | None = Field(None, description="References, prices and score-at-the-end (docs/scoring.md).")
    collections: list[CollectionSpec] = Field(
        default_factory=list, description="Named collections of the PDFs, to rank per kind of document (docs/collections.md)."
    )

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
    def _unique_model_slugs(self) -> JobConfig:
        seen: dict[str, int] = {}
        for index, spec in enumerate(self.models):
            if spec.slug in seen:
                raise ValueError(
                    f"models[{index}].name: model folder {spec.slug!r} is already used by models[{seen[spec.slug]}]; "
                    "give one of them a distinct `name`"
                )
            seen[spec.slug] = index
        return self

    @model_validator(mode="after")
    def _unique_collection_names(self) -> JobConfig:
        names = [spec.name for spec in self.collections]
        for name in sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"collections: {name!r} is defined twice")
        return self

    @model_validator(mode="after")
    def _adapters_exist(self) -> JobConfig:
        custom = [adapter.build() for adapter in self.adapters]
        names = [adapter.name for adapter in self.adapters]
        for name in {n for n in names if names.count(n) > 1}:
            raise ValueError(f"adapters: {name!r} is defined twice")
        for index, spec in enumerate(self.models):
            if spec.adapter is not None:
                try:
                    match_adapter(spec.model, spec.adapter, custom)
                except KeyError as exc:
                    raise ValueError(f"models[{index}].adapter: {exc.args[0]}") from None
        return self

    def adapter_for(self, spec: ModelSpec) -> Adapter | None:
        """How ``spec`` is asked: its registry entry with the model's own settings on top; None for the text layer.

        A model matched by no entry (or ``adapter: none``) gets the job's prompt, tokens,
        temperature and render size, as before adapters existed.
        """
        if isinstance(spec, TextLayerModel):
            return None
        adapter = match_adapter(spec.model, spec.adapter, [custom.build() for custom in self.adapters])
        if adapter.name == GENERIC.name:
            adapter = adapter.with_overrides(
                prompt=self.prompt,
                sampling=Sampling(temperature=self.temperature, max_tokens=self.max_tokens),
                image=ImagePrep(longest_side_px=self.render.longest_side_px),
            )
        changes: dict[str, Any] = {}
        if spec.prompt is not None:
            changes["prompt"] = spec.prompt
        if spec.max_tokens is not None or spec.temperature is not None:
            changes["sampling"] = replace(
                adapter.sampling,
                max_tokens=spec.max_tokens or adapter.sampling.max_tokens,
                temperature=adapter.sampling.temperature if spec.temperature is None else spec.temperature,
            )
        if spec.render is not None:
            changes["image"] = ImagePrep(longest_side_px=spec.render.longest_side_px)
        return adapter.with_overrides(**changes) if changes else adapter

    @property
    def page_selection(self) -> PageSelection:
        return parse_page_selection(self.pages)

    def prompt_for(self, spec: ModelSpec) -> str:
        adapter = self.adapter_for(spec)
        return adapter.text if adapter is not None else spec.prompt or self.prompt

    def max_tokens_for(self, spec: ModelSpec) -> int:
        adapter = self.adapter_for(spec)
        return adapter.sampling.max_tokens if adapter is not None else spec.max_tokens or self.max_tokens

    def render_for(self, spec: ModelSpec) -> RenderSettings:
        """The model's render block, else its adapter's image preparation in the job's image format."""
        if spec.render is not None:
            return spec.render
        if isinstance(spec, OcrServerModel):
            return spec.page_render(self.render)
        adapter = self.adapter_for(spec)
        if adapter is None or adapter.name == GENERIC.name:
            return self.render
        image = adapter.image
        return self.render.model_copy(
            update={
                "longest_side_px": image.longest_side_px or self.render.longest_side_px,
                "dpi": image.dpi,
                "shortest_side_px": image.shortest_side_px,
                "min_shortest_side_px": image.min_shortest_side_px,
                "max_pixels": image.max_pixels,
                "exact_px": image.exact_px,
            }
        )

    def temperature_for(self, spec: ModelSpec) -> float:
        adapter = self.adapter_for(spec)
        if adapter is not None:
            return adapter.sampling.temperature
        return self.temperature if spec.temperature is None else spec.temperature

    def public_dict(self) -> dict[str, Any]:
        """The normalised config without secrets, as recorded in job metadata."""
        data = self.model_dump(mode="json", exclude={"models", "adapters", "collections"})
        data["models"] = [spec.public_dict() for spec in self.models]
        if self.adapters:  # left out when there are none, so older configs keep their digest
            data["adapters"] = [adapter.model_dump(mode="json", exclude_none=True) for adapter in self.adapters]
        if self.collections:  # likewise
            data["collections"] = [spec.model_dump(mode="json") for spec in self.collections]
        return data


class LoadedJob(BaseModel):
    """A validated config plus what validation resolved: the PDFs and the source file."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    config: JobConfig
    pdfs: list[str]  # absolute paths, as strings: a job over 20,000 PDFs holds them
    source: Path | None = None


def _without_kind(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The location without the kind tag pydantic puts after ``models[i]`` (not a config key)."""
    for i in range(2, len(loc)):
        if loc[i - 2] == "models" and isinstance(loc[i - 1], int) and loc[i] in KIND_BY_TAG:
            return loc[:i] + loc[i + 1 :]
    return loc


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys valid where ``loc`` points: the job's, a render block's, or the model kind's."""
    model: type[BaseModel] = JobConfig
    for i, part in enumerate(loc):
        if part == "models":
            tag = loc[i + 2] if len(loc) > i + 2 else None
            model = KIND_BY_TAG.get(str(tag), JobConfig)
        elif part == "render":
            model = RenderSettings
    return list(model.model_fields)


def format_validation_error(error: ValidationError) -> list[str]:
    """One ``field.path: problem`` line per pydantic error, with unknown keys explained."""
    lines: list[str] = []
    for item in error.errors():
        raw_loc = tuple(item["loc"])
        loc = _without_kind(raw_loc)
        message = str(item["msg"])
        if item["type"] == "extra_forbidden":
            key = str(loc[-1])
            hint = difflib.get_close_matches(key, _allowed_keys(raw_loc[:-1]), n=1)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
            lines.append(f"{_location(loc)}: unknown key{suffix}")
            continue
        message = message.removeprefix("Value error, ")
        if item["type"] == "too_short" and loc == ("models",):
            lines.append("models: list at least one model")
            continue
        field = re.match(r"^([A-Za-z_]+): (.*)$", message, re.S)
        if field and (field.group(1) in MODEL_FIELDS or field.group(1) in JobConfig.model_fields):
            where = _location(loc)
            lines.append(f"{where + '.' if where else ''}{field.group(1)}: {field.group(2)}")
        elif re.match(r"^models\[\d+\]\.", message):
            lines.append(message)
        else:
            lines.append(f"{_location(loc) or 'config'}: {message}")
    return lines


def _check_api_keys(models: Iterable[tuple[int, ModelSpec]], env: Mapping[str, str]) -> list[str]:
    """A problem for each API model whose key variable is not set (a key written in the config needs none)."""
    problems = []
    for index, spec in models:
        if not isinstance(spec, ApiModel) or spec.api_key is not None:
            continue
        if spec.api_key_env and not env.get(spec.api_key_env):
            problems.append(
                f"models[{index}].api_key_env: environment variable {spec.api_key_env} is not set "
                f"(export it before running, or name another variable)"
            )
    return problems


def _models_that_parse(data: Mapping[str, Any]) -> list[tuple[int, ModelSpec]]:
    """The model entries of a config that failed validation which are valid on their own, for the checks that need them."""
    raw = data.get("models")
    if not isinstance(raw, list):
        return []
    parsed: list[tuple[int, ModelSpec]] = []
    for index, entry in enumerate(raw):
        if isinstance(entry, Mapping) and all(isinstance(key, str) for key in entry):
            try:
                parsed.append((index, model_spec(**entry)))
            except (ValidationError, ValueError):
                continue  # its problems are already among the config's
    return parsed


def _raw_credential_problems(data: Mapping[str, Any], reported: list[str]) -> list[str]:
    """Credential-shaped values in a config that failed validation, but not where a problem is reported already.

    A model's ``api_key`` is left out: it is the one place a key may be written (it is moved to the environment).
    """
    scanned = dict(data)
    if isinstance(scanned.get("models"), list):
        scanned["models"] = [
            {k: v for k, v in entry.items() if k != "api_key"} if isinstance(entry, Mapping) else entry for entry in scanned["models"]
        ]
    fields = {problem.split(": ", 1)[0] for problem in reported}

    def reported_already(problem: str) -> bool:  # the field itself, or a part of it (an entry of a refused list)
        path = problem.split(": ", 1)[0]
        return any(path == field or path.startswith((field + "[", field + ".")) for field in fields)

    return [problem for problem in credential_problems(scanned) if not reported_already(problem)]


def _check_persisted_values(config: JobConfig) -> list[str]:
    """Credential-shaped values anywhere in what metadata and Prefect parameters record (``api_key`` aside)."""
    data = config.public_dict()
    for model in data["models"]:
        model.pop("slug", None)  # made from `name`, which is checked itself
    return credential_problems(data)


@dataclass(frozen=True)
class ConfigCheck:
    """Everything wrong with a config, and the config itself when it parsed (its keys or inputs may still be missing).

    ``tracr run`` refuses a config with any problem; ``tracr doctor`` lists the same
    problems and still preflights the models of a config that parsed.
    """

    problems: list[str]
    config: JobConfig | None = None
    pdfs: list[str] = dataclass_field(default_factory=list)


def check_job_config(
    data: Any,
    *,
    config_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    job_id: str | None = None,
) -> ConfigCheck:
    """Validate a config mapping, its inputs and its key variables, and list every problem at once.

    A problem in one field does not hide another: a missing key variable or input
    is listed beside a misspelt key, so one edit fixes them all.
    """
    if not isinstance(data, Mapping):
        return ConfigCheck([f"config: expected a mapping of keys, got {type(data).__name__}"])
    data = dict(data)
    if job_id is not None:
        data["job_id"] = job_id
    env = os.environ if env is None else env
    problems: list[str] = []
    config: JobConfig | None = None
    try:
        config = JobConfig.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        problems += _raw_credential_problems(data, problems) + _check_api_keys(_models_that_parse(data), env)
    else:
        problems = _check_persisted_values(config) + _check_api_keys(enumerate(config.models), env)
    pdfs: list[str] = []
    raw_inputs = data.get("input_path")
    if isinstance(raw_inputs, (str, list)) and raw_inputs:  # missing inputs are reported in the same pass
        try:
            pdfs = discover_pdfs(raw_inputs, config_dir=config_dir)
        except InputError as exc:
            problems[:0] = str(exc).splitlines()
    if config is not None and config.collections and pdfs:
        slugs = pdf_slugs(pdfs)
        for name in unmatched_specs({slugs[p]: p for p in pdfs}, config.collections):
            problems.append(f"collections: {name!r} matches no input PDF (check its folders, globs and pdfs)")
    return ConfigCheck(problems, config, pdfs)


def parse_job_config(
    data: Any,
    *,
    source: str | None = None,
    config_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    job_id: str | None = None,
) -> LoadedJob:
    """Validate a config mapping, its inputs and its key variables, all before any work (:func:`check_job_config`).

    Values that look like credentials are refused wherever they are (see
    :mod:`tracr.config.secret_values`): the config is persisted.

    ``job_id`` overrides the config's own (``tracr run --job-id``). Raises
    :class:`ConfigError` listing every problem found.
    """
    check = check_job_config(data, config_dir=config_dir, env=env, job_id=job_id)
    if check.problems or check.config is None:
        raise ConfigError(check.problems, source)
    return LoadedJob(config=check.config, pdfs=check.pdfs, source=Path(source) if source else None)


def check_job_config_file(path: str | Path, *, env: Mapping[str, str] | None = None, job_id: str | None = None) -> ConfigCheck:
    """Read a YAML job config file and list every problem (:func:`check_job_config`); what doctor and run both use."""
    path = Path(path)
    if not path.is_file():
        return ConfigCheck([f"config: file not found: {path}"])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return ConfigCheck([f"{where}: not valid YAML: {problem}"])
    return check_job_config(data, config_dir=path.parent.resolve(), env=env, job_id=job_id)


def load_job_config(path: str | Path, *, env: Mapping[str, str] | None = None, job_id: str | None = None) -> LoadedJob:
    """Read and validate a YAML job config file; raises :class:`ConfigError` listing every problem."""
    check = check_job_config_file(path, env=env, job_id=job_id)
    if check.problems or check.config is None:
        raise ConfigError(check.problems, str(path))
    return LoadedJob(config=check.config, pdfs=check.pdfs, source=Path(path))
