"""Tests for jaxgan.checkpoint: bitwise round trips, retention, fallback past corrupt or unfinished saves."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from flax import struct

from jaxgan.checkpoint import Checkpointer, CheckpointSaveError, saved_steps

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(16)(x))
        return nn.Dense(2)(x)


@struct.dataclass
class TrainState:
    step: jax.Array
    g_params: Any
    d_params: Any
    g_opt_state: Any
    d_opt_state: Any
    key: jax.Array
    data_position: jax.Array


TX = optax.adam(1e-3, eps_root=1e-8)


def _build_state(step: int, typed_key: bool = False) -> TrainState:
    """A realistic state whose every leaf depends on `step` (so states of different steps differ)."""
    k_g, k_d, k_run = jax.random.split(jax.random.PRNGKey(step), 3)
    x = jnp.ones((1, 2))
    g_params = _MLP().init(k_g, x)
    d_params = _MLP().init(k_d, x)
    # One optimizer update so that mu, nu and count are non-trivial.
    grads = jax.tree.map(lambda p: jnp.sin(p * 3.0 + step), g_params)
    g_opt_state = TX.update(grads, TX.init(g_params), g_params)[1]
    d_opt_state = TX.init(d_params)
    key = jax.random.wrap_key_data(k_run) if typed_key else k_run
    return TrainState(
        step=jnp.int32(step),
        g_params=g_params,
        d_params=d_params,
        g_opt_state=g_opt_state,
        d_opt_state=d_opt_state,
        key=key,
        data_position=jnp.int32(1000 + 7 * step),
    )


# States are immutable and building them eagerly is the slow part of these tests.
make_state = functools.cache(_build_state)


def abstract_state(typed_key: bool = False) -> TrainState:
    """What a trainer passes to `restore`: shapes and dtypes only (not cached: it runs under a trace)."""
    return jax.eval_shape(lambda: _build_state(0, typed_key))


def _raw(x):
    x = jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
    return np.asarray(x)


def assert_bitwise_equal(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
        np.testing.assert_array_equal(_raw(a), _raw(b))
        np.testing.assert_array_equal(_raw(a).reshape(-1).view(np.uint8), _raw(b).reshape(-1).view(np.uint8))


@pytest.mark.parametrize("typed_key", [False, True], ids=["PRNGKey", "typed_key"])
def test_round_trip_is_bitwise(tmp_path, typed_key):
    state = make_state(3, typed_key)
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        assert ckpt.save(3, state)
        ckpt.wait()
    # A fresh Checkpointer, as after a restart.
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        restored, step = ckpt.restore(abstract_state(typed_key))
    assert step == 3
    assert isinstance(restored, TrainState)
    assert_bitwise_equal(restored, state)
    chex.assert_trees_all_equal_dtypes(restored, state)


def test_keeps_latest_n(tmp_path):
    with Checkpointer(tmp_path, max_to_keep=2) as ckpt:
        for step in range(1, 6):
            assert ckpt.save(step, make_state(step))
        ckpt.wait()
        assert ckpt.all_steps() == [4, 5]
        assert ckpt.latest_step() == 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["4", "5"]


def test_restore_latest_or_given_step(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        for step in (10, 20, 30):
            ckpt.save(step, make_state(step))
        ckpt.wait()
        abstract = make_state(0)  # concrete arrays work as the target too
        restored, step = ckpt.restore(abstract)
        assert step == 30
        assert_bitwise_equal(restored, make_state(30))
        restored, step = ckpt.restore(abstract, step=20)
        assert step == 20
        assert_bitwise_equal(restored, make_state(20))
        with pytest.raises(FileNotFoundError):
            ckpt.restore(abstract, step=25)


# A failed orbax restore can leave tensorstore callbacks behind that fire after their event loop closed.
_IGNORE_LOOP_CLOSED = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def _truncate_array_data(step_dir: pathlib.Path) -> None:
    data_files = [p for p in step_dir.rglob("*") if p.is_file() and p.parent.name == "d"]
    assert data_files
    for p in data_files:
        os.truncate(p, p.stat().st_size // 2)


def _delete_item_dirs(step_dir: pathlib.Path) -> None:
    item_dirs = [p for p in step_dir.iterdir() if p.is_dir()]
    assert item_dirs
    for p in item_dirs:
        shutil.rmtree(p)


@_IGNORE_LOOP_CLOSED
@pytest.mark.parametrize("corrupt", [_truncate_array_data, _delete_item_dirs], ids=["truncated", "deleted"])
def test_corrupt_latest_falls_back_with_warning(tmp_path, caplog, corrupt):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(1))
        ckpt.save(2, make_state(2))
        ckpt.wait()
    corrupt(tmp_path / "2")

    with Checkpointer(tmp_path) as ckpt, caplog.at_level(logging.WARNING):
        assert ckpt.latest_step() == 2  # it is finalized; only reading it fails
        restored, step = ckpt.restore(abstract_state())
        gc.collect()  # orbax's failed read leaves asyncio tasks whose "never retrieved" error is logged on GC
    assert step == 1
    assert_bitwise_equal(restored, make_state(1))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    warnings = [w for w in warnings if "unreadable" in w]
    assert len(warnings) == 1, warnings
    assert "step 2" in warnings[0] and "\n" not in warnings[0]



def test_a_reader_leaves_a_live_runs_save_in_flight_and_everything_else_alone(tmp_path):
    """Sampling or branching from a run that is still training opens its checkpoints while a save may be in flight
    (`N.orbax-checkpoint-tmp`); a writing manager deletes that folder when it opens, which killed the run or left
    its checkpoint without data."""
    with Checkpointer(tmp_path / "run") as run:
        run.save(1, make_state(1))
        run.wait()
    in_flight = tmp_path / "run" / "2.orbax-checkpoint-tmp"  # what a live run's async save looks like on disk
    (in_flight / "state").mkdir(parents=True)
    with Checkpointer(tmp_path / "run", read_only=True) as reader:
        assert reader.all_steps() == [1]
        restored, step = reader.restore(abstract_state())
        with pytest.raises(RuntimeError, match=r"run was opened read-only: it cannot save$"):
            reader.save(3, make_state(3))
    assert step == 1
    assert_bitwise_equal(restored, make_state(1))
    assert saved_steps(tmp_path / "run") == [1] and (in_flight / "state").is_dir()
    assert saved_steps(tmp_path / "missing") == [] and not (tmp_path / "missing").exists()
    with Checkpointer(tmp_path / "run"):  # why readers must not open as writers: orbax cleans up, in a thread
        pass
    for _ in range(300):
        if not in_flight.exists():
            break
        time.sleep(0.1)
    assert not in_flight.exists()


@_IGNORE_LOOP_CLOSED
def test_a_reader_falls_back_past_a_damaged_step_without_moving_it(tmp_path, caplog):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(1))
        ckpt.save(2, make_state(2))
        ckpt.wait()
    _truncate_array_data(tmp_path / "2")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with Checkpointer(tmp_path, read_only=True) as reader, caplog.at_level(logging.WARNING):
        restored, step = reader.restore(abstract_state())
        gc.collect()
    assert step == 1
    assert_bitwise_equal(restored, make_state(1))
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # step 2 stays where it is, for the run to handle
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 1 and "step 2" in warnings[0] and "restored step 1 instead" in warnings[0], warnings

def _delete_state_metadata(step_dir: pathlib.Path) -> None:
    (step_dir / "state" / "_METADATA").unlink()  # orbax then reads the stored layout as None


@_IGNORE_LOOP_CLOSED
@pytest.mark.parametrize("corrupt", [_truncate_array_data, _delete_item_dirs, _delete_state_metadata],
                         ids=["truncated", "deleted", "metadata lost"])  # fmt: skip
def test_a_damaged_only_checkpoint_is_reported_as_damage_not_as_another_config(tmp_path, corrupt):
    from jaxgan.checkpoint import CheckpointDamagedError, CheckpointMismatchError

    with Checkpointer(tmp_path, max_to_keep=1) as ckpt:
        ckpt.save(1, make_state(1))
        ckpt.wait()
    corrupt(tmp_path / "1")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    with Checkpointer(tmp_path, max_to_keep=1) as ckpt:
        with pytest.raises(CheckpointDamagedError, match=r"^none of the checkpoints \[1\] in .* can be read \(step 1: "
                           r"[^\n]+\), and none was written for another state layout: they are damaged$"):
            ckpt.restore(abstract_state())
        gc.collect()
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing moved
    with Checkpointer(tmp_path, read_only=True) as reader:  # the same for a reader, without orbax's notes on options
        with pytest.raises(CheckpointDamagedError, match=r"^none of the checkpoints \[1\] .* they are damaged$") as info:
            reader.restore(abstract_state())
        gc.collect()
    assert "read_only" not in str(info.value), str(info.value)

    other = tmp_path.parent / (tmp_path.name + "_other")  # another layout: a mismatch, not damage
    with Checkpointer(other) as ckpt:
        ckpt.save(1, make_state(1))
        ckpt.wait()
    wider = jax.eval_shape(lambda: _build_state(0).replace(data_position=jnp.zeros(2, jnp.int32)))
    with Checkpointer(other) as ckpt:
        with pytest.raises(CheckpointMismatchError, match=r"\(step 1: leaf data_position: stored int32\[\], this run has int32\[2\]\)$") as caught:
            ckpt.restore(wider)
    assert not isinstance(caught.value, CheckpointDamagedError)


@_IGNORE_LOOP_CLOSED
def test_a_step_without_its_data_position_is_unreadable_only_where_one_is_needed(tmp_path):
    from jaxgan.checkpoint import DATA_ITEM

    for name in ("needed", "not_needed"):
        with Checkpointer(tmp_path / name) as ckpt:
            ckpt.save(1, make_state(1), data={"next_batch": 1})
            ckpt.save(2, make_state(2), data={"next_batch": 2})
            ckpt.wait()
        shutil.rmtree(tmp_path / name / "2" / DATA_ITEM)
    with Checkpointer(tmp_path / "needed") as ckpt:  # a streamed run: fall back to step 1 and its position
        restored, step = ckpt.restore(abstract_state(), with_data=True)
        gc.collect()
        assert step == 1 and ckpt.restore_data(1) == {"next_batch": 1}
    assert_bitwise_equal(restored, make_state(1))
    assert (tmp_path / "needed" / "unreadable_step_2").is_dir()
    with Checkpointer(tmp_path / "not_needed") as ckpt:
        assert ckpt.restore(abstract_state())[1] == 2


@_IGNORE_LOOP_CLOSED
def test_only_process_0_sets_an_unreadable_step_aside(tmp_path, monkeypatch):
    """Every process of a job finds the same damaged step; two renames of it would race."""
    from jaxgan.checkpoint import DATA_ITEM

    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(1), data={"next_batch": 1})
        ckpt.save(2, make_state(2), data={"next_batch": 2})
        ckpt.wait()
    shutil.rmtree(tmp_path / "2" / DATA_ITEM)
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.restore(abstract_state(), with_data=True)[1] == 1
        gc.collect()
    assert (tmp_path / "2").is_dir() and not list(tmp_path.glob("unreadable_step_*"))


@_IGNORE_LOOP_CLOSED
def test_missing_metadata_falls_back(tmp_path, caplog):
    with Checkpointer(tmp_path) as ckpt:
        ckpt.save(1, make_state(1, typed_key=True))
        ckpt.save(2, make_state(2, typed_key=True))
        ckpt.wait()
    # Without the array metadata orbax would silently return the typed key as raw uint32 data.
    for p in (tmp_path / "2").rglob("array_metadatas"):
        for f in p.rglob("*"):
            if f.is_file():
                f.unlink()
    with Checkpointer(tmp_path) as ckpt, caplog.at_level(logging.WARNING):
        restored, step = ckpt.restore(abstract_state(typed_key=True))
    assert step == 1
    assert_bitwise_equal(restored, make_state(1, typed_key=True))
    assert any("step 2" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_empty_directory(tmp_path):
    with Checkpointer(tmp_path / "new") as ckpt:
        assert (tmp_path / "new").is_dir()
        assert ckpt.latest_step() is None
        assert ckpt.all_steps() == []
        assert ckpt.restore(abstract_state()) == (None, None)


def test_saving_same_step_twice_is_a_noop(tmp_path):
    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.save(5, make_state(5)) is True
        assert ckpt.save(5, make_state(6)) is False  # first save possibly still in flight
        ckpt.wait()
        assert ckpt.save(5, make_state(6), force=True) is False
        ckpt.wait()
        assert ckpt.all_steps() == [5]
        restored, _ = ckpt.restore(make_state(0))
    assert_bitwise_equal(restored, make_state(5))


_KILLED_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import jax.numpy as jnp
    import orbax.checkpoint as ocp
    from jaxgan.checkpoint import Checkpointer

    ckpt = Checkpointer(sys.argv[1])
    ckpt.save(1, {"x": jnp.arange(1000.0)})
    ckpt.wait()

    async def die(self):  # everything is written; die right before the atomic rename
        os.kill(os.getpid(), signal.SIGKILL)

    ocp.path.atomicity.AtomicRenameTemporaryPath.finalize = die
    ckpt.save(2, {"x": jnp.arange(1000.0) + 1})
    ckpt.wait()
    """
)


def test_save_killed_before_commit_is_ignored(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-c", _KILLED_CHILD, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("2.orbax-checkpoint-tmp")]
    assert leftovers, sorted(p.name for p in tmp_path.iterdir())

    with Checkpointer(tmp_path) as ckpt:
        assert ckpt.all_steps() == [1]
        assert ckpt.latest_step() == 1
        restored, step = ckpt.restore({"x": jax.ShapeDtypeStruct((1000,), jnp.float32)})
        assert step == 1
        np.testing.assert_array_equal(restored["x"], np.arange(1000.0, dtype=np.float32))
        assert ckpt.save(2, {"x": jnp.zeros(1000)})  # the step can be saved again after the crash
        ckpt.wait()
        assert ckpt.all_steps() == [1, 2]
    assert not [p for p in tmp_path.iterdir() if "orbax-checkpoint-tmp" in p.name]


def test_save_in_flight_is_not_visible_until_committed(tmp_path, monkeypatch):
    release = threading.Event()
    original = ocp.path.atomicity.AtomicRenameTemporaryPath.finalize

    async def held_finalize(self):
        await asyncio.to_thread(release.wait, 60)
        await original(self)

    monkeypatch.setattr(ocp.path.atomicity.AtomicRenameTemporaryPath, "finalize", held_finalize)
    with Checkpointer(tmp_path) as ckpt:
        release.set()
        ckpt.save(1, make_state(1))
        ckpt.wait()
        release.clear()
        assert ckpt.save(2, make_state(2))
        # Step 2 is in flight (orbax already lists it); orbax's restore would block until it commits.
        assert ckpt.latest_step() == 1 and ckpt.all_steps() == [1]
        release.set()
        ckpt.wait()
        assert ckpt.latest_step() == 2


def test_failed_async_save_raises_on_wait(tmp_path, monkeypatch):
    async def broken_finalize(self):
        raise OSError("disk full")

    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, make_state(1))
    ckpt.wait()
    monkeypatch.setattr(ocp.path.atomicity.AtomicRenameTemporaryPath, "finalize", broken_finalize)
    ckpt.save(2, make_state(2))
    with pytest.raises(CheckpointSaveError, match=r"^the checkpoint of step 2 was not written \(.*disk full"):
        ckpt.wait()
    assert ckpt.latest_step() == 1
    restored, step = ckpt.restore(make_state(0))
    assert step == 1
    assert_bitwise_equal(restored, make_state(1))
    try:
        ckpt.close()
    except RuntimeError:  # orbax keeps re-raising the failed save
        pass
