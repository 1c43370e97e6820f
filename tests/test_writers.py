"""Metric output read back: `read_metric` returns one metric's series in step order, whatever else was logged;
`metrics_up_to` keeps what a resume or a branch at a step keeps."""

import pathlib

import numpy as np
import pytest

from jaxgan import writers
from jaxgan.writers import MetricWriter, logged_at, metrics_up_to, read_metric


def test_read_metric_returns_one_metrics_series_in_step_order(tmp_path):
    writer = MetricWriter(tmp_path)
    for step in (10, 20, 30, 40):
        writer.write(step, {"loss": step / 10})
        if step % 20 == 0:
            writer.write(step, {"eval/modes": step // 20})
    writer.close()
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 50, "eval/mo')  # torn by a crash
    steps, values = read_metric(tmp_path, "eval/modes")
    np.testing.assert_array_equal(steps, [20, 40])
    np.testing.assert_array_equal(values, [1.0, 2.0])
    steps, values = read_metric(tmp_path, "loss")
    np.testing.assert_array_equal(steps, [10, 20, 30, 40])
    np.testing.assert_allclose(values, [1.0, 2.0, 3.0, 4.0])
    # A resume from step 20 cuts the later records, and what is logged after them follows in order.
    writer = MetricWriter(tmp_path, resume_step=20)
    writer.write(40, {"eval/modes": 7})
    writer.close()
    np.testing.assert_array_equal(read_metric(tmp_path, "eval/modes")[1], [1.0, 7.0])


def test_read_metric_gives_a_sweeps_per_seed_lists_as_steps_by_runs(tmp_path):
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 20, "eval/modes/per_seed": [8, 7]}\n{"step": 10, "eval/modes/per_seed": [5, 8]}\n'
    )
    steps, values = read_metric(tmp_path, "eval/modes/per_seed")
    np.testing.assert_array_equal(steps, [10, 20])
    np.testing.assert_array_equal(values, [[5, 8], [8, 7]])


def test_logged_at_names_the_metrics_of_one_step(tmp_path):
    assert logged_at(tmp_path, 20) == set()  # no metrics.jsonl yet
    (tmp_path / "metrics.jsonl").write_text('{"step": 20, "d_loss": 1}\n{"step": 40, "x": 1}\n{"step": 20, "eval/modes": 3}\n{"step": 20, "ev')
    assert logged_at(tmp_path, 20) == {"d_loss", "eval/modes"}
    assert logged_at(tmp_path, 30) == set()


def test_metrics_up_to_keeps_the_lines_a_resume_at_that_step_keeps(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 10, "a": 1}\n{"step": 20, "a": 2}\n{"step": 30, "a": 3}\n{"step": 40, "a"')
    assert metrics_up_to(path, 20) == '{"step": 10, "a": 1}\n{"step": 20, "a": 2}\n'
    assert metrics_up_to(path, 5) == ""
    assert metrics_up_to(path, 10**9).count("\n") == 3  # the torn line is dropped


def test_write_text_atomic_leaves_the_old_file_whole_when_the_write_dies(tmp_path, monkeypatch):
    target = tmp_path / "metrics.jsonl"
    writers.write_text_atomic(target, "old line\n")
    original_write = pathlib.Path.write_text

    def dies_half_way(self, text, *args, **kwargs):
        original_write(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(pathlib.Path, "write_text", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        writers.write_text_atomic(target, "new line one\nnew line two\n")
    assert target.read_text() == "old line\n"
    monkeypatch.undo()
    writers.write_text_atomic(target, "new line one\nnew line two\n")  # the next write replaces it whole
    assert target.read_text() == "new line one\nnew line two\n"


def tensorboard_scalars(workdir) -> dict[str, list[tuple[int, float]]]:
    """What TensorBoard shows of `workdir`/tensorboard: its event files read in name order, as TensorBoard reads
    them, each SessionLog.START at step T hiding the events at steps >= T read before it (TensorBoard's purge)."""
    import struct

    from tensorboardX.proto import event_pb2

    shown: dict[tuple[str, int], float] = {}
    for path in sorted((pathlib.Path(workdir) / "tensorboard").glob("events.out.tfevents.*")):
        data, i = path.read_bytes(), 0
        while i < len(data):
            (length,) = struct.unpack("<Q", data[i : i + 8])
            event = event_pb2.Event.FromString(data[i + 12 : i + 12 + length])
            i += 12 + length + 4  # length, its CRC, the record, its CRC
            if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                shown = {k: v for k, v in shown.items() if k[1] < event.step}
            for value in event.summary.value:
                shown[(value.tag, event.step)] = value.simple_value
    series: dict[str, list[tuple[int, float]]] = {}
    for (tag, step), value in sorted(shown.items()):
        series.setdefault(tag, []).append((step, value))
    return series


def test_tensorboard_after_a_resume_shows_what_metrics_jsonl_keeps(tmp_path):
    """A resume at step 20 keeps the records of step 20 (the checkpoint's) and hides the later ones of the lost
    attempt, in TensorBoard as in metrics.jsonl; a restart within the same second erases nothing."""
    writer = MetricWriter(tmp_path)
    for step in (10, 20, 30):
        writer.write(step, {"loss": step / 10, **({"eval/modes": step} if step == 20 else {})})
    writer.close()
    writer = MetricWriter(tmp_path, resume_step=20)
    writer.write(30, {"loss": 9.0})
    writer.write(40, {"loss": 4.0})
    writer.close()
    shown = tensorboard_scalars(tmp_path)
    assert shown["loss"] == [(10, 1.0), (20, 2.0), (30, 9.0), (40, 4.0)]
    assert shown["eval/modes"] == [(20, 20.0)]
    np.testing.assert_array_equal(read_metric(tmp_path, "loss")[1], [1.0, 2.0, 9.0, 4.0])


def test_a_resume_after_a_kill_shows_the_records_the_killed_attempt_had_not_written_out(tmp_path):
    """tensorboardX writes its queue out every two minutes: a run killed between two of those writes lost events
    that metrics.jsonl keeps, and its resume shows them all the same."""
    writer = MetricWriter(tmp_path)  # never closed: the attempt that is killed
    queue = writer._tb.file_writer.event_writer._event_queue
    queue.put = lambda event: None  # its events never reach the file
    for step in (10, 20):
        writer.write(step, {"loss": step / 10, "eval/fid": step + 0.5})
    assert tensorboard_scalars(tmp_path) == {}
    resumed = MetricWriter(tmp_path, resume_step=20)
    resumed.write(30, {"loss": 3.0})
    resumed.close()
    assert tensorboard_scalars(tmp_path) == {"eval/fid": [(10, 10.5), (20, 20.5)], "loss": [(10, 1.0), (20, 2.0), (30, 3.0)]}
    del queue.put  # the queue's own again, so that the writer's close at exit can stop its thread


def test_a_workdir_without_tensorboard_events_gets_its_kept_records_replayed(tmp_path):
    """A branch copies the source's metrics.jsonl up to its step: TensorBoard shows them too."""
    (tmp_path / "metrics.jsonl").write_text('{"step": 10, "loss": 1.5}\n{"step": 20, "loss": 2.5}\n{"step": 30, "loss": 3.5}\n')
    writer = MetricWriter(tmp_path, resume_step=20)
    writer.write(30, {"loss": 7.0})
    writer.close()
    assert tensorboard_scalars(tmp_path)["loss"] == [(10, 1.5), (20, 2.5), (30, 7.0)]


def test_samples_and_figures_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """A reader of a live run (or a crash mid-write) sees the old samples file or figure or the new one, never a
    torn one: both are written beside and renamed."""
    import matplotlib.figure

    from jaxgan import plotting

    samples = tmp_path / "step_00000020.npy"
    writers.save_npy_atomic(samples, np.zeros((3, 2)))

    def dies_half_way(file, array, *args, **kwargs):
        file.write(b"\x93NUMPY")
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(np, "save", dies_half_way)
        with pytest.raises(OSError, match="disk full"):
            writers.save_npy_atomic(samples, np.ones((3, 2)))
    np.testing.assert_array_equal(np.load(samples), np.zeros((3, 2)))
    writers.save_npy_atomic(samples, np.ones((3, 2)))
    np.testing.assert_array_equal(np.load(samples), np.ones((3, 2)))

    figure = tmp_path / "samples.png"
    plotting.save_figure(matplotlib.figure.Figure(), figure)
    before = figure.read_bytes()
    original = matplotlib.figure.Figure.savefig

    def savefig_dies(self, fname, **kwargs):
        original(self, fname, **kwargs)
        pathlib.Path(fname).write_bytes(pathlib.Path(fname).read_bytes()[:100])
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig_dies)
    fig = matplotlib.figure.Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    with pytest.raises(OSError, match="disk full"):
        plotting.save_figure(fig, figure)
    assert figure.read_bytes() == before
