"""Image data streamed from the host, for data sets that do not fit in device memory.

The in-memory image data sets (`jaxgan.data.images`) live on device and each step draws its batch there from the
step's key, so the data position of a run is its step number. Data too large for that are read on the host
instead: `StreamingImages` reads a random-access source (a `tfds.data_source(...)` over array_record files, or
anything with `__len__` and `__getitem__` returning `{"image": uint8 [H, W, C], "label": int}`) through a grain
pipeline (https://google-grain.readthedocs.io) and hands out numpy batches in the models' range.

The stream is a pure function of (seed, number of records, global batch size, num_epochs): record position s of
the stream is example `shuffle_{epoch}(s mod N)` with epoch = s div N, a fresh permutation per epoch (grain's
`index_shuffle`, seeded with the run's seed and the epoch); global batch g is positions g*B .. g*B + B - 1, so
batches run across epoch boundaries and only a finite stream's last partial batch is dropped. Process p of P
reads only its slice g*B + p*B/P .. g*B + (p+1)*B/P - 1 of each global batch. The whole position is therefore one
integer, the number of global batches handed out, the same on every process: `get_state()` returns it (with the
settings that define the stream, checked on `set_state`) as a JSON-ready dict, saved with orbax beside the train
state so a resumed run reads exactly the batches the uninterrupted one would have (also after a change in the
process count, since a global batch does not depend on how it is split).

Checkpointing with the train state, in one step: `jaxgan.checkpoint.Checkpointer.save(step, state,
data=loader.get_state())`, and `loader.set_state(checkpointer.restore_data(step))` on resume. The position is
saved as orbax JSON, which the primary process writes, which is right here because the state is global. (grain's
own `grain.checkpoint.CheckpointSave` writes one file per process and needs a grain iterator, not this loader.)
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import grain
import numpy as np

from jaxgan.data.images import integer_label

__all__ = ["ImageBatch", "StreamingImages"]

# The settings that define the stream; a state only resumes a loader that agrees on all of them.
_STREAM_KEYS = ("seed", "num_records", "global_batch_size", "num_epochs")


class ImageBatch(NamedTuple):
    """A batch on the host: `images` float32 in [-1, 1], `labels` int32, or None for unlabelled data.

    From `next()`: images `[B, H, W, C]`, labels `[B]`, B the per-process batch size. From `next_chunk(T)`: images
    `[T, B, H, W, C]`, labels `[T, B]`.
    """

    images: np.ndarray
    labels: np.ndarray | None


def _to_model_range(images: np.ndarray) -> np.ndarray:
    # The table of `images.to_model_range`, so host- and device-drawn batches hold the same floats.
    from jaxgan.data.images import MODEL_RANGE

    return MODEL_RANGE[images.astype(np.uint8, copy=False)]


class StreamingImages:
    """A seeded, resumable, per-process stream of image batches read on the host with grain.

    Args:
        source: random access to the N examples: `len(source)` and `source[i]` (or `source.__getitems__(list)`,
            used when present) giving dicts with a uint8 `[H, W, C]` (or `[H, W]`) image under `image_key` and,
            for labelled data, an integer under `label_key`. E.g. `tfds.data_source(name, split="train",
            data_dir=...)`, which decodes with NumPy/Pillow, so no TensorFlow at train time.
        global_batch_size: B, the batch of one training step summed over all processes.
        seed: the shuffle seed, >= 0. Each epoch is shuffled with a seed derived from (seed, epoch); seeds are
            hashed first (numpy `SeedSequence`), since grain's per-epoch seed is seed + epoch and seeds 0 and 1
            would otherwise give the same orders one epoch apart.
        num_epochs: passes over the data, or None for an endless stream. A finite stream has
            floor(N * num_epochs / B) batches.
        shard_options: which slice of every global batch this process reads: `grain.sharding.ShardOptions(
            shard_index=process_index, shard_count=process_count)`, `grain.sharding.ShardByJaxProcess()`, or
            None for one process. Its `drop_remainder` is not used (global batches are never split unevenly).
        image_key: the image field of a record.
        label_key: the integer label field, or None to ignore labels. Records have labels iff record 0 has this
            field; then every record must.
        num_threads: threads that read (and decode) batches ahead of use; 0 reads in the calling thread.
        prefetch_batches: batches read ahead (host memory: this many times B/P images).

    Raises:
        ValueError (one line): an empty source, B not divisible by the process count, a finite stream shorter than
            one batch, record 0 without `image_key` or with an image that is not uint8 [H, W, C] with C in 1, 3, 4.
            Reading a batch raises ValueError for a record without the image (or label) or whose image shape
            differs from record 0's.
    """

    def __init__(
        self,
        source: Any,
        global_batch_size: int,
        *,
        seed: int = 0,
        num_epochs: int | None = None,
        shard_options: grain.sharding.ShardOptions | None = None,
        image_key: str = "image",
        label_key: str | None = "label",
        num_threads: int = 4,
        prefetch_batches: int = 8,
    ):
        shard = shard_options if shard_options is not None else grain.sharding.NoSharding()
        num_records = len(source)
        if num_records == 0:
            raise ValueError("the image source is empty")
        if global_batch_size < 1:
            raise ValueError(f"global_batch_size must be >= 1, got {global_batch_size}")
        if global_batch_size % shard.shard_count:
            raise ValueError(
                f"global_batch_size {global_batch_size} is not divisible by the process count {shard.shard_count}"
            )
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if num_epochs is not None and num_epochs < 1:
            raise ValueError(f"num_epochs must be >= 1 or None (endless), got {num_epochs}")
        if num_epochs is not None and num_records * num_epochs < global_batch_size:
            raise ValueError(
                f"{num_epochs} epoch(s) of {num_records} records make no batch of {global_batch_size}"
            )
        if num_threads < 0 or prefetch_batches < 0:
            raise ValueError(f"num_threads and prefetch_batches must be >= 0, got {num_threads}, {prefetch_batches}")

        self.source = source
        self.seed = int(seed)
        self.num_records = num_records
        self.global_batch_size = int(global_batch_size)
        self.num_epochs = None if num_epochs is None else int(num_epochs)
        self.process_index, self.process_count = shard.shard_index, shard.shard_count
        self.batch_size = self.global_batch_size // self.process_count  # per process
        self._image_key, self._get_many = image_key, getattr(source, "__getitems__", None)

        first = source[0]
        if image_key not in first:
            raise ValueError(
                f"source records have no {image_key!r} key "
                f"(record 0 has: {', '.join(map(str, sorted(first))) or 'none'})"
            )
        image = self._image_array(first, 0)
        if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or image.dtype != np.uint8:
            raise ValueError(
                f"record 0: expected a uint8 image [H, W, C] with C in 1, 3, 4, got {image.dtype}{list(image.shape)}"
            )
        self.image_shape: tuple[int, int, int] = tuple(image.shape)
        self._label_key = label_key if label_key is not None and label_key in first else None
        self.has_labels = self._label_key is not None

        # Per-epoch seed = grain seed + epoch (grain's ShuffleMapDataset), taken mod 2**32.
        grain_seed = int(np.random.SeedSequence(self.seed).generate_state(1, np.uint32)[0])
        order = grain.MapDataset.range(num_records).shuffle(seed=grain_seed).repeat(self.num_epochs)
        # Batching the record *indices* (cheap) before reading lets each process read only its own slice.
        batches = order.batch(self.global_batch_size, drop_remainder=True).map(self._read_batch)
        self.num_batches: int | None = None if self.num_epochs is None else len(batches)
        self._dataset = batches.to_iter_dataset(
            grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch_batches)
        )
        self._iterator = None
        self._next_batch = 0

    # -- reading -----------------------------------------------------------------------------------------------

    def _image_array(self, record: Mapping[str, Any], key: int) -> np.ndarray:
        if self._image_key not in record:
            keys = ", ".join(map(str, sorted(record)))
            raise ValueError(f"record {key} has no {self._image_key!r} key (has: {keys})")
        image = np.asarray(record[self._image_key])
        return image[..., None] if image.ndim == 2 else image  # grayscale [H, W] gains a channel axis

    def _read_batch(self, global_indices: np.ndarray) -> ImageBatch:
        """Reads this process's slice of one global batch of record indices."""
        start = self.process_index * self.batch_size
        keys = [int(k) for k in global_indices[start : start + self.batch_size]]
        records = list(self._get_many(keys)) if self._get_many is not None else [self.source[k] for k in keys]
        if len(records) != len(keys):  # rows left unfilled would be handed out as images
            raise ValueError(f"the source returned {len(records)} records for {len(keys)} keys ({keys[0]}, ...)")
        images = np.empty((self.batch_size, *self.image_shape), np.uint8)
        labels = np.empty((self.batch_size,), np.int32) if self.has_labels else None
        for row, (key, record) in enumerate(zip(keys, records)):
            image = self._image_array(record, key)
            if image.shape != self.image_shape or image.dtype != np.uint8:
                raise ValueError(
                    f"record {key}: image {image.dtype}{list(image.shape)} differs from record 0's "
                    f"uint8{list(self.image_shape)}; all images must share one shape and dtype"
                )
            images[row] = image
            if labels is not None:
                if self._label_key not in record:
                    raise ValueError(f"record {key} has no {self._label_key!r} key, but record 0 has a label")
                labels[row] = integer_label(record[self._label_key], f"record {key}")
        return ImageBatch(_to_model_range(images), labels)

    def _iter(self):
        if self._iterator is None:
            self._iterator = iter(self._dataset)
        return self._iterator

    def __iter__(self) -> StreamingImages:
        return self

    def __next__(self) -> ImageBatch:
        """The next batch: images float32 [B/P, H, W, C] in [-1, 1], labels int32 [B/P] or None."""
        batch = next(self._iter())
        self._next_batch += 1
        return batch

    def next_chunk(self, num_steps: int) -> ImageBatch:
        """The next `num_steps` batches stacked for a fused multi-step program: images [T, B/P, H, W, C].

        Same batches and same resulting state as `num_steps` calls of `next()`. A finite stream with fewer than
        `num_steps` batches left raises StopIteration without consuming any.
        """
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if self.num_batches is not None and self._next_batch + num_steps > self.num_batches:
            raise StopIteration(f"{self.num_batches - self._next_batch} batches left, {num_steps} asked for")
        batches = [next(self) for _ in range(num_steps)]
        labels = np.stack([b.labels for b in batches]) if self.has_labels else None
        return ImageBatch(np.stack([b.images for b in batches]), labels)

    # -- state -------------------------------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        """The stream position as a JSON-serialisable dict: the number of global batches handed out so far, the
        settings that define the stream, and grain's iterator state. Identical on every process."""
        return {
            "next_batch": self._next_batch,
            **{key: getattr(self, key) for key in _STREAM_KEYS},
            "grain": self._iter().get_state(),
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Continues the stream from a `get_state()` dict (of any process, or of another process count).

        Raises:
            ValueError (one line): the state belongs to a different stream (seed, number of records, global batch
                size or num_epochs differ), is not a loader state, or its two positions disagree.
        """
        missing = [key for key in ("next_batch", "grain", *_STREAM_KEYS) if key not in state]
        if missing:
            raise ValueError(f"not a StreamingImages state: missing {', '.join(missing)}")
        different = [f"{key} {state[key]!r} != {getattr(self, key)!r}" for key in _STREAM_KEYS
                     if state[key] != getattr(self, key)]
        if different:
            raise ValueError(f"data state is from a different stream: {'; '.join(different)} (saved != this loader)")
        # grain's position counts global batches too; the two disagree only in a torn or edited state
        if state["grain"].get("next_index", state["next_batch"]) != state["next_batch"]:
            raise ValueError(
                f"data state is inconsistent: next_batch {state['next_batch']} != grain's next_index "
                f"{state['grain']['next_index']}"
            )
        self._iter().set_state(dict(state["grain"]))
        self._next_batch = int(state["next_batch"])

    def close(self) -> None:
        """Stops the read-ahead threads; the loader cannot be used afterwards."""
        if self._iterator is not None:
            self._iterator.close()

