"""Replace a marked block in BUILD_NOTES.md / README.md with fresh results: `<!-- NAME:start -->…<!-- NAME:end -->`."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def replace_block(path: pathlib.Path, name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def load_experiment(name: str):
    """`get_config()` of experiments/NAME.py, loaded by path (experiments/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def publish(name: str, table: str, results, workdir: pathlib.Path, write_notes: bool) -> None:
    """Prints `table`, keeps the raw `results` beside the runs, and with `write_notes` puts the table into
    BUILD_NOTES.md and README.md (block NAME)."""
    import json

    print(table)
    (pathlib.Path(workdir) / "summary.json").write_text(json.dumps(results, indent=1, default=str))
    if write_notes:
        for path in (ROOT / "BUILD_NOTES.md", ROOT / "README.md"):
            replace_block(path, name, table)
