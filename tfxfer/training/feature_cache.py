"""Frozen work computed once: the activations at a block boundary, cached per data split, extractor and cut.

While the first k blocks of an extractor are frozen, and no random augmentation runs before them, their output for
an input never changes. `FeatureCache` computes it once per (split, extractor prefix, k) and hands it out as arrays;
the blocks after the cut and the head then train on those arrays instead of on images. Deep feature extraction
caches the extractor's output (every trial of a search then trains only a head, in seconds); for Keras extractors
any block boundary is a true cut and can be cached, and so is any boundary of a TF Hub SavedModel where its graph can
be cut (see `tfxfer.extractors.hub_cuts`; `extractor.cache_cuts` lists them). Activations made of several tensors (a
sequence and its mask) are cached as one, the extra tensors appended as channels, which the suffix splits again.

Keys cover everything the activations depend on: the split's examples (paths with size and modification time, or
the texts), labels, image size, value range and resize method, the extractor's source, the cut, and the bytes of
every weight before the cut. A changed data set, extractor or cut never reads a stale cache.
"""

import hashlib
import logging
import os
import sys
import uuid
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

log = logging.getLogger(__name__)

#: Caches larger than this are written to disk (when the cache has a folder) and memory-mapped.
MEMORY_LIMIT_BYTES = 2 * 1024**3


def cache_refusal(extractor, data, k):
    """Why the activations after `k` frozen blocks cannot be cached for `data`, or None when they can."""
    if k not in extractor.cache_cuts:
        return (f"{extractor.source!r} can only be cached after blocks {extractor.cache_cuts}; {k} frozen blocks "
                "train end to end")
    if not hasattr(data, "unbatched"):
        return "the data is a bare dataset or arrays (load it with tfxfer.load_images/load_text to cache features)"
    if getattr(data, "augmented", False):
        return ("random augmentation runs before the extractor, so its output changes every epoch; load the data "
                "with augment=False to cache (the usual trade: augmentation helps small sets, caching makes a "
                "search over freeze depth affordable)")
    return None


def data_fingerprint(data, split):
    """A digest of one split's examples, labels and decoding."""
    inputs, labels = data.examples(split)
    digest = hashlib.sha256(repr((data.modality, data.image_size, data.value_range,
                                  getattr(data, "interpolation", None), split)).encode())
    digest.update(np.ascontiguousarray(labels).tobytes())
    for item in inputs:
        if data.modality == "image":
            status = os.stat(item)
            item = f"{item}\0{status.st_size}\0{status.st_mtime_ns}"
        digest.update(f"{item}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class FeatureCache:
    """Activations at block boundaries, in memory and optionally on disk, shared by every model that asks.

    Args:
        directory: A folder for caches on disk: they outlive the process (a resumed or distributed search reuses
            them) and let caches larger than memory stream from memory-mapped files. None keeps them in memory.
        memory_limit_bytes: Caches larger than this are not kept in memory (they need a `directory`).
        progress: Show a progress bar while computing.

    Attributes:
        hits: How many requests were answered from the cache.
        misses: How many requests computed activations.

    Example:
        >>> cache = FeatureCache(progress=False)
        >>> features, labels = cache.features(extractor, data, extractor.n_blocks, "train")
        >>> features.shape, labels.shape, cache.misses
        ((18, 8), (18,), 1)
    """

    def __init__(self, directory=None, memory_limit_bytes=MEMORY_LIMIT_BYTES, progress=True):
        self.directory = None if directory is None else Path(directory)
        self.memory_limit_bytes = memory_limit_bytes
        self.progress = progress
        self.hits = 0
        self.misses = 0
        self._memory = {}
        self._datasets = {}

    def key(self, extractor, data, k, split):
        """The cache key of one split's activations after `k` blocks."""
        return hashlib.sha256(f"{extractor.fingerprint(k)}|{data_fingerprint(data, split)}".encode()).hexdigest()[:32]

    def features(self, extractor, data, k, split):
        """The activations after the first `k` blocks for one split, and its labels.

        Args:
            extractor: The `Extractor` (its first `k` blocks must stay frozen while the result is used).
            data: A `DataSplits` from `tfxfer.load_images`/`load_text`.
            k: Frozen blocks; one of `extractor.cache_cuts`.
            split: `"train"`, `"validation"` or `"test"`.

        Returns:
            `(features, labels)` as NumPy arrays (features may be memory-mapped), in the split's example order;
            None when the split is empty.

        Raises:
            ValueError: the activations cannot be cached (see `cache_refusal`).
        """
        reason = cache_refusal(extractor, data, k)
        if reason:
            raise ValueError(f"Cannot cache features: {reason}.")
        if not data.sizes.get(split):
            return None
        key = self.key(extractor, data, k, split)
        if key in self._memory:
            self.hits += 1
            return self._memory[key]
        stored = self._load(key)
        if stored is None:
            self.misses += 1
            stored = self._compute(extractor, data, k, split, key)
        else:
            self.hits += 1
        if stored[0].nbytes <= self.memory_limit_bytes:
            self._memory[key] = stored
        return stored

    def dataset(self, extractor, data, k, split):
        """The cached activations of one split as a batched `tf.data.Dataset` over one copy of them in TensorFlow's
        memory, however many models train on them.

        The training split is shuffled every epoch as `DataSplits.train` is (same seed), each call's dataset from the
        seed's first order: a model sees the same batches whatever trained before it in the process (a search's
        trial scored otherwise in a resumed run, a hostile tester's find). The others keep their order.

        Returns:
            The dataset and the shape of one example's activations, or None when the split is empty.
        """
        stored = self.features(extractor, data, k, split)
        if stored is None:
            return None
        key = self.key(extractor, data, k, split)
        if key not in self._datasets:
            self._datasets[key] = examples_dataset(*stored)
        seed = data.seed if split == "train" else None
        return batched(self._datasets[key], stored, batch_size=data.batch_size, shuffle_seed=seed), stored[0].shape[1:]

    def _paths(self, key):
        folder = self.directory / key
        return folder, folder / "features.npy", folder / "labels.npy"

    def _load(self, key):
        if self.directory is None:
            return None
        folder, features, labels = self._paths(key)
        if not (features.is_file() and labels.is_file()):
            return None
        return np.load(features, mmap_mode="r"), np.load(labels)

    def _compute(self, extractor, data, k, split, key):
        prefix = extractor.prefix(k)
        dataset = data.unbatched(split).batch(data.batch_size).prefetch(tf.data.AUTOTUNE)
        total = data.sizes[split]
        bar = keras.utils.Progbar(total, unit_name="example") if self.progress and _interactive() else None
        if bar is not None:
            print(f"Caching activations after block {k} of {extractor.n_blocks} ({split}, {total} examples)")
        features, labels, done = None, [], 0
        for inputs, batch_labels in dataset:
            output = prefix(inputs).numpy()
            if features is None:
                shape = (total, *output.shape[1:])
                if self.directory is not None and np.prod(shape) * output.itemsize > self.memory_limit_bytes:
                    features = self._disk_array(key, shape, output.dtype)
                else:
                    features = np.empty(shape, output.dtype)
            features[done : done + len(output)] = output
            labels.append(batch_labels.numpy())
            done += len(output)
            if bar is not None:
                bar.update(done)
        labels = np.concatenate(labels)
        if self.directory is not None:
            features = self._store(key, features, labels)
        return features, labels

    def _disk_array(self, key, shape, dtype):
        """A memory-mapped array in the cache folder, its disk space reserved up front.

        A memory-mapped file is sparse: without the reservation, the first page that finds a full disk kills the
        process with SIGBUS instead of raising an error.
        """
        folder, path, _ = self._paths(key)
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        partial = _partial(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            array = np.lib.format.open_memmap(partial, "w+", dtype, shape)
            with open(partial, "r+b") as file:
                os.posix_fallocate(file.fileno(), 0, os.path.getsize(partial))
        except OSError as error:
            raise OSError(f"Cannot write the feature cache in {self.directory}: {error.strerror or error}. It needs "
                          f"{size} bytes; free some space or give FeatureCache another directory.") from None
        return array

    def _store(self, key, features, labels):
        """Writes the arrays into the cache folder and returns the features to use.

        Each writer writes files of its own and renames them into place, labels first: readers (`_load` wants
        both) never see half an entry, and processes filling the same entry at once (the workers of a distributed
        search share the folder) each put a whole, identical copy in place.
        """
        folder, path, labels_path = self._paths(key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial = _partial(labels_path)
            np.save(partial, labels)
            os.replace(partial, labels_path)
            if isinstance(features, np.memmap):
                features.flush()
                partial = features.filename
            else:
                partial = _partial(path)
                np.save(partial, features)
            os.replace(partial, path)
        except OSError as error:
            raise OSError(f"Cannot write the feature cache in {self.directory}: {error.strerror or error}. It needs "
                          f"{features.nbytes + labels.nbytes} bytes; free some space or give FeatureCache another "
                          "directory.") from None
        return np.load(path, mmap_mode="r") if isinstance(features, np.memmap) else features


def _partial(path):
    """A file name next to `path` that no other writer, thread or process, uses."""
    return f"{path}.{os.getpid()}-{uuid.uuid4().hex[:12]}.partial.npy"


def examples_dataset(features, labels):
    """The examples of cached activations as `tf.data`, unbatched: the arrays themselves, or (memory-mapped, larger than memory)
    their indices."""
    if isinstance(features, np.memmap):
        return tf.data.Dataset.range(len(labels))
    return tf.data.Dataset.from_tensor_slices((features, labels))


def batched(examples, stored, *, batch_size, shuffle_seed=None):
    """`examples_dataset(*stored)` shuffled each epoch the way `DataSplits.train` is, from `shuffle_seed`'s first
    order (unless None), and batched; batches of a memory-mapped file gathered from it."""
    features, labels = stored
    if shuffle_seed is not None:
        examples = examples.shuffle(len(labels), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = examples.batch(batch_size)
    if isinstance(features, np.memmap):
        # Larger than memory: gather each batch from the memory-mapped file instead of embedding it in the graph.
        gather = lambda index: (features[index], labels[index])  # noqa: E731
        dataset = dataset.map(
            lambda index: tf.numpy_function(gather, [index], [tf.as_dtype(features.dtype), tf.as_dtype(labels.dtype)]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        shape = (None, *features.shape[1:])
        dataset = dataset.map(lambda x, y: (tf.ensure_shape(x, shape), tf.ensure_shape(y, (None, *labels.shape[1:]))))
    return dataset.prefetch(tf.data.AUTOTUNE)


def _interactive():
    """Whether progress bars can redraw: a terminal, or a notebook (pipes and logs get one line instead)."""
    return sys.stdout.isatty() or "ipykernel" in sys.modules
