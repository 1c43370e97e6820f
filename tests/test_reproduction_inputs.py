"""The reproduction scripts (scripts.notes.run_script) check their inputs before training: a bad one is one line on stderr naming the flag and
what is allowed (exit 2), and nothing is trained or written."""

import pathlib
import subprocess
import sys

import pytest
from forked_cli import run_commands

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = ["--seeds=1", "--config.num_steps=20", "--workdir={w}"]

# name: (script, arguments, start of the single stderr line, what else it must contain)
CASES = {
    "mixture_unknown_method": (
        "reproduce_mixture_tables", ["--methods=k0,bogus", *TINY],
        "error: flag --methods=['k0', 'bogus']: unknown method 'bogus'; allowed: k0, k1, k5, k10, consensus, extragradient, r1", "",
    ),
    "mixture_method_typo": ("reproduce_mixture_tables", ["--methods=r3", *TINY], "error: flag --methods=['r3']: unknown method 'r3'", "(did you mean 'r1'?)"),
    "mixture_not_a_mixture": (
        "reproduce_mixture_tables", ["--config=experiments/dirac.py", *TINY],
        "error: --config=experiments/dirac.py: the table needs a ring or grid mixture with the 'mixture' evaluation", "not data 'dirac'",
    ),
    "mixture_zero_seeds": ("reproduce_mixture_tables", ["--seeds=0", "--workdir={w}"], "error: flag --seeds=0: 0 is not a positive integer", ""),
    "image_unknown_experiment": (
        "reproduce_image_table", ["--experiments=dcgan_mnis", "--finished_only", "--workdir={w}"],
        "error: flag --experiments=['dcgan_mnis']: unknown image experiment 'dcgan_mnis'; allowed: acgan_mnist, ",
        "(did you mean 'dcgan_mnist'?)",
    ),
    "image_not_an_image_experiment": (
        "reproduce_image_table", ["--experiments=ring8", "--finished_only", "--workdir={w}"],
        "error: flag --experiments=['ring8']: unknown image experiment 'ring8'; allowed: ", "dcgan_mnist",
    ),
    "image_aggregate_beyond_seeds": (  # a recorded aggregate of seeds 0-2 cannot give the row of seed 0 alone
        "reproduce_image_table", ["--experiments=dcgan_mnist", "--seeds=1", "--finished_only", "--workdir={w}"], "error: ",
        "dcgan_mnist/aggregate.json pools seeds [0, 1, 2], which cannot be told apart, beyond --seeds=1: give --seeds=3",
    ),
    "stacked_k_not_an_integer": (
        "reproduce_stacked_mnist", ["--ks=0,x", *TINY], "error: flag --ks=['0', 'x']: must be non-negative integers", "",
    ),
    "eps_root_no_run": ("measure_eps_root", ["--workdir={w}"], "error: --workdir={w}: no config.json", ""),
    "eps_root_other_config": (
        "measure_eps_root", ["--workdir={w}"],
        "error: --workdir={w}: a run of another config than --config (d_optimizer.learning_rate: 0.001 → 0.0001", "",
    ),
    "config_file_missing": ("reproduce_stacked_mnist", ["--config=experiments/nope.py", *TINY], "error: --config=experiments/nope.py: no such file", ""),
    "config_file_broken": ("reproduce_mixture_tables", ["--config={bad}", *TINY], "error: --config=", ": could not load it (SyntaxError"),
    "config_key_typo": (
        "reproduce_stacked_mnist", ["--config.num_step=20", "--seeds=1", "--workdir={w}"],
        "error: --config.num_step: unknown config key", "(did you mean --config.num_steps?)",
    ),
    "unknown_flag": ("reproduce_stacked_mnist", ["--seed=1", *TINY], "error: ", "Unknown command line flag 'seed'"),
    "eps_root_values_not_numbers": ("measure_eps_root", ["--values=0,x", "--workdir={w}"], "error: flag --values=['0', 'x']: must be numbers >= 0", ""),
}

# write_figure's title names the seed it is given (the config's), not always seed 0
TITLE = """
import sys
import numpy as np
from scripts import reproduce_stacked_mnist as script
script.flags.FLAGS(["x", "--workdir=" + sys.argv[1]])
script.plotting.load_snapshots = lambda path: {20: np.zeros((4, 8, 8, 3))}
script.plotting.plot_image_rows = lambda path, labels, rows, title: print(title)
script.write_figure({0: []}, 7)
"""

# the table of a config file outside experiments/ (a user's own) names it and lists the overrides made on top of it
OWN_TABLE = """
import sys
from scripts import reproduce_stacked_mnist as script
argv = ["x", "--config=" + sys.argv[1], "--config.loss=nonsaturating"]
sys.argv = argv
script.flags.FLAGS(argv)
print(script.summary_table({0: [{"modes": 3, "kl": 6.0}]}, script._CONFIG.value).splitlines()[0])
# runs that keep an EMA of G: its own row under each K's
ema_runs = [{"modes": 3, "kl": 6.0, "ema_modes": 10, "ema_kl": 5.0}, {"modes": 5, "kl": 5.0, "ema_modes": 20, "ema_kl": 4.0}]
table = script.summary_table({10: ema_runs}, script._CONFIG.value)
print("\\n".join(line for line in table.splitlines() if line.startswith("| jaxgan")))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    from jaxgan.config import load_config_file
    from jaxgan.train import write_json

    tmp = tmp_path_factory.mktemp("reproduction_inputs")
    (tmp / "bad.py").write_text("def get_config(:\n")
    (tmp / "eps_root_other_config").mkdir()  # a run of ring8_lr1e3.py, measured under the default ring8.py
    write_json(tmp / "eps_root_other_config" / "config.json", load_config_file(ROOT / "experiments/ring8_lr1e3.py").to_dict())
    commands = {
        name: [f"scripts/{script}.py", *(a.format(w=tmp / name, bad=tmp / "bad.py") for a in args)]
        for name, (script, args, _, _) in CASES.items()
    }
    (tmp / "my_stacked.py").write_text(
        "from jaxgan.config import load_config_file\n\n\ndef get_config():\n"
        f"    config = load_config_file({str(ROOT / 'experiments/stacked_mnist_paper.py')!r})\n"
        "    config.batch_size = 64\n    return config\n"
    )
    commands["own_table"] = ["-c", OWN_TABLE, str(tmp / "my_stacked.py")]
    commands["title"] = ["-c", TITLE, str(tmp / "title")]
    return tmp, run_commands(commands, cwd=str(ROOT))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_before_any_training(outcomes, name):
    tmp, results = outcomes
    code, out, err = results[name]
    _, _, start, contains = CASES[name]
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith(start.format(w=tmp / name)), err
    assert contains in lines[0]
    assert "Traceback" not in err + out
    if name == "eps_root_other_config":
        assert [p.name for p in (tmp / name).iterdir()] == ["config.json"]  # no checkpoints folder made
    else:
        assert not (tmp / name).exists()  # nothing trained, nothing written


def test_stacked_mnist_figure_title_names_the_seed(outcomes):
    tmp, results = outcomes
    code, out, err = results["title"]
    assert code == 0, err
    assert out.splitlines()[0] == "Stacked MNIST, seed 7, final samples"
    assert not (tmp / "title").exists()


def test_stacked_mnist_table_of_a_users_own_config_file(outcomes):
    _, results = outcomes
    code, out, err = results["own_table"]
    assert code == 0, err
    line = out.splitlines()[0]
    assert line.startswith("Stacked MNIST (my_stacked, 5000 steps, D widths (2, 4, 8), G widths (64, 32, 16, 8),"), line
    assert line.endswith("; loss=nonsaturating); mean ± std over seeds:"), line  # its own batch size is no override
    assert out.splitlines()[1:] == [
        "| jaxgan, unrolled K=10 | 4.0 ± 1.0 | 5.50 ± 0.50 |",
        "| jaxgan, unrolled K=10, EMA of G | 15.0 ± 5.0 | 4.50 ± 0.50 |",
    ]


# measure_eps_root reads every checkpoint of a run, one by one; a run still training keeps only its newest
# keep_checkpoints, so a step can be listed and then deleted before it is read: it is skipped with a warning.
EPS_WALK = """
import pathlib, sys
from jaxgan.config import default_config
from jaxgan.train import saved_config, train_and_evaluate
from scripts import measure_eps_root as script
workdir = pathlib.Path(sys.argv[1])
config = default_config()
config.batch_size, config.z_dim, config.generator.width, config.discriminator.width = 32, 8, 16, 16
config.num_steps, config.eval_num_samples, config.steps_per_dispatch = 30, 200, 10
config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 10
train_and_evaluate(config, str(workdir), echo=lambda _: None)
listed = script.saved_steps
script.saved_steps = lambda directory: [5, *listed(directory)]  # step 5 listed, then deleted by the run
print(sorted(script.run_states(saved_config(workdir, "--workdir"), workdir)))
"""


def test_eps_root_skips_a_step_deleted_while_the_steps_are_read(tmp_path):
    done = subprocess.run([sys.executable, "-c", EPS_WALK, str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['step 10', 'step 20', 'step 30']"
    assert "checkpoint step 5 of " in done.stderr and "was deleted while its steps were read" in done.stderr
