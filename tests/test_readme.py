"""The README's Quickstart is what CI and users run."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def quickstart_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```(?:\w+)?\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_is_two_lines_demo_then_tests():
    demo, tests = quickstart_lines()
    assert demo == "bash scripts/demo.sh"
    assert tests == "bash scripts/test.sh"
    assert (ROOT / "scripts" / "demo.sh").exists() and (ROOT / "scripts" / "test.sh").exists()


def test_ci_runs_exactly_the_readme_test_line():
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert commands == [quickstart_lines()[1]]


def test_readme_library_example_runs_one_step():
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"Using the library directly:\n\n```python\n(.*?)```", readme, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert int(namespace["state"].step) == 1
    assert set(namespace["metrics"]) == {"d_loss", "g_loss"}


def test_readme_layout_lists_every_experiment():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    listed = set(re.findall(r"[\w]+\.py", layout.split("experiments/", 1)[1].split("scripts/", 1)[0]))
    on_disk = {path.name for path in (ROOT / "experiments").glob("*.py") if path.name != "__init__.py"}
    assert listed == on_disk
