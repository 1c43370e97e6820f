"""The README's Quickstart is what CI and users run."""

import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def quickstart_lines() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```(?:\w+)?\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_is_the_demo_the_tests_and_the_image_demo():
    demo, tests, images = quickstart_lines()
    assert (demo, tests, images) == ("bash scripts/demo.sh", "bash scripts/test.sh", "bash scripts/demo_images.sh")
    for script in ("demo.sh", "test.sh", "demo_images.sh"):
        assert (ROOT / "scripts" / script).exists(), script


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
    # D starts near chance: the minimax losses near their values at D = 1/2, log 4 for D and −log 2 for G.
    assert abs(float(namespace["metrics"]["d_loss"]) - np.log(4.0)) < 0.05
    assert abs(float(namespace["metrics"]["g_loss"]) + np.log(2.0)) < 0.05
    # Adam's first step moves every parameter with a nonzero gradient by the learning rate (1e-3), none further.
    import jax

    start = namespace["game"].init(jax.random.key(0), jax.numpy.zeros((512, 2)))
    moves = np.concatenate([np.abs(np.asarray(a - b)).ravel() for a, b in zip(
        jax.tree.leaves(namespace["state"].g_params), jax.tree.leaves(start.g_params))])  # fmt: skip
    assert np.max(moves) == pytest.approx(1e-3, rel=1e-4) and np.median(moves) > 0.5e-3


def test_readme_layout_lists_every_experiment():
    readme = (ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    listed = set(re.findall(r"[\w]+\.py", layout.split("experiments/", 1)[1].split("scripts/", 1)[0]))
    on_disk = {path.name for path in (ROOT / "experiments").glob("*.py") if path.name != "__init__.py"}
    assert listed == on_disk
