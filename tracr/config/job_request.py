"""What one submission of the ``ocr-job`` flow asks for, as a pydantic model.

It is the flow's single parameter, so the Prefect UI builds a form from it and
deployments store it. Prefect stores and shows flow-run parameters, so an inline
config may name the environment variable (``api_key_env``) or a block that holds
a key, never the key itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tracr.config.job import LoadedJob, load_job_config, parse_job_config
from tracr.config.secret_values import credential_problems

__all__ = ["JobRequest", "inline_secret_paths"]

_SECRET_KEYS = frozenset({"api_key"})


def inline_secret_paths(data: Any, where: str = "config") -> list[str]:
    """Paths of every non-empty ``api_key`` value inside ``data`` (any depth)."""
    found: list[str] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{where}.{key}"
            if key in _SECRET_KEYS and value not in (None, ""):
                found.append(path)
            else:
                found += inline_secret_paths(value, path)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += inline_secret_paths(value, f"{where}[{index}]")
    return found


class JobRequest(BaseModel):
    """Run a job: from a config file or an inline config, with resume/force switches."""

    model_config = ConfigDict(extra="forbid")

    config_path: str | None = Field(None, description="Path of a job config YAML file (as seen by the machine running the flow).")
    config: dict[str, Any] | None = Field(
        None, description="The job config inline, as a mapping (models name api_key_env, never an api_key value)."
    )
    job_id: str | None = Field(None, description="Override the config's job_id.")
    outputs: str | None = Field(None, description="Outputs root (default: $TRACR_OUTPUTS or ./outputs).")
    resume: bool = Field(False, description="Continue the latest unfinished run of each model, skipping pages already written.")
    force: bool = Field(False, description="Start new runs even if the same config is already running.")

    @model_validator(mode="after")
    def _one_source_no_secrets(self) -> JobRequest:
        if (self.config_path is None) == (self.config is None):
            raise ValueError("give exactly one of config_path (a job config file) or config (the config inline)")
        if self.config is not None:
            secrets = inline_secret_paths(self.config)
            if secrets:
                raise ValueError(
                    f"{', '.join(secrets)}: an inline config must not carry an API key value (flow parameters are "
                    "stored and shown by Prefect); set api_key_env to the name of an environment variable, or use a block"
                )
            # Fields a model kind drops never reach the validated config, but Prefect stores them here.
            shaped = credential_problems(self.config, "config")
            if shaped:
                raise ValueError("\n".join(shaped))
        return self

    @property
    def source(self) -> str:
        """Where the config came from, for metadata and messages."""
        return str(Path(self.config_path).resolve()) if self.config_path else "inline"

    def load(self, env: Mapping[str, str] | None = None) -> LoadedJob:
        """Validate the config (file or inline); relative inputs of an inline config resolve from the cwd."""
        if self.config_path is not None:
            return load_job_config(self.config_path, env=env, job_id=self.job_id)
        return parse_job_config(self.config, source="inline config", config_dir=Path.cwd(), env=env, job_id=self.job_id)

    def raw_job_id(self) -> str | None:
        """The job id without validating anything (for flow-run names); ``None`` if unreadable."""
        if self.job_id:
            return self.job_id
        data: Any = self.config
        if data is None:
            try:
                data = yaml.safe_load(Path(self.config_path or "").read_text(encoding="utf-8"))
            except Exception:
                return None
        return str(data.get("job_id")) if isinstance(data, Mapping) and data.get("job_id") else None
