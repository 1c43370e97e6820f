"""scripts/minimal_began.py: one step of the independent BEGAN equals one step of jaxgan's experiments/began_mnist.py
(same initial state, real batch and z in; parameters, batch statistics, optimizer states, k and losses out)."""

from scripts.minimal_began import one_step_difference

COMPARED = ("g_params", "d_params", "g_batch_stats", "g_opt_state", "d_opt_state", "k", "d_loss", "g_loss", "m_global")


def test_one_step_matches_jaxgan():
    d = one_step_difference(seed=0, batch_size=8)
    # the runner's inputs are reproduced exactly from the state's key
    assert d["real_diff"] == 0.0 and d["z_diff"] == 0.0, d
    # a real step was taken (Adam's first step moves every parameter with a gradient by the learning rate, 1e-4) ...
    assert d["g_step"] > 5e-5 and d["d_step"] > 5e-5 and d["k_1"] > 0.0, d
    # ... and both implementations took the same one, to float32 rounding. The optimizer states hold the gradients
    # ((1 − β1)·g, (1 − β2)·g²): their relative difference is the sensitive check (Adam's first step is nearly
    # invariant to the gradient's scale).
    for name in COMPARED:
        assert d[name] <= 1e-6 and d[f"{name}_rel"] <= 1e-5, (name, d)
