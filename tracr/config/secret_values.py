"""Credential-shaped values in a config that gets persisted, found before anything starts.

A job config is written to every run's metadata and, submitted inline, stored by
Prefect as a flow-run parameter. Keys belong in the environment (``api_key_env``,
``pass_env``), so a value anywhere else that looks like one is refused:
``extra_vllm_args: ["--header", "Authorization: Bearer sk-..."]``, a URL with a
password in it, ``?api_key=...``. Shapes are specific (known key prefixes, JWTs,
Authorization headers, random-looking values after ``key=``/``token=``), so paths,
model names such as ``allenai/olmOCR-7B-0825-FP8`` and flag names pass.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

__all__ = ["credential_shape", "credential_problems", "HOW_TO_PASS"]

HOW_TO_PASS = (
    "configs are stored in run metadata and Prefect flow-run parameters; put the secret in an environment variable "
    "and name it (api_key_env for a model's key, pass_env for a variable a local server needs)"
)

#: (what it is, pattern): providers' key formats and other unmistakable shapes.
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an Authorization header value", re.compile(r"(?i)\b(?:proxy-)?authorization\s*[:=]\s*\S")),
    ("a bearer token", re.compile(r"(?i)\bbearer\s+(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{12,}")),
    ("a cookie", re.compile(r"(?i)\bcookie\s*:\s*[^=\s]+=\S")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a URL with a password (user:password@)", re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s/@:]*:[^\s/@]+@")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")),
    ("an OpenAI/Anthropic-style key (sk-...)", re.compile(r"(?<![A-Za-z0-9])sk-(?:[A-Za-z0-9]+-){0,2}(?P<tail>[A-Za-z0-9_-]{16,})")),
    ("a Google API key (AIza...)", re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("a Hugging Face token (hf_...)", re.compile(r"\bhf_(?P<tail>[A-Za-z0-9]{30,})")),
    ("a GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("a GitLab token (glpat-...)", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Slack token (xox...)", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("an AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
)

#: ``name=value`` / ``name: value`` / ``"name": "value"`` where the name says secret.
_ASSIGNED = re.compile(
    r"""(?ix)(?<![A-Za-z0-9])
    (api[-_]?key|apikey|x-api-key|access[-_]?token|auth[-_]?token|refresh[-_]?token|id[-_]?token|token
     |client[-_]?secret|secret|password|passwd|private[-_]?key|key|sig|signature)
    ["']?\s*(?P<sep>[=:])\s*["']?
    (?P<value>[^\s&;,"'}\]]+)"""
)
_PASSWORD_NAME = re.compile(r"(?i)^(?:password|passwd|secret|client[-_]?secret)$")
_PLACEHOLDER = re.compile(r"^(?:\$|<|\{\{|%\(|\*+$|x+$|none$|null$|true$|false$|redacted$|changeme$)", re.IGNORECASE)


def _classes(text: str) -> int:
    """Changes between lower case, upper case and digits along ``text`` (separators ignored)."""
    kinds = ["d" if c.isdigit() else "u" if c.isupper() else "l" for c in text if c.isalnum()]
    return sum(1 for a, b in zip(kinds, kinds[1:], strict=False) if a != b)


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _random_looking(token: str) -> bool:
    """A generated token rather than a word, a path or a model name: long, and its letters and digits interleave."""
    if len(token) < 12:
        return False
    return _classes(token) >= 3 or (len(token) >= 24 and _entropy(token) >= 4.0 and any(c.isdigit() for c in token))


def credential_shape(value: str) -> str | None:
    """What credential ``value`` looks like (``"a bearer token"``), or ``None``."""
    for what, pattern in _SHAPES:
        match = pattern.search(value)
        if match and ("tail" not in pattern.groupindex or _random_looking(match.group("tail"))):
            return what
    for match in _ASSIGNED.finditer(value):
        secret = match.group("value")
        # After password=/secret= any value is one; elsewhere (and after ':', as prose has it) only a random-looking one.
        assigned = match.group("sep") == "=" and _PASSWORD_NAME.match(match.group(1)) is not None and len(secret) >= 6
        if not _PLACEHOLDER.match(secret) and (assigned or _random_looking(secret)):
            return f"a secret assigned to {match.group(1)!r}"
    return None


def credential_problems(data: Any, where: str = "") -> list[str]:
    """One ``field.path: ...`` line per credential-shaped string inside ``data`` (any depth); values are not echoed."""
    problems: list[str] = []
    if isinstance(data, str):
        what = credential_shape(data)
        if what:
            problems.append(f"{where or 'config'}: looks like a credential ({what}); {HOW_TO_PASS}")
    elif isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str):  # a mapping's key is stored too (a header name holding a token)
                problems += credential_problems(key, f"{path} (the key)")
            problems += credential_problems(value, path)
    elif isinstance(data, (list, tuple)):
        for index, value in enumerate(data):
            problems += credential_problems(value, f"{where}[{index}]")
    return problems
