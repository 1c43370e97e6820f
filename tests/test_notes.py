"""scripts/notes.py: where reproduction scripts put their figures."""

import pathlib

from scripts.notes import ROOT, figure_path


def test_figure_goes_to_docs_only_when_writing_notes(tmp_path):
    assert figure_path(None, "table_grid", tmp_path, write_notes=True) == ROOT / "docs" / "figures" / "table_grid.png"
    # A pilot run without --write_notes draws beside its runs and leaves the published figure alone.
    assert figure_path(None, "table_grid", tmp_path, write_notes=False) == tmp_path / "table_grid.png"
    assert figure_path(None, "infogan", "runs/x", write_notes=False) == pathlib.Path("runs/x/infogan.png")


def test_an_explicit_figure_path_wins(tmp_path):
    for write_notes in (True, False):
        assert figure_path(str(tmp_path / "f.png"), "table_grid", "runs/x", write_notes) == tmp_path / "f.png"


def test_mixture_draws_repeat_the_runs_evaluation_and_pool_the_samples(tmp_path):
    import numpy as np
    import pytest

    from jaxgan.config import ConfigError
    from jaxgan.train import train_and_evaluate
    from scripts.notes import load_run, mixture_draws
    from test_train import tiny_config

    # Wide modes, so that a 60-step G already has high-quality samples for the counts to differ in.
    result = train_and_evaluate(tiny_config(**{"data.std": 0.5}), str(tmp_path / "run"), echo=lambda _: None)
    config, task, game, state, step = load_run(tmp_path / "run", "mixture")
    assert step == config.num_steps
    per_draw, pooled = mixture_draws(config, task, game, state, 3)
    assert per_draw[0]["modes"] == result["modes"]  # draw 0 is the run's own evaluation noise
    assert per_draw[0]["high_quality_fraction"] == pytest.approx(result["high_quality_fraction"], abs=1e-6)
    assert per_draw[0]["reverse_kl"] == pytest.approx(result["reverse_kl"], abs=1e-5)
    assert sum(per_draw[0]["mode_counts"]) > 0
    assert per_draw[1]["mode_counts"] != per_draw[0]["mode_counts"]  # the other draws are other noise
    counts = np.sum([d["mode_counts"] for d in per_draw], axis=0)
    np.testing.assert_array_equal(pooled["mode_counts"], counts)
    assert pooled["high_quality_fraction"] == pytest.approx(np.mean([d["high_quality_fraction"] for d in per_draw]))
    p = counts[counts > 0] / counts.sum()
    assert pooled["reverse_kl"] == pytest.approx(np.sum(p * np.log(p * len(counts))), abs=1e-5)
    with pytest.raises(ConfigError, match=r"needs a run with the 'images' evaluation, not \['mixture'\]"):
        load_run(tmp_path / "run", "images")
    with pytest.raises(ConfigError, match=r"^--step=7: .* has no checkpoint of that step \(it has \[20, 40, 60\]\)"):
        load_run(tmp_path / "run", "mixture", step=7)


def test_mixture_draws_of_the_ema_of_g_repeat_the_runs_ema_values(tmp_path):
    import pytest

    from jaxgan.config import ConfigError
    from jaxgan.train import train_and_evaluate
    from scripts.notes import load_run, mixture_draws
    from test_train import tiny_config

    result = train_and_evaluate(tiny_config(**{"data.std": 0.5, "ema_decay": 0.9}), str(tmp_path / "ema"),
                                echo=lambda _: None)  # fmt: skip
    config, task, game, state, _ = load_run(tmp_path / "ema", "mixture")
    per_draw, pooled = mixture_draws(config, task, game, state, 2, generator="ema")
    assert per_draw[0]["modes"] == result["ema_modes"]
    assert per_draw[0]["high_quality_fraction"] == pytest.approx(result["ema_high_quality_fraction"], abs=1e-6)
    assert per_draw[0]["reverse_kl"] == pytest.approx(result["ema_reverse_kl"], abs=1e-5)
    # This G has no batch norm, so its average samples as G would with the averaged weights.
    import jax

    moved = state.replace(g_params_ema=jax.tree.map(lambda p: p * 1.5, state.g_params))
    as_ema = mixture_draws(config, task, game, moved, 2, generator="ema")
    assert as_ema == mixture_draws(config, task, game, moved.replace(g_params=moved.g_params_ema), 2)
    assert as_ema != mixture_draws(config, task, game, moved, 2)
    assert sum(pooled["mode_counts"]) == sum(sum(d["mode_counts"]) for d in per_draw)
    train_and_evaluate(tiny_config(num_steps=20), str(tmp_path / "plain"), echo=lambda _: None)
    with pytest.raises(ConfigError, match=r"^--generator=ema: the run keeps no moving average of G"):
        mixture_draws(*load_run(tmp_path / "plain", "mixture")[:4], 2, generator="ema")
