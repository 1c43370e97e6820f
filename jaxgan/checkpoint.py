"""Checkpointing of the whole training state, for exact resume.

A GAN run is only reproducible across a restart if *everything* that determines the next update is saved
together: the step counter, both networks' params, both optimizer states, the PRNG key and the position in
the data stream. The trainer therefore keeps all of it in one pytree (a `flax.struct.dataclass`) and this
module saves and restores that pytree as a unit, bit for bit, with `orbax.checkpoint.CheckpointManager`.

Why it is safe to kill the process at any moment (checked against orbax-checkpoint 0.12.8):

* On a local or POSIX file system orbax writes step N into `<dir>/N.orbax-checkpoint-tmp/`,
  writes `commit_success.txt` into it once all data is committed, then atomically renames it to `<dir>/N/`
  (`AtomicRenameTemporaryPath`). A checkpoint counts as finalized iff `<dir>/N/` exists under its final
  name; a SIGKILL mid-save leaves only the tmp directory, which orbax's step listing skips and which
  `cleanup_tmp_directories=True` removes when the next writing `Checkpointer` opens the directory. Readers
  (`read_only=True`) leave it: it may be the save in flight of a run that is still training.
* `CheckpointManager.all_steps()/latest_step()` are an in-memory list that includes a step as soon as its
  async save *starts* (and keeps it if the save later fails), so this module lists the finalized steps on
  disk instead (`saved_steps`).
* A finalized checkpoint can still be damaged later (disk full, manual deletion, bit rot). `restore()` with
  `step=None` therefore tries the newest step first and falls back to older ones with a warning; the
  restored tree is checked leaf by leaf against `abstract_state` (shapes, dtypes, structure).

Typed PRNG keys (`jax.random.key`) need no conversion: orbax 0.12.8 stores `key_data` plus the key impl in
`array_metadatas/`. If that sidecar is lost the key would come back as raw uint32 data; the dtype check
turns that into "checkpoint unreadable" rather than a silently different state.

An unreadable step is renamed to `unreadable_step_N` (kept for inspection, out of orbax's view) once an older
step has restored, so the resumed run saves step N again instead of finding it taken. When no step restores at all,
nothing is moved: `CheckpointMismatchError` is raised when some step was written for another state layout (another
config or version), `CheckpointDamagedError` (a subclass) when every step has this run's layout but cannot be read. `max_to_keep` must be >= 2 for a fallback target to exist. The state is saved as the named item `state`
(`<dir>/N/state/`) rather than orbax's unnamed default item: in default-item mode a fresh manager decides
single- vs multi-item mode from the first step directory it restores, so a latest step whose item directory
is missing would lock it into the wrong mode and make every older step unreadable too.
"""

from __future__ import annotations

import contextlib
import gc
import logging as std_logging
import os
import sys
from typing import Any, Iterator

import jax
import orbax.checkpoint as ocp
from absl import logging

from jaxgan.parallel import process_values
from jaxgan.registry import one_line

__all__ = ["CheckpointDamagedError", "CheckpointMismatchError", "Checkpointer", "saved_steps"]

# The item a step's data position (a streamed loader's `get_state()`) is saved under, beside "state".
DATA_ITEM = "data"


def _one_line(exc: BaseException, limit: int = 400) -> str:
    kind = "" if isinstance(exc, _LayoutMismatch) else f"{type(exc).__name__}: "  # a layout's own text says it all
    return one_line(f"{kind}{exc}", limit)


def _check_matches(restored: Any, abstract: Any) -> None:
    """Raises ValueError unless `restored` has the structure, shapes and dtypes of `abstract`."""
    if jax.tree.structure(restored) != jax.tree.structure(abstract):
        raise ValueError(f"tree structure {jax.tree.structure(restored)} != {jax.tree.structure(abstract)}")
    for path, got, want in zip(
        (jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(abstract)),
        jax.tree.leaves(restored),
        jax.tree.leaves(abstract),
    ):
        if (got.shape, got.dtype) != (want.shape, want.dtype):
            raise ValueError(f"leaf {path}: got {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}")


def _leaves_by_name(tree: Any) -> dict[str, Any]:
    """Leaves keyed as orbax names them: "g_opt_state.0.mu.Dense_0.bias"."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {jax.tree_util.keystr(path, simple=True, separator="."): leaf for path, leaf in leaves}


class _LayoutMismatch(ValueError):
    """A step's stored layout (orbax's metadata) is not this run's state: another config or version wrote it."""


def _check_stored_layout(stored: Any, abstract: Any) -> None:
    """Raises _LayoutMismatch at the first leaf whose stored shape or dtype (orbax's metadata of a step) differs from
    `abstract`'s, so that a checkpoint of another layout is refused without reading any array (orbax's failed
    array reads leave hundreds of lines of asyncio tracebacks on stderr)."""
    want, have = _leaves_by_name(abstract), _leaves_by_name(stored)
    if not have:  # no layout to compare (a lost or emptied metadata file): damage, not another layout
        raise ValueError("its stored layout (orbax's metadata) cannot be read")
    for name in sorted(set(want) | set(have)):
        if name not in have or name not in want:
            raise _LayoutMismatch(f"leaf {name}: {'missing from the checkpoint' if name in want else 'not in this run'}")
        w, h = want[name], have[name]
        if jax.dtypes.issubdtype(w.dtype, jax.dtypes.prng_key):  # stored as key data; its dtype check is after reading
            continue
        if (tuple(h.shape), str(h.dtype)) != (tuple(w.shape), str(w.dtype)):
            raise _LayoutMismatch(
                f"leaf {name}: stored {h.dtype}{list(h.shape)}, this run has {w.dtype}{list(w.shape)}"
            )


@contextlib.contextmanager
def _quiet_orbax() -> Iterator[list[str]]:
    """Holds back what orbax prints while it fails to read a step (its absl ERROR lines, and the "Exception ignored"
    tracebacks of its abandoned read coroutines, flushed here by a collection) and yields the messages of the log
    records held back, which the caller folds into its one-line reason."""
    logger, messages = std_logging.getLogger("absl"), []

    def hold(record: std_logging.LogRecord) -> bool:
        if record.levelno >= std_logging.WARNING:
            messages.append(record.getMessage())
        return False

    previous_hook = sys.unraisablehook
    logger.addFilter(hold)
    sys.unraisablehook = lambda unraisable: None
    try:
        yield messages
    finally:
        gc.collect()
        sys.unraisablehook = previous_hook
        logger.removeFilter(hold)


class CheckpointMismatchError(RuntimeError):
    """No checkpoint in the directory can be restored into the requested state: left untouched."""


class CheckpointDamagedError(CheckpointMismatchError):
    """No checkpoint in the directory can be read, and none was written with another layout: they are damaged
    (a lost file, a torn copy), not another config's. Left untouched too."""


def _same_on_every_process(value: int, what: str) -> None:
    """Every process of a multi-process job waits here for the others (nothing with one process), and raises
    RuntimeError unless all hold the same `value`: processes that read their checkpoints differently would train
    from different states."""
    values = process_values(value)
    if len(set(values)) > 1:
        raise RuntimeError(f"the processes of this job disagree on {what}: {values} (process 0 first)")


def saved_steps(directory: str | os.PathLike) -> list[int]:
    """The finalized steps in `directory` (none if it does not exist), read without changing anything there. A
    listing of the folder, not a `CheckpointManager`: opening one is a collective in a job of several processes."""
    if not os.path.isdir(directory):
        return []
    finalized = ocp.path.step.is_path_finalized
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit() and finalized(os.path.join(directory, n)))


class CheckpointSaveError(RuntimeError):
    """A checkpoint could not be written (a full disk, a lost mount): the run cannot go on without losing work."""


class Checkpointer:
    """Keeps the newest `max_to_keep` checkpoints of one state pytree under `directory`; saves are async."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3, *, read_only: bool = False):
        """`read_only`: for reading a run's checkpoints, perhaps while it trains (sampling, branching, analysis):
        nothing in `directory` is created, cleaned up, saved or set aside. A writing manager deletes every
        `N.orbax-checkpoint-tmp` folder when it opens, the save in flight of a live run included."""
        if max_to_keep < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
        self.directory = os.path.abspath(os.fspath(directory))
        self.read_only = read_only
        with _quiet_orbax() as messages:  # e.g. unparsable step metadata; reported if nothing restores
            options = (
                ocp.CheckpointManagerOptions(read_only=True, create=False, save_interval_steps=0)
                if read_only
                else ocp.CheckpointManagerOptions(
                    preservation_policy=ocp.checkpoint_managers.LatestN(n=max_to_keep),
                    enable_async_checkpointing=True,
                    cleanup_tmp_directories=True,  # leftovers of a process killed mid-save
                    create=True,
                )
            )
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=options,
                # Named handlers let item_metadata read stored layouts; "data" is a streamed loader's position.
                item_handlers={"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler()},
            )
        self._listing_messages = [m for m in messages if not m.startswith("Given directory is read only")]
        self._last_saved: int | None = None

    def _is_finalized(self, step: int) -> bool:
        return ocp.path.step.is_path_finalized(os.path.join(self.directory, str(step)))

    def all_steps(self) -> list[int]:
        """Steps whose checkpoint is fully written (finalized) on disk, ascending."""
        return saved_steps(self.directory)

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, *, force: bool = False, data: dict | None = None) -> bool:
        """Starts an async save of `state` as `step`; returns whether a save was started.

        `data`: a JSON-ready dict saved in the same step (a streamed loader's position), read by `restore_data`.

        Device arrays are copied to host before this returns, so `state` may be donated/overwritten
        afterwards. Blocks while a previous save is still in flight. Saving an existing step is a no-op.
        Without `force`, orbax also skips steps <= the newest checkpoint.
        """
        if self.read_only:
            raise RuntimeError(f"{self.directory} was opened read-only: it cannot save")
        step = int(step)
        if step in self._manager.all_steps():  # includes a save of `step` still in flight
            return False
        self.wait()  # orbax would wait for the previous save anyway; this surfaces its failure as RuntimeError
        items = {"state": ocp.args.StandardSave(state)}
        if data is not None:
            items[DATA_ITEM] = ocp.args.JsonSave(dict(data))
        try:
            started = self._manager.save(step, args=ocp.args.Composite(**items), force=force)
        except OSError as e:  # the synchronous part of the save (its folder); an earlier save's failure is wait()'s
            raise CheckpointSaveError(f"the checkpoint of step {step} was not written ({_one_line(e)})") from e
        if started:
            self._last_saved = step
        return started

    def restore(
        self, abstract_state: Any, step: int | None = None, *, with_data: bool = False
    ) -> tuple[Any, int] | tuple[None, None]:
        """Restores into the structure/shapes/dtypes of `abstract_state` (arrays or `jax.ShapeDtypeStruct`s).

        `step=None`: the newest readable checkpoint, skipping unreadable ones with a warning; (None, None) if
        there is no checkpoint at all, RuntimeError if there are some but none is readable. An explicit
        `step` is restored or raises. `with_data`: a step without its data position (a streamed run's) counts
        as unreadable.
        """
        # A leaf without a sharding is read onto this process's first device: orbax would otherwise try the layout
        # it was saved from, which fails for a checkpoint of another device count ("topology mismatch").
        local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None) or local),
            abstract_state,
        )
        if step is not None:
            if not self._is_finalized(step):
                raise FileNotFoundError(f"no finalized checkpoint for step {step} in {self.directory}")
            return self._restore_step(abstract, int(step), with_data), int(step)
        steps = self.all_steps()
        if not steps:
            return None, None
        failures: list[tuple[int, str]] = []
        other_layout = False  # whether some step was written for another state (config or version)
        found = None
        for s in reversed(steps):
            try:
                with _quiet_orbax() as held_back:
                    found = self._restore_step(abstract, s, with_data), s
                break
            except Exception as e:  # noqa: BLE001 - any failure to read means "try the previous one"
                other_layout |= isinstance(e, _LayoutMismatch)
                logged = f" (orbax: {one_line(held_back[0], 400)})" if held_back else ""
                failures.append((s, _one_line(e) + logged))
        # Every process has read before process 0 renames anything, and all must have restored the same step.
        _same_on_every_process(-1 if found is None else found[1], f"the step restored from {self.directory}")
        if found is not None and self.read_only:  # a reader leaves the damaged steps where they are
            for bad, reason in failures:
                logging.warning("Checkpoint step %d in %s is unreadable (%s); restored step %d instead",
                                bad, self.directory, reason, found[1])
            return found
        if found is not None:
            # An older step restores, so the newer ones are damaged: move them out of the way, kept for inspection.
            for bad, reason in failures:
                logging.warning("Checkpoint step %d in %s is unreadable (%s); moved to %s, restored step %d instead",
                                bad, self.directory, reason, self._set_aside(bad), found[1])
            if failures:
                _same_on_every_process(len(failures), "the steps set aside")  # the others reload after the renames
                self._manager.reload()  # forget the steps set aside, so training can save them again
            return found
        # Nothing restores: nothing is moved and the caller is told whether another layout (config or version) was
        # found, or only damage: the fix differs (the other run's flags, or setting the damaged steps aside).
        listed = ""
        if self._listing_messages and "(orbax: " not in failures[0][1]:
            listed = f"; orbax: {one_line(self._listing_messages[0], 400)}"
        reason = f"(step {failures[0][0]}: {failures[0][1]}{listed})"
        if not other_layout:
            raise CheckpointDamagedError(
                f"none of the checkpoints {steps} in {self.directory} can be read {reason}, and none was written "
                "for another state layout: they are damaged"
            )
        raise CheckpointMismatchError(
            f"none of the checkpoints {steps} in {self.directory} can be restored into this run's state {reason}"
        )

    def _set_aside(self, step: int) -> str:
        """Renames an unreadable step out of orbax's view (kept for inspection, never deleted). Process 0 of a job
        renames it; the others, which found the same step unreadable, leave it to process 0 (two renames race)."""
        if jax.process_index() != 0:
            return "unreadable_step_* (by process 0)"
        target = os.path.join(self.directory, f"unreadable_step_{step}")
        suffix = 0
        while os.path.exists(target + (f".{suffix}" if suffix else "")):
            suffix += 1
        target += f".{suffix}" if suffix else ""
        os.rename(os.path.join(self.directory, str(step)), target)
        return target

    def _restore_step(self, abstract: Any, step: int, with_data: bool = False) -> Any:
        _check_stored_layout(self._manager.item_metadata(step)["state"], abstract)
        restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        restored = restored["state"]
        _check_matches(restored, abstract)
        # A damaged (or, where one is needed, missing) data position makes the step unreadable too, so an older
        # one is tried.
        if self.restore_data(step) is None and with_data:
            raise FileNotFoundError(f"step {step} has no data position ({DATA_ITEM}/)")
        return restored

    def restore_data(self, step: int) -> dict | None:
        """The `data` dict saved with `step`, or None if that step has none."""
        if not os.path.isdir(os.path.join(self.directory, str(step), DATA_ITEM)):
            return None
        return self._manager.restore(step, args=ocp.args.Composite(**{DATA_ITEM: ocp.args.JsonRestore()}))[DATA_ITEM]

    def wait(self) -> None:
        """Blocks until the pending async save is committed; raises CheckpointSaveError if it failed.

        orbax keeps re-raising a failed async save on every later wait/save/close, so treat it as fatal.
        """
        step, self._last_saved = self._last_saved, None  # reported once, whatever happens below
        try:
            self._manager.wait_until_finished()
        except Exception as e:
            raise CheckpointSaveError(f"the checkpoint of step {step} was not written ({_one_line(e)})") from e
        if step is not None and not self._is_finalized(step):
            raise CheckpointSaveError(f"the checkpoint of step {step} in {self.directory} did not commit (see log)")

    def close(self) -> None:
        self.wait()
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.close()
        except Exception as e:
            if exc is None:
                raise
            logging.error("Checkpointer.close() failed while handling %r: %s", exc, _one_line(e))
