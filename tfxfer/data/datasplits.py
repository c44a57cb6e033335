"""What the loaders return: a `tf.data` pipeline per split, the task, counts, and what was skipped."""

import functools
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfxfer.data.decoding import decode_image, path_tensor
from tfxfer.data.errors import DataError, count_reasons
from tfxfer.data.stratify import SPLITS


_CACHE_CHOICES = "pass another cache folder, cache=True (in memory) or cache=False."

#: With an on-disk image cache, the default training shuffle buffer holds at most this many bytes of decoded images.
DISK_CACHE_SHUFFLE_BYTES = 256 * 1024**2


class DataSplits:
    """Train, validation and test data as batched, prefetched `tf.data` pipelines, with the task they pose.

    Made by `load_images` and `load_text`. Each dataset yields `(inputs, labels)` batches: images as float32
    `[batch, height, width, 3]` in `value_range`, texts as tf.string `[batch]`; labels as `task.label_encoding` says
    (int32 `[batch]`, float32 `[batch, num_classes]`, or float32 `[batch]`/`[batch, targets]`).

    The training pipeline reshuffles every epoch (seeded) and applies `augmentation` when there is one; validation
    and test are in a fixed order and never augmented. With an on-disk image cache (data larger than memory), the
    cache holds the training images in one random order, and each epoch reshuffles them through a buffer of at most
    `DISK_CACHE_SHUFFLE_BYTES` of decoded images unless `shuffle_buffer` says otherwise.

    Attributes:
        modality: `"image"` or `"text"`.
        task: The `Task` (type, class names, number of outputs, label encoding, class weights).
        counts: `{split: {class name: examples}}` (for multi-label, examples with that label; for regression, the
            number of examples under each target name); `{}` for an empty split.
        skipped: `Skipped` records of every file or row left out or not read, with the reason.
        notes: Things worth knowing about examples that were used (e.g. JPEGs whose EXIF rotation is not applied).
        origins: `{split: where it came from}`, e.g. `"folder val/"` or
            `"20% of all examples, stratified by label, seed 0"`.
        image_size: `(height, width)` of the images, None for text.
        value_range: `(low, high)` of the pixel values, None for text.
        augmentation: The Keras layer applied to training batches, or None.
        batch_size: Examples per batch.
        cache: False, True (decoded images kept in memory), or the folder of an on-disk cache.
        seed: The seed of splits, shuffling and augmentation.
        joined_columns: For texts read from table columns other than the default `text` column (one, or several
            joined), `{"columns": [...], "separator": ...}` (an export records it, and its `predict` reads a CSV's
            columns the same way); else None.
    """

    def __init__(self, *, modality, task, examples, origins, skipped, batch_size, seed, notes=(), image_size=None,
                 value_range=None, interpolation="bilinear", augmentation=None, cache=False, shuffle_buffer=None,
                 joined_columns=None):
        self.modality = modality
        self.task = task
        self._examples = examples
        self.origins = origins
        self.skipped = list(skipped)
        self.notes = list(notes)
        self.batch_size = batch_size
        self.seed = seed
        self.image_size = image_size
        self.value_range = value_range
        self.interpolation = interpolation
        self.augmentation = augmentation
        self.cache = cache
        self.shuffle_buffer = shuffle_buffer
        self.joined_columns = joined_columns
        self._bases = {}  # split: its examples as a dataset, decoded and cached where `cache` says, before shuffling
        self.counts = {split: task.count(labels) for split, (_, labels) in examples.items()}

    def for_extractor(self, extractor):
        """The same examples, labels and splits, decoded for another extractor's image size and value range.

        A probe or a search over several extractors compares them on exactly the same split.

        Args:
            extractor: An object with `input_kind`, `image_size` and `value_range` (a tfxfer extractor).

        Returns:
            A `DataSplits` (this one when nothing changes).

        Raises:
            ValueError: The extractor takes the other kind of input.

        Example:
            >>> bigger = type("Extractor", (), {"input_kind": "image", "image_size": (32, 32),
            ...                                 "value_range": (-1.0, 1.0)})()
            >>> data.for_extractor(bigger).image_size, data.for_extractor(bigger).sizes == data.sizes
            ((32, 32), True)
        """
        if getattr(extractor, "input_kind", self.modality) != self.modality:
            raise ValueError(f"{getattr(extractor, 'source', extractor)!r} takes {extractor.input_kind}s; this data "
                             f"holds {self.modality}s.")
        if self.modality != "image" or (tuple(extractor.image_size), tuple(extractor.value_range)) == (
                tuple(self.image_size), tuple(self.value_range)):
            return self
        return DataSplits(modality=self.modality, task=self.task, examples=self._examples, origins=self.origins,
                          skipped=self.skipped, notes=self.notes, batch_size=self.batch_size, seed=self.seed,
                          image_size=tuple(extractor.image_size), value_range=tuple(extractor.value_range),
                          interpolation=self.interpolation, augmentation=self.augmentation, cache=self.cache,
                          shuffle_buffer=self.shuffle_buffer, joined_columns=self.joined_columns)

    @property
    def augmented(self):
        """Whether random augmentation runs in the training pipeline (then its output differs every epoch, so work
        downstream of it cannot be computed once and cached)."""
        return self.augmentation is not None

    @property
    def sizes(self):
        """`{split: number of examples}`."""
        return {split: len(inputs) for split, (inputs, _) in self._examples.items()}

    @property
    def train(self):
        """The training `tf.data.Dataset`, shuffled each epoch and augmented when `augmented`; None when empty.

        Each access gives a pipeline whose epochs start again from the seed's first order (over the same decoded
        and cached images), so a model trained on it sees the same batches whatever trained before it in the
        process: a search's trial scores the same in a resumed run (a hostile tester's find).
        """
        return self._batched("train")

    @functools.cached_property
    def validation(self):
        """The validation `tf.data.Dataset` in a fixed order; None when empty."""
        return self._batched("validation")

    @functools.cached_property
    def test(self):
        """The test `tf.data.Dataset` in a fixed order; None when empty."""
        return self._batched("test")

    def examples(self, split):
        """The raw examples of a split: what the pipelines read, before decoding.

        Args:
            split: `"train"`, `"validation"` or `"test"`.

        Returns:
            `(inputs, labels)`: a list of image file paths (str) or of texts, and the encoded labels (NumPy).

        Example:
            >>> paths, labels = data.examples("validation")
            >>> len(paths), labels.tolist()
            (6, [0, 0, 1, 1, 2, 2])
        """
        inputs, labels = self._examples[_check_split(split)]
        return list(inputs), labels.copy()

    def unbatched(self, split):
        """One split as decoded `(input, label)` pairs, unbatched, unshuffled, never augmented, never cached.

        For work that reads each example once in a fixed order: computing features to cache, exporting, evaluation.

        Args:
            split: `"train"`, `"validation"` or `"test"`.

        Returns:
            A `tf.data.Dataset`, or None when the split is empty.
        """
        inputs, labels = self._examples[_check_split(split)]
        if not inputs:
            return None
        dataset = tf.data.Dataset.from_tensor_slices((self._input_tensor(inputs), labels))
        if self.modality == "image":
            dataset = dataset.map(self._decode, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset

    def _input_tensor(self, inputs):
        """Texts, or image paths as the file system's bytes (`tfxfer.data.decoding.path_tensor`)."""
        return path_tensor(inputs) if self.modality == "image" else np.asarray(inputs, dtype=object)

    def _decode(self, path, label):
        # Every file passed the loader's one-time check, the size limit included.
        image = decode_image(tf.io.read_file(path), self.image_size, self.value_range, self.interpolation,
                             check_size=False)
        return image, label

    def _batched(self, split):
        inputs, labels = self._examples[split]
        if not inputs:
            return None
        training = split == "train"
        on_disk = self.modality == "image" and self.cache not in (False, True)
        shuffle_buffer = min(self.shuffle_buffer or len(inputs), len(inputs))
        if on_disk and self.shuffle_buffer is None:
            # A disk cache is for data larger than memory: a buffer of the whole split would hold it all again.
            per_image = self.image_size[0] * self.image_size[1] * 3 * 4
            shuffle_buffer = max(1, min(len(inputs), DISK_CACHE_SHUFFLE_BYTES // per_image))
        cached = self.modality == "image" and bool(self.cache)
        if split not in self._bases:
            dataset = tf.data.Dataset.from_tensor_slices((self._input_tensor(inputs), labels))
            if training and on_disk:
                # One random order for the cache file (classes mixed), which the bounded buffer after it reshuffles
                # window by window every epoch.
                dataset = dataset.shuffle(len(inputs), seed=self.seed, reshuffle_each_iteration=False)
            if cached:  # decoded once, kept for every pipeline built on it
                dataset = dataset.map(self._decode, num_parallel_calls=tf.data.AUTOTUNE).cache(self._cache_file(split))
            self._bases[split] = dataset
        dataset = self._bases[split]
        if training:  # a new shuffle starts from the seed's first order; paths shuffle before decoding for free
            dataset = dataset.shuffle(shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)
        if self.modality == "image" and not cached:
            dataset = dataset.map(self._decode, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(self.batch_size)
        if training and self.augmentation is not None:
            augmentation = self.augmentation
            dataset = dataset.map(lambda x, y: (augmentation(x, training=True), y),
                                  num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def _cache_file(self, split):
        """`""` (memory), or a file named by a fingerprint of the files and the decoding, so a changed data set or
        size never reads a stale cache.

        Raises:
            DataError: The cache folder cannot be written, or has no room for the decoded images of the splits not
                cached yet (TensorFlow would otherwise fail in the middle of an epoch, from deep inside `fit`).
        """
        if self.cache is True:
            return ""
        folder = Path(self.cache)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(f"cache folder {folder} cannot be created ({error.strerror}); {_CACHE_CHOICES}") from None
        path = self._cache_path(folder, split)
        if not os.path.exists(f"{path}.index"):
            self._check_room(folder)
        return path

    def _cache_path(self, folder, split):
        digest = hashlib.sha256(repr((self.image_size, self.value_range, self.interpolation)).encode())
        inputs, labels = self._examples[split]
        for path, label in zip(inputs, labels.tolist()):
            status = os.stat(path)
            digest.update(f"{path}\0{status.st_size}\0{status.st_mtime_ns}\0{label}\n".encode())
        return str(folder / f"{split}-{digest.hexdigest()[:16]}")

    def _check_room(self, folder):
        """Raises unless `folder` is writable and has room for every split whose cache is not complete there."""
        if not os.access(folder, os.W_OK):
            raise DataError(f"cache folder {folder} is not writable; {_CACHE_CHOICES}")
        height, width = self.image_size
        pending = {split: size for split, size in self.sizes.items()
                   if size and not os.path.exists(f"{self._cache_path(folder, split)}.index")}
        needed = sum(pending.values()) * height * width * 3 * 4
        free = shutil.disk_usage(folder).free
        if free < needed:
            splits = " + ".join(f"{size} {split}" for split, size in pending.items())
            raise DataError(
                f"cache folder {folder} has {free:,} bytes free, but the decoded images need about {needed:,} "
                f"({splits} images of {height}x{width}x3 float32); free space there or {_CACHE_CHOICES}"
            )

    def summary(self):
        """A few lines for people: task, classes, split sizes and origins, skipped items by reason, pipeline."""
        task = self.task
        if self.modality == "image":
            low, high = self.value_range
            what = f"images {self.image_size[0]}x{self.image_size[1]} in [{low:g}, {high:g}]"
        else:
            what = "texts"
        names = task.class_names if len(task.class_names) <= 10 else task.class_names[:10] + ["..."]
        label = task.noun(task.num_outputs)
        lines = [f"DataSplits: {what}, {task.task_type}, {task.num_outputs} {label} {names}"]
        for split in SPLITS:
            size = self.sizes[split]
            if not size:
                lines.append(f"  {split}: none")
                continue
            counts = ", ".join(f"{name} {count}" for name, count in list(self.counts[split].items())[:10])
            lines.append(f"  {split}: {size} ({counts}) from {self.origins[split]}")
        reasons = count_reasons(self.skipped)
        lines.append(f"  skipped: {len(self.skipped)}" + (f" ({', '.join(f'{r} {n}' for r, n in reasons.items())})"
                                                            if reasons else ""))
        lines += [f"  note: {note}" for note in self.notes]
        cache = {False: "off", True: "in memory"}.get(self.cache, f"in {self.cache}")
        if self.modality == "image":
            lines.append(f"  batch {self.batch_size}, augmentation {'on' if self.augmented else 'off'}, "
                         f"decoded-image cache {cache}")
        else:
            lines.append(f"  batch {self.batch_size}")
        return "\n".join(lines)

    def __repr__(self):
        return self.summary()


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}.")
    return split
