"""Tests for `jaxgan.data.streaming`: the host-side grain image stream and its exact resume."""

from __future__ import annotations

import json

import grain
import numpy as np
import pytest

from jaxgan.data.images import to_model_range
from jaxgan.data.streaming import ImageBatch, StreamingImages
from tiny_tfds import build_tiny_tfds


class IndexedImages:
    """N records whose uint8 [3, 2, 1] image spells the record's index (low byte, high byte); label = index % 7."""

    def __init__(self, n: int, labelled: bool = True, odd_shape_at: int | None = None):
        self.n, self.labelled, self.odd_shape_at = n, labelled, odd_shape_at

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        image = np.zeros((4 if i == self.odd_shape_at else 3, 2, 1), np.uint8)
        image[0, 0, 0], image[0, 1, 0], image[1:, :, 0] = i % 256, i // 256, 255
        return {"image": image, "label": i % 7} if self.labelled else {"image": image}


def indices_of(images: np.ndarray) -> np.ndarray:
    """The record indices spelled by float images [..., 3, 2, 1] in [-1, 1]."""
    pixels = np.rint((images + 1.0) / 2.0 * 255.0).astype(np.int64)
    return pixels[..., 0, 0, 0] + 256 * pixels[..., 0, 1, 0]


def take(loader: StreamingImages, n: int) -> list[ImageBatch]:
    return [next(loader) for _ in range(n)]


def assert_same_batches(got: list[ImageBatch], want: list[ImageBatch]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.images.dtype == b.images.dtype and a.images.tobytes() == b.images.tobytes()  # bitwise
        assert (a.labels is None) == (b.labels is None)
        if a.labels is not None:
            np.testing.assert_array_equal(a.labels, b.labels)


def test_batches_are_model_range_images_with_their_labels():
    loader = StreamingImages(IndexedImages(20), 6, seed=3, num_threads=2, prefetch_batches=2)
    assert loader.image_shape == (3, 2, 1) and loader.batch_size == 6 and loader.has_labels
    batch = next(loader)
    assert batch.images.shape == (6, 3, 2, 1) and batch.images.dtype == np.float32
    assert batch.labels.shape == (6,) and batch.labels.dtype == np.int32
    ids = indices_of(batch.images)
    np.testing.assert_array_equal(batch.labels, ids % 7)  # each label travels with its own image
    # The uint8 -> [-1, 1] map is the device one: the known pixels come out exactly.
    expected = np.stack([IndexedImages(20)[int(i)]["image"] for i in ids])
    np.testing.assert_array_equal(batch.images, np.asarray(to_model_range(expected)))
    assert batch.images[:, 1:].min() == 1.0

    unlabelled = StreamingImages(IndexedImages(20, labelled=False), 6, num_threads=0)
    assert not unlabelled.has_labels and next(unlabelled).labels is None
    # label_key=None ignores labels that are there.
    assert next(StreamingImages(IndexedImages(20), 6, label_key=None, num_threads=0)).labels is None


def test_each_epoch_covers_every_example_once_and_epochs_are_reshuffled():
    # 20 records in batches of 6: batches straddle epoch boundaries; the record stream is still epoch by epoch.
    loader = StreamingImages(IndexedImages(20), 6, seed=0, num_threads=2)
    stream = np.concatenate([indices_of(b.images) for b in take(loader, 10)])  # 60 positions = 3 epochs
    epochs = stream.reshape(3, 20)
    for epoch in epochs:
        np.testing.assert_array_equal(np.sort(epoch), np.arange(20))
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    assert not np.array_equal(epochs[0], np.arange(20))  # shuffled at all

    # A finite stream: floor(20 * 2 / 6) = 6 batches, the partial 7th dropped.
    finite = StreamingImages(IndexedImages(20), 6, seed=0, num_epochs=2, num_threads=0)
    assert finite.num_batches == 6
    assert_same_batches(take(finite, 5), [ImageBatch(b.images, b.labels) for b in take(
        StreamingImages(IndexedImages(20), 6, seed=0, num_threads=0), 5)])
    with pytest.raises(StopIteration):
        finite.next_chunk(2)  # one batch left: refused without consuming it
    next(finite)
    with pytest.raises(StopIteration):
        next(finite)


def test_same_seed_same_stream_other_seed_other_order():
    def stream(seed, threads):
        loader = StreamingImages(IndexedImages(50), 10, seed=seed, num_threads=threads, prefetch_batches=3)
        return np.concatenate([indices_of(b.images) for b in take(loader, 10)])  # two epochs

    reference = stream(7, 0)
    np.testing.assert_array_equal(stream(7, 3), reference)  # read-ahead threads do not change the order
    other = stream(8, 0)
    assert not np.array_equal(other[:50], reference[:50])
    np.testing.assert_array_equal(np.sort(other[:50]), np.arange(50))
    # grain's per-epoch seed is seed + epoch; the seed is hashed first, so seed 8's first epoch is not seed 7's second.
    assert not np.array_equal(other[:50], reference[50:])


@pytest.mark.parametrize("consumed", [2, 4])  # resume inside the first epoch, and past an epoch boundary
def test_exact_resume_from_state(consumed):
    loader = StreamingImages(IndexedImages(20), 6, seed=11, num_threads=2, prefetch_batches=4)
    take(loader, consumed)
    state = loader.get_state()
    assert state["next_batch"] == consumed
    expected = take(loader, 5)

    # Through JSON, as a checkpoint stores it.
    resumed = StreamingImages(IndexedImages(20), 6, seed=11, num_threads=1, prefetch_batches=1)
    resumed.set_state(json.loads(json.dumps(state)))
    assert_same_batches(take(resumed, 5), expected)
    assert resumed.get_state() == loader.get_state()

    # next_chunk(T) is T batches stacked, and leaves the same state as T next() calls.
    chunked = StreamingImages(IndexedImages(20), 6, seed=11, num_threads=0)
    chunked.set_state(state)
    chunk = chunked.next_chunk(5)
    assert chunk.images.shape == (5, 6, 3, 2, 1) and chunk.labels.shape == (5, 6)
    assert_same_batches([ImageBatch(chunk.images[t], chunk.labels[t]) for t in range(5)], expected)
    assert chunked.get_state() == loader.get_state()


def test_exact_resume_through_an_orbax_checkpoint(tmp_path):
    """The loader's position saved beside the train state by the runner's Checkpointer resumes the same batches;
    a step whose saved position is damaged counts as unreadable, so the previous step is restored instead."""
    from jaxgan.checkpoint import Checkpointer

    loader = StreamingImages(IndexedImages(20), 6, seed=5, num_threads=2)
    train_state = {"w": np.arange(4, dtype=np.float32), "step": np.asarray(0, np.int32)}
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        take(loader, 2)
        checkpointer.save(2, {**train_state, "step": np.asarray(2, np.int32)}, data=loader.get_state())
        after_2 = take(loader, 1)
        checkpointer.save(3, {**train_state, "step": np.asarray(3, np.int32)}, data=loader.get_state())
    expected = take(loader, 4)

    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        restored, step = checkpointer.restore(train_state)
        assert step == 3 and int(restored["step"]) == 3
        np.testing.assert_array_equal(restored["w"], train_state["w"])
        resumed = StreamingImages(IndexedImages(20), 6, seed=5, num_threads=2)
        resumed.set_state(checkpointer.restore_data(step))
    assert_same_batches(take(resumed, 4), expected)

    # Damage step 3's data position: step 2 restores, and its position gives the batches that followed it.
    for file in (tmp_path / "ckpt" / "3" / "data").iterdir():
        file.write_text('{"next_b')
    with Checkpointer(tmp_path / "ckpt") as checkpointer:
        restored, step = checkpointer.restore(train_state)
        assert step == 2 and int(restored["step"]) == 2
        resumed = StreamingImages(IndexedImages(20), 6, seed=5, num_threads=2)
        resumed.set_state(checkpointer.restore_data(step))
    assert_same_batches(take(resumed, 1), after_2)
    assert (tmp_path / "ckpt" / "unreadable_step_3").is_dir()


def test_processes_split_every_global_batch_disjointly():
    whole = take(StreamingImages(IndexedImages(30), 6, seed=2, num_threads=0), 6)
    parts = [
        take(StreamingImages(IndexedImages(30), 6, seed=2, num_threads=2,
                             shard_options=grain.sharding.ShardOptions(shard_index=p, shard_count=2)), 6)
        for p in range(2)
    ]
    for g, batch in enumerate(whole):
        first, second = parts[0][g], parts[1][g]
        assert first.images.shape == (3, 3, 2, 1)
        a, b = set(indices_of(first.images)), set(indices_of(second.images))
        assert len(a) == len(b) == 3 and not a & b
        # Process 0 reads the first half of the global batch, process 1 the second: together exactly that batch.
        assert_same_batches([ImageBatch(np.concatenate([first.images, second.images]),
                                        np.concatenate([first.labels, second.labels]))], [batch])

    # A state saved by one process count resumes with another: the global batches do not depend on the split.
    single = StreamingImages(IndexedImages(30), 6, seed=2, num_threads=0)
    take(single, 4)
    resumed = StreamingImages(IndexedImages(30), 6, seed=2, num_threads=0,
                              shard_options=grain.sharding.ShardOptions(shard_index=2, shard_count=3))
    resumed.set_state(single.get_state())
    np.testing.assert_array_equal(next(resumed).images, whole[4].images[4:6])


def _build_tiny_tfds(data_dir):
    return build_tiny_tfds(data_dir, {"train": range(10, 19)}, "JaxganStreamingTiny")


def test_reads_a_tfds_data_source(tmp_path):
    tfds = _build_tiny_tfds(tmp_path)
    source = tfds.data_source("jaxgan_streaming_tiny", split="train", data_dir=tmp_path, download=False)
    assert len(source) == 9
    loader = StreamingImages(source, 3, seed=1, num_epochs=1, num_threads=2)
    assert loader.image_shape == (4, 4, 1) and loader.has_labels and loader.num_batches == 3
    batches = list(loader)
    images = np.concatenate([b.images for b in batches])
    labels = np.concatenate([b.labels for b in batches])
    ids = np.rint((images + 1) / 2 * 255).astype(np.int64)
    assert np.all(ids == ids[:, :1, :1, :1])  # every pixel of an image is its id
    ids = ids[:, 0, 0, 0]
    assert sorted(ids) == list(range(10, 19))  # one epoch: every record once
    np.testing.assert_array_equal(labels, ids % 3)


def _one_line_error(match, build):
    with pytest.raises(ValueError, match=match) as info:
        build()
    assert "\n" not in str(info.value)


def test_validation_errors_are_one_line_and_name_the_problem():
    source = IndexedImages(12)
    _one_line_error("global_batch_size 6 is not divisible by the process count 4", lambda: StreamingImages(
        source, 6, shard_options=grain.sharding.ShardOptions(shard_index=0, shard_count=4)))

    class NoImage(IndexedImages):
        def __getitem__(self, i):
            return {"pixels": super().__getitem__(i)["image"], "label": 0}

    _one_line_error(r"no 'image' key \(record 0 has: label, pixels\)", lambda: StreamingImages(NoImage(12), 4))
    _one_line_error(r"record 0: expected a uint8 image \[H, W, C\]", lambda: StreamingImages(
        [{"image": np.zeros((2, 2, 2, 1), np.uint8)}], 1))
    _one_line_error("the image source is empty", lambda: StreamingImages([], 1))
    _one_line_error("1 epoch\\(s\\) of 12 records make no batch of 16", lambda: StreamingImages(
        source, 16, num_epochs=1))

    # A differently shaped image is found when its batch is read, also from a read-ahead thread.
    odd = StreamingImages(IndexedImages(4, odd_shape_at=3), 4, num_threads=2)
    _one_line_error(r"record 3: image uint8\[4, 2, 1\] differs from record 0's uint8\[3, 2, 1\]", lambda: next(odd))

    loader = StreamingImages(source, 4, seed=1, num_threads=0)
    _one_line_error("different stream: seed 1 != 2", lambda: StreamingImages(source, 4, seed=2).set_state(
        loader.get_state()))
    _one_line_error("different stream: global_batch_size 4 != 6", lambda: StreamingImages(source, 6, seed=1).set_state(
        loader.get_state()))
    _one_line_error("not a StreamingImages state: missing next_batch", lambda: loader.set_state({"step": 3}))
    for _ in range(3):
        next(loader)
    assert loader.get_state()["grain"]["next_index"] == loader.get_state()["next_batch"] == 3
    torn = {**loader.get_state(), "next_batch": 2}
    _one_line_error(r"data state is inconsistent: next_batch 2 != grain's next_index 3",
                    lambda: StreamingImages(source, 4, seed=1).set_state(torn))


def test_a_short_read_and_a_non_integer_label_are_refused_not_handed_out():
    class Short(IndexedImages):  # a source whose batched read drops its last record
        def __getitems__(self, keys):
            return [self[k] for k in keys[:-1]]

    _one_line_error(r"the source returned 5 records for 6 keys", lambda: next(StreamingImages(Short(20), 6, num_threads=0)))

    class FloatLabel(IndexedImages):  # 7.9 would have become 7
        def __getitem__(self, i):
            return {**super().__getitem__(i), "label": i + 0.9}

    _one_line_error(r"record \d+: label \d+\.9 is not an integer", lambda: next(StreamingImages(FloatLabel(20), 4, num_threads=0)))
    # numpy integers and 0-d integer arrays, as TFDS records hold them, are labels
    class NumpyLabel(IndexedImages):
        def __getitem__(self, i):
            return {**super().__getitem__(i), "label": np.asarray(i % 7, np.int64)}

    batch = next(StreamingImages(NumpyLabel(20), 4, num_threads=0))
    np.testing.assert_array_equal(batch.labels, indices_of(batch.images) % 7)

    class Lazy(IndexedImages):  # a batched read that returns an iterator, not a list
        def __getitems__(self, keys):
            return map(self.__getitem__, keys)

    batch = next(StreamingImages(Lazy(20), 4, num_threads=0))
    np.testing.assert_array_equal(batch.labels, indices_of(batch.images) % 7)
