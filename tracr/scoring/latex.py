"""LaTeX comparison without a browser: the documented fallback for olmOCR-Bench math tests.

olmOCR-Bench renders both equations with KaTeX in Chromium and matches the rendered
symbols by position. That needs Playwright and a browser at scoring time; this module
instead compares *normalised token sequences*, which accepts the common harmless
differences (spacing commands, ``\\left``/``\\right``, ``\\dfrac`` vs ``\\frac``,
redundant braces around one token, ``\\operatorname{sin}`` vs ``\\sin``) and rejects
real ones. It is stricter than KaTeX in places (``x^2`` vs ``x^{2}`` agree, but
``\\mathrm{d}x`` vs ``dx`` do not), so math pass rates are *not* at parity with olmOCR.
"""

from __future__ import annotations

import re

__all__ = ["latex_tokens", "latex_equivalent"]

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[^\s]")
_DROP = frozenset(
    r"\left \right \bigl \bigr \Bigl \Bigr \biggl \biggr \big \Big \bigg \Bigg \displaystyle \textstyle "
    r"\scriptstyle \, \; \: \! \quad \qquad \  \limits \nolimits \middle".split()
    + ["\\ "]
)
_ALIAS = {
    r"\dfrac": r"\frac",
    r"\tfrac": r"\frac",
    r"\le": r"\leq",
    r"\ge": r"\geq",
    r"\ne": r"\neq",
    r"\to": r"\rightarrow",
    r"\lbrace": r"\{",
    r"\rbrace": r"\}",
    r"\vert": "|",
    r"\lvert": "|",
    r"\rvert": "|",
    r"\cdotp": r"\cdot",
}
_INVISIBLE_DELIMITER = re.compile(r"\\(?:left|right)\.")
_OPERATOR = re.compile(r"\\(?:operatorname|mathrm|text|textrm)\{(sin|cos|tan|log|ln|exp|lim|max|min|det)\}")


def latex_tokens(latex: str) -> list[str]:
    """Tokens of ``latex`` after dropping spacing/sizing commands and unwrapping ``{t}``."""
    latex = _INVISIBLE_DELIMITER.sub("", _OPERATOR.sub(lambda m: "\\" + m.group(1), latex))
    raw = [_ALIAS.get(t, t) for t in _TOKEN.findall(latex) if t not in _DROP]
    changed = True
    while changed:
        changed = False
        out: list[str] = []
        i = 0
        while i < len(raw):
            if raw[i] == "{" and i + 2 < len(raw) and raw[i + 2] == "}" and raw[i + 1] not in "{}":
                out.append(raw[i + 1])
                i += 3
                changed = True
            elif raw[i] == "{" and i + 1 < len(raw) and raw[i + 1] == "}":
                i += 2
                changed = True
            else:
                out.append(raw[i])
                i += 1
        raw = out
    return raw


def latex_equivalent(reference: str, hypothesis: str) -> bool:
    """Whether two LaTeX strings have the same normalised token sequence."""
    return latex_tokens(reference) == latex_tokens(hypothesis)
