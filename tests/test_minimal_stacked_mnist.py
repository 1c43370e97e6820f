"""scripts/minimal_stacked_mnist.py: one step of the independent plain-JAX unrolled DCGAN on Stacked MNIST equals
one step of jaxgan's experiments/stacked_mnist.py (the same state, real batch and z in; G's gradient through the
K unrolled D steps, parameters and batch statistics out)."""

import pytest

from scripts.minimal_stacked_mnist import one_step_difference


def test_one_step_matches_jaxgan():
    # From a state 20 steps into jaxgan's training: at step 0 Adam's first update is lr·g/√(g² + eps_root), whose
    # derivative lives on the near-zero entries of D's gradient, and float32 rounding alone moves the unrolled
    # G gradient by about 0.4% there (BUILD_NOTES.md, "Stacked MNIST against an independent implementation").
    d = one_step_difference(k=2, after=20, batch_size=16, float64=False)
    assert d["d_loss"][0] == pytest.approx(d["d_loss"][1], rel=1e-5), d
    assert d["g_loss"][0] == pytest.approx(d["g_loss"][1], rel=1e-5), d
    assert d["G gradient"] < 1e-4, d
    for name in ("G params", "D params", "G BN stats", "D BN stats"):
        assert d[name] < 1e-6, (name, d)
