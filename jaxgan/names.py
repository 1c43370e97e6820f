"""Names chosen from a fixed set (losses, penalties, rules, data sets, config keys): the one did-you-mean helper."""

from __future__ import annotations

import difflib
from typing import Iterable


def closest(name: object, allowed: Iterable[str], cutoff: float = 0.5) -> str | None:
    """The allowed name most similar to `name` (case-insensitive), or None when none reaches `cutoff`.

    Similarity is difflib's ratio, 2·matches / (len(a) + len(b)). The cutoff is 0.5 rather than difflib's 0.6 so
    that two-letter typos ('r3' for 'r1') still find a match; ties go to the first name in `allowed`.
    """
    if not isinstance(name, str):
        return None
    allowed = list(allowed)
    scores = [difflib.SequenceMatcher(None, name.lower(), a.lower()).ratio() for a in allowed]
    if not scores or max(scores) < cutoff:
        return None
    return allowed[scores.index(max(scores))]


def did_you_mean(name: object, allowed: Iterable[str], prefix: str = "") -> str:
    """' (did you mean 'X'?)' for the closest allowed name (written as PREFIX + X, e.g. '--config.'), else ''."""
    match = closest(name, allowed)
    if match is None:
        return ""
    return f" (did you mean {prefix}{match}?)" if prefix else f" (did you mean {match!r}?)"


def unknown_name(kind: str, name: object, allowed: Iterable[str]) -> str:
    """"unknown KIND 'name'; allowed: a, b, c (did you mean 'b'?)": the one-line error of a bad name."""
    allowed = list(allowed)
    return f"unknown {kind} {name!r}; allowed: {', '.join(allowed)}{did_you_mean(name, allowed)}"
