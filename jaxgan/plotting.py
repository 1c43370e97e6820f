"""Figures: generated samples over the data, as snapshots through training."""

from __future__ import annotations

import functools
import os
import pathlib
from typing import Sequence

import numpy as np

from jaxgan.writers import atomic_path


@functools.cache
def pyplot():
    """`matplotlib.pyplot` on the Agg backend (files only; never needs a display), imported at the first figure.

    Importing pyplot is a noticeable part of importing `jaxgan.train` (measured in BUILD_NOTES.md, fifth 2026-12-06
    session): a command that fails on a bad flag, or a run that draws nothing, does not pay it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi: int = 120) -> None:
    """Lays out `fig`, writes it to `path` (creating its folder) and frees it."""
    fig.tight_layout()
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:  # the format by `path`'s suffix, as savefig would take it from the name
            fig.savefig(tmp, dpi=dpi, format=pathlib.Path(path).suffix.lstrip(".").lower() or None)
    finally:
        pyplot().close(fig)


def pick_snapshots(steps: Sequence[int], count: int) -> list[int]:
    """`count` steps spread evenly over `steps` (sorted), always including the last one."""
    steps = sorted(steps)
    if len(steps) <= count:
        return steps
    index = np.linspace(0, len(steps) - 1, count).round().astype(int)
    return [steps[i] for i in sorted(set(index))]


def scatter_samples(ax, samples, means, limit: float, title: str = "", data=None) -> None:
    """Generated samples (blue) with real data drawn over them (red), or the mode centres if no data is given."""
    ax.scatter(samples[:, 0], samples[:, 1], s=1.5, c="tab:blue", alpha=0.5, linewidths=0)
    if data is not None:
        ax.scatter(data[:, 0], data[:, 1], s=1.0, c="tab:red", alpha=0.6, linewidths=0)
    else:
        ax.scatter(means[:, 0], means[:, 1], s=25, c="tab:red", marker="x", linewidths=1.0)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_limit(means: np.ndarray) -> float:
    return float(np.abs(means).max()) * 1.5 + 0.5


def sample_step(path: str | os.PathLike) -> int:
    """The step of a samples file: N of step_N.npy (and of a conditioned run's step_N_labels.npy)."""
    return int(pathlib.Path(path).stem.split("_")[1])


def load_snapshots(samples_dir: str | os.PathLike) -> dict[int, np.ndarray]:
    """{step: samples} from DIR/samples/step_N.npy (the labels of conditioned runs, step_N_labels.npy, aside)."""
    paths = sorted(p for p in pathlib.Path(samples_dir).glob("step_*.npy") if not p.stem.endswith("_labels"))
    return {sample_step(p): np.load(p) for p in paths}


def plot_training_samples(path, snapshots: dict[int, np.ndarray], mixture, title="", count: int = 6, data=None):
    """One row: samples at `count` evaluation steps (the last is the final model) over the data."""
    if not snapshots:
        return
    steps = pick_snapshots(list(snapshots), count)
    means = np.asarray(mixture.means)
    limit = plot_limit(means)
    fig, axes = pyplot().subplots(1, len(steps), figsize=(2.2 * len(steps), 2.5), squeeze=False)
    for ax, step in zip(axes[0], steps):
        scatter_samples(ax, snapshots[step], means, limit, f"step {step}", data)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_sample_grid(path, rows: Sequence[tuple[str, dict[int, np.ndarray]]], means, count: int = 6, title="", data=None):
    """Rows of snapshot scatters (e.g. K = 0 and K = 10), columns at the same steps: the Metz et al. Figure 1 layout."""
    means = np.asarray(means)
    limit = plot_limit(means)
    steps = pick_snapshots(sorted(set.intersection(*(set(s) for _, s in rows))), count)
    fig, axes = pyplot().subplots(len(rows), len(steps), figsize=(2.0 * len(steps), 2.1 * len(rows)), squeeze=False)
    for r, (label, snapshots) in enumerate(rows):
        for c, step in enumerate(steps):
            scatter_samples(axes[r, c], snapshots[step], means, limit, f"step {step}" if r == 0 else "", data)
        axes[r, 0].set_ylabel(label, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def plot_vector_field(path, field, trajectory: np.ndarray, title: str = "", limit: float | None = None) -> None:
    """The update field of a 2-parameter game as arrows, and a trajectory through it (start o, end x).

    `field(theta_grid, psi_grid) -> (u, v)`; `trajectory` is [steps, 2].
    """
    limit = limit or max(2.0, float(np.abs(trajectory).max()) * 1.1)
    fig, ax = pyplot().subplots(figsize=(4.2, 4.2))
    plot_field_axes(ax, field, trajectory, limit, title)
    save_figure(fig, path)


def plot_field_axes(ax, field, trajectory: np.ndarray, limit: float, title: str = "") -> None:
    grid = np.linspace(-limit, limit, 17)
    theta, psi = np.meshgrid(grid, grid)
    u, v = field(theta, psi)
    ax.quiver(theta, psi, u, v, color="0.6", angles="xy", width=0.004)
    ax.plot(trajectory[:, 0], trajectory[:, 1], color="tab:blue", lw=1.2)
    ax.plot(*trajectory[0], "o", color="tab:green", ms=5)
    ax.plot(*trajectory[-1], "x", color="tab:red", ms=7, mew=2)
    ax.plot(0, 0, "*", color="k", ms=8)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xlabel("θ (generator)")
    ax.set_ylabel("ψ (discriminator)")
    if title:
        ax.set_title(title, fontsize=8)


def image_grid(images: np.ndarray, columns: int) -> np.ndarray:
    """[n, H, W, C] images in [0, 1] tiled row-major into one [rows·(H+1)−1, columns·(W+1)−1, C] array."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.ones((rows * (h + 1) - 1, columns * (w + 1) - 1, c), np.float32)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        grid[r * (h + 1) : r * (h + 1) + h, col * (w + 1) : col * (w + 1) + w] = image
    return grid


def rows_grid(rows: Sequence[np.ndarray], per_row: int) -> np.ndarray:
    """`image_grid` of one row per entry of `rows` ([n_i, H, W, C] each, n_i <= per_row), short rows padded white."""
    h, w, c = rows[0].shape[1:]
    padded = [np.concatenate([r, np.ones((per_row - len(r), h, w, c), np.float32)]) for r in rows]
    return image_grid(np.concatenate(padded), per_row)


def _show_grid(ax, grid: np.ndarray) -> None:
    """An image (or a grid of them) [H, W, C] in [0, 1] on `ax`: gray for one channel, RGB for three."""
    gray = grid.shape[-1] == 1
    ax.imshow(grid[..., 0] if gray else grid, cmap="gray" if gray else None, vmin=0, vmax=1)


def plot_image_snapshots(path, snapshots: dict[int, np.ndarray], title: str = "", count: int = 6, per_row: int = 16):
    """Left: the final 8×8 grid of fixed-noise samples; right: one row of `per_row` samples per evaluation step."""
    if not snapshots:
        return
    steps = pick_snapshots(list(snapshots), count)
    final = snapshots[steps[-1]]
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(12, 5.5), gridspec_kw={"width_ratios": [1, 1.6]})
    _show_grid(left, image_grid(final[:64], 8))
    left.set_title(f"step {steps[-1]}", fontsize=9)
    _show_grid(right, image_grid(np.concatenate([snapshots[s][:per_row] for s in steps]), per_row))
    right.set_yticks([(i + 0.5) * (final.shape[1] + 1) for i in range(len(steps))], [f"step {s}" for s in steps], fontsize=8)
    right.set_xticks([])
    left.set_xticks([])
    left.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_image_rows(path, labels: Sequence[str], rows: Sequence[np.ndarray], title: str = "", column_labels: Sequence[str] = ()) -> None:
    """One labelled row per entry of `rows` ([n, H, W, C] in [0, 1] each, the same n), e.g. one row per method."""
    h, w = rows[0].shape[1:3]
    per_row = max(len(r) for r in rows)
    fig, ax = pyplot().subplots(figsize=(0.6 * per_row + 1.2, 0.6 * len(rows) + 0.8))
    _show_grid(ax, rows_grid(rows, per_row))
    labelled = any(labels)  # unlabelled rows get no tick marks
    ax.set_yticks([(i + 0.5) * (h + 1) for i in range(len(rows))] if labelled else [], list(labels) if labelled else [], fontsize=7)
    ax.set_xticks([(i + 0.5) * (w + 1) for i in range(len(column_labels))], list(column_labels), fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    save_figure(fig, path)


def plot_class_grid(path, images: np.ndarray, labels: np.ndarray, per_class: int = 10, title: str = "") -> None:
    """One row per class asked for (or per value of InfoGAN's categorical code): its first `per_class` samples."""
    classes = np.unique(labels)[:20]
    rows = [images[labels == k][:per_class] for k in classes]
    plot_image_rows(path, [f"class {int(k)}" for k in classes], rows, title=title)


def plot_class_snapshots(
    path, snapshots: dict[int, np.ndarray], labels: np.ndarray, title: str = "", count: int = 6, per_class: int = 10
) -> None:
    """A conditioned run's samples, for up to 20 classes. Left: the final step's, one row per class asked for (its
    first `per_class`); right: one row per evaluation step (`count` of them, the last included) of the first sample
    of each class, the classes as columns. `labels` are the classes of the samples, the same at every step (the
    evaluation noise is fixed)."""
    if not snapshots:
        return
    classes = np.unique(labels)[:20]
    first = [int(np.flatnonzero(labels == k)[0]) for k in classes]
    steps = pick_snapshots([s for s, x in snapshots.items() if len(x) > max(first)], count)  # eval_num_samples may change
    final = snapshots[steps[-1]]
    h, w, c = final.shape[1:]
    fig, (left, right) = pyplot().subplots(
        1, 2, figsize=(12, 0.45 * max(len(classes), len(steps)) + 1.5), gridspec_kw={"width_ratios": [per_class, len(classes)]}
    )  # fmt: skip
    _show_grid(left, rows_grid([final[labels == k][:per_class] for k in classes], per_class))
    left.set_yticks([(i + 0.5) * (h + 1) for i in range(len(classes))], [f"class {int(k)}" for k in classes], fontsize=7)
    left.set_xticks([])
    left.set_title(f"step {steps[-1]}", fontsize=9)
    _show_grid(right, image_grid(np.stack([snapshots[s][first] for s in steps]).reshape(-1, h, w, c), len(classes)))
    right.set_yticks([(i + 0.5) * (h + 1) for i in range(len(steps))], [f"step {s}" for s in steps], fontsize=7)
    right.set_xticks([(i + 0.5) * (w + 1) for i in range(len(classes))], [str(int(k)) for k in classes], fontsize=7)
    right.set_title("over training, one sample per class", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def plot_nearest_neighbours(
    path,
    samples: np.ndarray,
    train: np.ndarray,
    pixel_indices: np.ndarray,
    feature_indices: np.ndarray | None = None,
    count: int = 8,
    feature_distances: np.ndarray | None = None,
    title: str = "",
) -> None:
    """One column per sample (the first `count`): the sample, its nearest training image in pixel space and, when
    `feature_indices` is given, its nearest training image in feature space (Goodfellow et al. 2014, Figure 2).

    Images are floats in [0, 1], [N, H, W, C] with C 1 or 3. Pixel distances ||sample - neighbour|| are computed
    here and shown over the neighbours; feature distances need the features, so they are shown only when
    `feature_distances` ([N], e.g. `MemorizationReport.feature_distances`) is given. The indices are those of
    `jaxgan.metrics.memorization.memorization_report`.
    """
    samples, train = np.asarray(samples, np.float32), np.asarray(train, np.float32)
    count = min(count, len(samples))
    rows = [("sample", None, None), ("nearest (pixels)", np.asarray(pixel_indices), None)]
    if feature_indices is not None:
        rows.append(("nearest (features)", np.asarray(feature_indices), feature_distances))
    fig, axes = pyplot().subplots(len(rows), count, figsize=(1.3 * count, 1.45 * len(rows)), squeeze=False)
    for r, (label, indices, distances) in enumerate(rows):
        for c in range(count):
            ax = axes[r, c]
            image = samples[c] if indices is None else train[indices[c]]
            _show_grid(ax, image)
            ax.set_xticks([])
            ax.set_yticks([])
            if indices is None:
                ax.set_title(f"#{c}", fontsize=7)
            elif label == "nearest (pixels)":
                ax.set_title(f"d={np.linalg.norm(samples[c] - image):.2f}", fontsize=7)
            elif distances is not None:
                ax.set_title(f"d={float(np.asarray(distances)[c]):.2f}", fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def plot_run_curves(
    path,
    curves: Sequence[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]]]],
    metrics: Sequence[str],
    references: dict[str, tuple[float, str]] | None = None,
    finals: Sequence[tuple[str, np.ndarray]] = (),
    means=None,
    data=None,
    title: str = "",
) -> None:
    """Runs compared over training: one panel per metric with a line per run ((steps, values) by metric), a dashed
    line at each metric's reference value (a paper's number or a goal), and below, if `finals` are given, each run's
    last samples over the data (a 2-D mixture with `means`), in rows of at most five unless the metrics are more."""
    references = references or {}
    columns = max(len(metrics), min(len(finals), 5))
    final_rows = -(-len(finals) // columns)
    fig, axes = pyplot().subplots(1 + final_rows, columns, figsize=(4.2 * columns, 3.4 * (1 + final_rows)), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, series in curves:
            if metric in series:
                ax.plot(*series[metric], marker=".", markersize=4, label=label)
        if metric in references:
            value, note = references[metric]
            ax.axhline(value, color="gray", linestyle="--", linewidth=1, label=note)
        ax.set_title(metric.removeprefix("eval/"), fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=6, loc="best")
    for ax in axes[0][len(metrics):]:
        ax.axis("off")
    if finals:
        limit = plot_limit(np.asarray(means))
        for ax, (label, samples) in zip(axes[1:].flat, finals):
            scatter_samples(ax, samples, np.asarray(means), limit, label, data)
        for ax in axes[1:].flat[len(finals):]:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path)
