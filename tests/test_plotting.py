"""jaxgan.plotting: what the figures put where (the arrays handed to the image grids)."""

import numpy as np

from jaxgan import plotting


def test_class_snapshots_show_the_final_classes_by_row_and_one_sample_per_class_over_training(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    snapshots = {s: rng.uniform(0, 1, (30, 4, 4, 1)).astype(np.float32) for s in (10, 20, 30, 40, 50, 60, 70, 80)}
    snapshots[5] = snapshots[10][:2]  # an evaluation with fewer samples than classes (eval_num_samples changed)
    labels = np.arange(30) % 3  # the evaluation noise asks for classes 0, 1, 2 in turn
    grids = []
    real_grid = plotting.image_grid
    monkeypatch.setattr(plotting, "image_grid", lambda images, columns: grids.append((images, columns)) or real_grid(images, columns))
    plotting.plot_class_snapshots(tmp_path / "s.png", snapshots, labels, count=4, per_class=10)
    assert (tmp_path / "s.png").stat().st_size > 0
    (final, final_columns), (over_training, columns) = grids
    assert final_columns == 10 and columns == 3
    np.testing.assert_array_equal(final, np.concatenate([snapshots[80][labels == k] for k in range(3)]))
    steps = [10, 30, 60, 80]  # four spread over the steps that have a sample of every class, the last included
    np.testing.assert_array_equal(over_training, np.concatenate([snapshots[s][:3] for s in steps]))
