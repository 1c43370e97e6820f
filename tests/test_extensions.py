"""A user's own registry entries, from a module outside the package: `default_config(imports=...)`, the runner,
the tools that read a saved run, and the one-line errors on the way. Each case runs in its own process, so the
registries of the test process stay as the package makes them."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

EXTENSION = '''
import flax.linen as nn
from jaxgan.models import GENERATORS, UnsupportedImageSize


class TinyGenerator(nn.Module):
    hidden: int
    data_dim: int

    @nn.compact
    def __call__(self, z):
        return nn.Dense(self.data_dim)(nn.relu(nn.Dense(self.hidden)(z)))


GENERATORS.register("tiny_g", dict(tiny_hidden=16), lambda s, shape, num_classes, config: TinyGenerator(s.tiny_hidden, shape[-1]))
GENERATORS.register("wide_g", {}, lambda s, shape, num_classes, config: TinyGenerator(16, shape[-1] + 1))  # a wrong one


class PickyGenerator(TinyGenerator):
    def __call__(self, z):  # refuses in its own words, by the type the runner knows
        raise UnsupportedImageSize("PickyGenerator: makes 16x16 images only")


GENERATORS.register("picky_g", {}, lambda s, shape, num_classes, config: PickyGenerator(16, shape[-1]))
'''

CONFIG = '''
from jaxgan.config import default_config


def get_config():
    config = default_config(imports=("my_extension",))
    config.generator.name = "tiny_g"
    config.update_rule, config.batch_size, config.num_steps = "simultaneous", 32, 20
    config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 10
    config.eval_num_samples = 200
    return config
'''


def run(args, tmp_path, pythonpath=True):
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "ext")) if pythonpath else {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env)


def test_a_users_own_model_trains_is_saved_and_read_back_by_the_tools(tmp_path):
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "my_extension.py").write_text(EXTENSION)
    (tmp_path / "my_config.py").write_text(CONFIG)
    workdir = tmp_path / "run"
    main = ["-m", "jaxgan.main", f"--config={tmp_path / 'my_config.py'}", f"--workdir={workdir}"]
    done = run([*main, "--config.generator.tiny_hidden=8"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["imports"] == ["my_extension"] and saved["generator"]["tiny_hidden"] == 8
    # The checkpoint holds TinyGenerator's parameters, 8 hidden units, as a tool reading the run restores them.
    read = "import json, sys, jax; from scripts.notes import load_run; state = load_run(sys.argv[1])[3]; " \
        "print(json.dumps(jax.tree.map(lambda a: list(a.shape), state.g_params)))"  # fmt: skip
    shapes = run(["-c", read, str(workdir)], tmp_path)
    assert shapes.returncode == 0, shapes.stderr[-2000:]
    g_shapes = json.loads(shapes.stdout.strip().splitlines()[-1])
    # (flax names the layers in the order they are built: the outer Dense(data_dim) first)
    assert g_shapes == {"Dense_1": {"kernel": [saved["z_dim"], 8], "bias": [8]}, "Dense_0": {"kernel": [8, 2], "bias": [2]}}
    # A tool that reads the run imports the module the run named.
    plot = run(["scripts/plot_runs.py", f"--runs=mine={workdir}", f"--out={tmp_path / 'fig.png'}"], tmp_path)
    assert plot.returncode == 0, plot.stderr[-2000:]
    assert (tmp_path / "fig.png").stat().st_size > 0
    # Without the module on the path: one line, naming the cure.
    lost = run(["scripts/plot_runs.py", f"--runs=mine={workdir}", f"--out={tmp_path / 'fig2.png'}"], tmp_path, pythonpath=False)
    lines = lost.stderr.strip().splitlines()
    assert lost.returncode == 2 and len(lines) == 1, lost.stderr[-2000:]
    assert "--config.imports: cannot import 'my_extension' (ModuleNotFoundError" in lines[0] and "PYTHONPATH" in lines[0]
    # The entry's own settings are refused on the built-in models, and a typo gets a did-you-mean.
    typo = run([*main, "--config.generator.tiny_hiden=8"], tmp_path)
    assert typo.returncode == 2 and "did you mean --config.generator.tiny_hidden?" in typo.stderr
    # A G whose samples are not examples of the data is refused before training, naming the flag.
    wide = run([*main[:-1], f"--workdir={tmp_path / 'wide'}", "--config.generator.name=wide_g"], tmp_path)
    assert wide.returncode == 2 and wide.stderr.strip().splitlines() == [
        "error: --config.generator.name='wide_g': makes examples of shape (3,), but data set 'ring' has examples of shape (2,)"
    ], wide.stderr[-2000:]
    # A model that refuses the data's size is named with the flags that chose the data and the models.
    picky = run([*main[:-1], f"--workdir={tmp_path / 'picky'}", "--config.generator.name=picky_g"], tmp_path)
    assert picky.returncode == 2 and picky.stderr.strip().splitlines() == [
        "error: --config.data.name='ring' with --config.generator.name='picky_g', --config.discriminator.name='mlp': "
        "PickyGenerator: makes 16x16 images only"
    ], picky.stderr[-2000:]


LATE = '''
import flax.linen as nn
from jaxgan.config import default_config, validate
from jaxgan.data import DATASETS

import my_extension  # registered after jaxgan.config was imported
config = default_config()
config.generator.name = "tiny_g"
validate(config)
config.generator.name = "tiny"
try:
    validate(config)
except ValueError as error:
    print(error)
config.generator.name = "tiny_g"
config.imports = ("not_imported_module",)
try:
    validate(config)
except ValueError as error:
    print(error)
'''


def test_entries_registered_after_the_config_module_count_and_late_imports_are_refused(tmp_path):
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "my_extension.py").write_text(EXTENSION)
    out = run(["-c", LATE], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("--config.generator.name='tiny': unknown value; allowed: ") and "tiny_g" in lines[0]
    assert lines[0].endswith("(did you mean 'tiny_g'?)")
    assert lines[1] == ("--config.imports=('not_imported_module',): 'not_imported_module' was not imported when the "
                        "config was built; a config file names it as default_config(imports=('not_imported_module',))")


NUMPY_EVALUATION = '''
import numpy as np
from jaxgan.game import generate
from jaxgan.metrics.evaluations import EVALUATIONS, Evaluation, eval_noise


def build(config, data):
    def evaluate(game, state):
        z = eval_noise(game, state, 16)
        samples, _ = generate(game, state.g_params, state.g_model_state, z, train=False)
        return {"mean": np.asarray(samples).mean()}, samples  # NumPy on a traced array

    return Evaluation(evaluate, lambda game, state, m: {}, lambda m: "", lambda *a: None)


EVALUATIONS.register("numpy_mean", {}, build)
'''


FAR_EVALUATION = '''
import jax.numpy as jnp
from jaxgan.game import generate
from jaxgan.metrics.evaluations import EVALUATIONS, Evaluation, eval_generator_key, eval_noise


def build(config, data):
    radius = config.eval.far_radius  # its own setting, in config.eval

    def evaluate(game, state):
        z = eval_noise(game, state, config.eval_num_samples)
        samples, _ = generate(game, state.g_params, state.g_model_state, z, train=False, key=eval_generator_key(state))
        return {"far_fraction": jnp.mean(jnp.linalg.norm(samples, axis=-1) > radius)}, samples

    summarize = lambda game, state, m: {"far_fraction": float(m["far_fraction"])}
    return Evaluation(evaluate, summarize, lambda m: f"far {float(m['far_fraction']):.3f}", lambda *a: None)


EVALUATIONS.register("far_fraction", {"far_radius": 3.0}, build)
'''


def test_a_users_own_evaluation_brings_its_setting_into_config_eval(tmp_path):
    """A metric is one module plus one register line: its default setting joins `config.eval`, the command line
    overrides it, config.json keeps it, and eval.json holds the metric, here recomputed from the saved samples (the
    first evaluation's, on the same evaluation noise)."""
    import numpy as np

    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "far_evaluation.py").write_text(FAR_EVALUATION)
    (tmp_path / "cfg.py").write_text(CONFIG.replace('imports=("my_extension",)', 'imports=("far_evaluation",)').replace(
        '    config.generator.name = "tiny_g"\n', '    config.evaluations = ("mixture", "far_fraction")\n'))
    command = ["-m", "jaxgan.main", f"--config={tmp_path / 'cfg.py'}", f"--workdir={tmp_path / 'run'}"]
    out = run([*command, "--config.eval.far_radius=0.5"], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["eval"] == {"far_radius": 0.5, "inception_weights": "", "truncation": 0.0}
    samples = np.load(tmp_path / "run" / "samples" / "step_00000020.npy")
    expected = float(np.mean(np.linalg.norm(samples, axis=-1) > 0.5))
    assert 0.0 < expected < 1.0  # the radius splits the samples, so the setting is what decides the value
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["far_fraction"] == pytest.approx(expected, abs=1e-6)
    # the setting is refused where no listed evaluation reads it
    other = ["-m", "jaxgan.main", f"--config={tmp_path / 'cfg.py'}", f"--workdir={tmp_path / 'other'}"]
    out = run([*other, "--config.evaluations=('mixture',)", "--config.eval.far_radius=0.5"], tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().endswith("--config.eval.far_radius=0.5: no evaluation in --config.evaluations reads it "
                                       "(it is far_fraction's setting)"), out.stderr[-2000:]


def test_an_evaluation_that_does_not_trace_is_refused_before_training(tmp_path):
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "numpy_evaluation.py").write_text(NUMPY_EVALUATION)
    (tmp_path / "cfg.py").write_text(
        "from jaxgan.config import default_config\n\n\ndef get_config():\n"
        "    config = default_config(imports=('numpy_evaluation',))\n"
        "    config.evaluations = ('numpy_mean',)\n    return config\n"
    )
    out = run(["-m", "jaxgan.main", f"--config={tmp_path / 'cfg.py'}", f"--workdir={tmp_path / 'run'}"], tmp_path)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-2000:]
    assert lines[0].startswith("error: --config.evaluations=['numpy_mean']: an evaluation's evaluate(game, state) "
                               "does not trace under jax.jit (TracerArrayConversionError: ")  # fmt: skip
    assert "step" not in out.stdout  # not a step trained
    assert not list((tmp_path / "run" / "checkpoints").glob("[0-9]*"))


def test_an_extension_that_raises_on_import_is_not_blamed_on_the_path(tmp_path):
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "broken_extension.py").write_text("import a_package_that_is_not_installed\n")
    (tmp_path / "ext" / "refused_extension.py").write_text(
        "from jaxgan.models import GENERATORS\nGENERATORS.register('none_g', {'width': None}, lambda s: None)\n"
    )
    script = (
        "from jaxgan.config import ConfigError, default_config\n"
        "for imports in (('broken_extension',), ('refused_extension',), 'my_extension', ('missing_extension',)):\n"
        "    try:\n        default_config(imports=imports)\n"
        "    except ConfigError as error:\n        print(error)\n"
    )
    out = run(["-c", script], tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    broken, refused, string, missing = out.stdout.strip().splitlines()
    assert broken == ("--config.imports: cannot import 'broken_extension' (ModuleNotFoundError: No module named "
                      "'a_package_that_is_not_installed'); it raised while being imported")
    assert refused.startswith("--config.imports: cannot import 'refused_extension' (ValueError: generator 'none_g': "
                              "default width=None is a NoneType") and refused.endswith("; it raised while being imported")
    assert string == "default_config(imports='my_extension'): a tuple of module names, e.g. ('my_extension',)"
    assert missing == ("--config.imports: cannot import 'missing_extension' (ModuleNotFoundError: No module named "
                       "'missing_extension'); its folder must be on PYTHONPATH")
