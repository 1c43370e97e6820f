"""Names chosen from a fixed set: the one did-you-mean helper, one-line error text, and the registries of data sets,
models and evaluations."""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any, Callable, Iterable, NamedTuple


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


def check_count(name: str, value: object, minimum: int) -> None:
    """Raises ValueError("NAME must be an integer >= MINIMUM, got VALUE") unless `value` is such an integer.

    For counts given to the Python API (steps, iterations), which would otherwise fail deep inside a trace or, as
    floats, round silently; bools are refused too.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def one_line(message: object, limit: int = 0) -> str:
    """`message` as one line: runs of whitespace (newlines included) become one space; cut to `limit` characters
    (ending in "...") when `limit` > 0. For errors that must fit one line of a terminal or a log."""
    text = " ".join(str(message).split())
    return text if limit <= 0 or len(text) <= limit else text[: limit - 3] + "..."


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first non-empty line of `error`'s message (at most `limit` characters), else its type's name.

    For one-line errors that quote an exception raised by a library (TFDS, Orbax), whose messages run over many lines
    and whose first line says what went wrong.
    """
    text = str(error).strip()
    return one_line(text.splitlines()[0], limit) if text else type(error).__name__


class Entry(NamedTuple):
    defaults: dict[str, Any]  # this entry's keys of its config section, with their default values
    build: Callable[..., Any]


class Registry:
    """Named, pluggable parts (data sets, models, evaluations): one `register` line each.

    Every entry brings its own default settings; the config section of a registry (e.g. `config.data`) holds the
    union of all entries' settings, so that any of them can be chosen and tuned from the command line, and
    `name` picks the entry (the evaluations' section is `config.eval`, and the tuple `config.evaluations` picks
    them). Keys shared by two entries must share their default.
    """

    # What `--config.KEY=VALUE` can override (ml_collections refuses None and other types there).
    SETTING_TYPES = (bool, int, float, str, tuple)

    def __init__(self, kind: str, reserved: tuple[str, ...] = ()):
        self.kind = kind
        # Keys of the config section that are not an entry's settings: the entry's `name`, and what the runner adds.
        self.reserved = ("name", *reserved)
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, defaults: dict[str, Any], build: Callable[..., Any]) -> None:
        """Adds `name`, with the default `defaults` of its settings (the keys it reads from its config section) and
        `build`. Raises ValueError (one line) for a name registered twice, a setting that is a key of the section
        itself (`name`, ...), a setting of a type the command line cannot override or a float that is not finite, or
        a key another entry has with another default."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        for key, value in defaults.items():
            if key in self.reserved:
                raise ValueError(
                    f"{self.kind} {name!r}: default {key}={value!r} would replace the section's own {key!r}; give the "
                    "setting another name"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{self.kind} {name!r}: default {key}={value!r} is not a finite number")
            if not isinstance(value, self.SETTING_TYPES):
                raise ValueError(
                    f"{self.kind} {name!r}: default {key}={value!r} is a {type(value).__name__}; a setting must be a "
                    "bool, int, float, str or tuple (for 'unset' use '' or 0), so that --config can override it"
                )
        for key, value in defaults.items():
            for other_name, other in self._entries.items():
                if key in other.defaults and other.defaults[key] != value:
                    raise ValueError(
                        f"{self.kind} {name!r}: default {key}={value!r} differs from the default of {other_name!r}, "
                        f"{other.defaults[key]!r}; give the setting another name"
                    )
        self._entries[name] = Entry(dict(defaults), build)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._entries))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names)

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            raise ValueError(unknown_name(self.kind, name, self.names))
        return self._entries[name]

    def unread_settings(self, chosen: str | Iterable[str], section: Any) -> list[str]:
        """The keys of a config section that differ from their defaults but belong only to other entries than the
        chosen one(s) (`chosen`: a name, or the names of the evaluations listed): settings that would be silently
        ignored."""
        own = {k for name in ([chosen] if isinstance(chosen, str) else chosen) for k in self[name].defaults}
        return [k for k, v in self.section_defaults().items() if k not in own and k in section and section[k] != v]

    def owners(self, key: str) -> list[str]:
        """The entries whose settings include `key`, for an error that says whose setting it is."""
        return [name for name in self.names if key in self[name].defaults]

    def section_defaults(self) -> dict[str, Any]:
        """The union of every entry's defaults: the keys of the config section beside `name`."""
        out: dict[str, Any] = {}
        for entry in self._entries.values():
            out.update(entry.defaults)
        return out
