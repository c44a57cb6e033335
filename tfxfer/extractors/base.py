"""The common face of every extractor: a Keras 3 layer with ordered, freezable blocks."""

import hashlib

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfxfer import _compat
from tfxfer.extractors.blocks import parameter_count


class Extractor(keras.layers.Layer):
    """A pretrained feature extractor as a Keras 3 layer whose blocks freeze independently.

    Subclasses fill `blocks` (input side first) and implement `call`. Freezing works on Keras' own flags
    (`layer.trainable` for Keras models, `variable.trainable` for restored SavedModel variables), so
    `model.trainable_weights`, optimizers and checkpoints see exactly the unfrozen blocks. After changing what is
    frozen, compile the model again (Keras builds its train step from the trainable weights at compile time).

    BatchNorm: while any block is frozen, the extractor runs in inference mode, so the moving statistics of frozen
    blocks never change (the Keras transfer-learning guide's advice; a TF Hub SavedModel has one `training` switch
    for all its layers, so this is also the only safe choice there). With no block frozen, BatchNorm still runs in
    inference mode unless the extractor was made with `train_batchnorm=True`: small fine-tuning sets give poor batch
    statistics, and updating them would undo what pretraining learned.

    Attributes:
        source: Where the extractor came from (handle, path or application name).
        input_kind: `"image"` (float32 `[batch, height, width, 3]`) or `"text"` (string `[batch]`).
        image_size: `(height, width)` the extractor expects, for images; None for text.
        value_range: `(low, high)` of the pixel values the extractor expects, for images; None for text.
        blocks: The ordered list of `Block`s.
        train_batchnorm: Whether BatchNorm may run in training mode when no block is frozen.
        client_imports: Python modules a TensorFlow client imports before it loads an export of a model built on
            this extractor: `("tensorflow_text",)` where the served graph tokenizes with TF Text ops, else empty.
    """

    client_imports = ()

    def __init__(self, *, source, input_kind, image_size=None, value_range=None, train_batchnorm=False, **kwargs):
        super().__init__(**kwargs)
        self.source = str(source)
        self.input_kind = input_kind
        self.image_size = tuple(image_size) if image_size else None
        self.value_range = tuple(float(v) for v in value_range) if value_range else None
        self.train_batchnorm = bool(train_batchnorm)
        self.blocks = []
        # Untracked on purpose: a SavedModel of a model holding this layer cannot store a dict of functions.
        object.__setattr__(self, "_prefixes", {})
        object.__setattr__(self, "_pooled_passes", {})

    @property
    def n_blocks(self):
        """Number of blocks."""
        return len(self.blocks)

    def _set_block_trainable(self, block, trainable):
        raise NotImplementedError

    def _block_frozen(self, block):
        raise NotImplementedError

    def freeze(self, k="all"):
        """Freezes the first `k` blocks and unfreezes the rest.

        Args:
            k: Number of leading blocks to freeze, from 0 (all train) to `n_blocks`; `"all"` or None for every block.

        Returns:
            The extractor itself.

        Raises:
            ValueError: `k` is not a whole number in `[0, n_blocks]`.

        Example:
            >>> extractor.freeze(3).frozen_blocks, extractor.freeze("all").frozen_blocks
            (3, 4)
        """
        if k is None or k == "all":
            k = self.n_blocks
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= self.n_blocks:
            raise ValueError(
                f"freeze(k) takes a whole number of blocks from 0 to {self.n_blocks} (or 'all') for extractor "
                f"{self.source!r}; got {k!r}. See extractor.describe() for its blocks."
            )
        # Keras' setter unfreezes every sublayer and variable; then the first k blocks are frozen again.
        self.trainable = True
        for index, block in enumerate(self.blocks):
            self._set_block_trainable(block, index >= k)
        return self

    def unfreeze(self):
        """Unfreezes every block (full fine-tuning). Returns the extractor."""
        return self.freeze(0)

    @property
    def frozen_blocks(self):
        """Number of leading blocks that are frozen."""
        count = 0
        for block in self.blocks:
            if not self._block_frozen(block):
                break
            count += 1
        return count

    @property
    def any_frozen(self):
        """Whether any block is frozen."""
        return any(self._block_frozen(block) for block in self.blocks)

    def _batchnorm_training(self, training):
        """The `training` flag the pretrained graph may see, given the Keras one."""
        return bool(training) and self.train_batchnorm and not self.any_frozen

    @property
    def cache_cuts(self):
        """The numbers of frozen blocks k whose output can be computed apart from the rest (see `prefix`)."""
        return [self.n_blocks]

    def prefix(self, k):
        """A function from the extractor's inputs to the activations after its first `k` blocks, in inference mode.

        While those blocks are frozen (and nothing random runs before them), its output for an input never changes,
        so it can be computed once and cached.

        Raises:
            ValueError: `k` is not in `cache_cuts`.
        """
        self.check_cut(k)
        if k not in self._prefixes:
            self._prefixes[k] = tf.function(self._prefix_function(k), reduce_retracing=True)
        return self._prefixes[k]

    def _prefix_function(self, k):
        return lambda inputs: self(inputs, training=False)

    def cut_outputs(self, cuts):
        """A function from the extractor's inputs to the activations after each of `cuts` blocks (a list), in
        inference mode; a probe of every block boundary runs it once per batch.

        This default runs each cut's prefix; extractors whose graph they can read compute every cut in one pass.

        Example:
            >>> [tuple(a.shape) for a in extractor.cut_outputs([1, 4])(np.zeros((2, 16, 16, 3), "float32"))]
            [(2, 16, 16, 4), (2, 8)]
        """
        functions = [self.prefix(k) for k in cuts]
        return lambda inputs: [function(inputs) for function in functions]

    def packed_inputs(self, k):
        """The model inputs packed as channels after the activations at cut `k`, for the blocks after it to read (a
        transformer's padding mask): `(channels of the activations, [names of the packed inputs])`, or
        `(None, [])` where nothing is packed."""
        return None, []

    def pooled_cut_outputs(self, cuts, spec):
        """`cut_outputs(cuts)` traced once for batches of `spec`, pooled inside the graph so that one vector per
        example leaves it (an early cut of a 224x224 MobileNetV2 is 112x112x96 per image): spatial maps averaged
        over height and width, token sequences that carry their padding mask as a packed channel (`packed_inputs`)
        averaged over the tokens it marks, without the packed channels; other sequences come out whole. Kept for the
        next probe of this extractor: tracing and first running a large graph take seconds.

        Example:
            >>> run = extractor.pooled_cut_outputs([1, 4], tf.TensorSpec([None, 16, 16, 3], tf.float32))
            >>> [tuple(a.shape) for a in run(np.zeros((2, 16, 16, 3), "float32"))]
            [(2, 4), (2, 8)]
            >>> run is extractor.pooled_cut_outputs([1, 4], tf.TensorSpec([None, 16, 16, 3], tf.float32))
            True
        """
        key = (tuple(cuts), spec)
        if key not in self._pooled_passes:
            activations, packed = self.cut_outputs(list(cuts)), [self.packed_inputs(k) for k in cuts]
            self._pooled_passes[key] = tf.function(
                lambda inputs: [_pooled(output, *layout) for output, layout in zip(activations(inputs), packed)],
                input_signature=[spec])
        return self._pooled_passes[key]

    def suffix(self, k):
        """A Keras layer that runs blocks `k..n_blocks-1` on the activations `prefix(k)` returns.

        It shares this extractor's weights, so training it trains the extractor; BatchNorm runs as it would in
        the whole extractor.
        """
        self.check_cut(k)
        return keras.layers.Identity(name=f"{self.name}_after_{k}")

    def _graph_layers(self):
        """The layers whose Keras graph nodes `release_models` trims: this one and any it wraps."""
        return [self]

    def mark_graphs(self):
        """Remembers how many graph nodes this extractor's layers have now, for `release_models`."""
        counts = [(layer, len(_compat.inbound_nodes(layer)), len(_compat.outbound_nodes(layer)))
                  for layer in self._graph_layers()]
        object.__setattr__(self, "_node_counts", counts)  # untracked: it holds this layer itself

    def release_models(self):
        """Forgets the Keras models built on this extractor since `mark_graphs`, so that memory can be freed.

        Every model built on a layer leaves graph nodes on it, and those nodes keep the model (its optimizer and
        compiled functions) alive. A search builds a model per trial on one extractor; this keeps its memory flat.
        Models built since the mark must not be used afterwards. The probe's traced passes
        (`pooled_cut_outputs`) are forgotten too: a search probes each extractor once, before its trials.
        """
        for layer, inbound, outbound in getattr(self, "_node_counts", []):  # nothing marked, nothing to trim
            del _compat.inbound_nodes(layer)[inbound:]
            del _compat.outbound_nodes(layer)[outbound:]
        self._pooled_passes.clear()

    def check_cut(self, k):
        """Raises ValueError, saying why, unless the extractor can be cut after `k` blocks (`k` in `cache_cuts`)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"a cut is a whole number of blocks; got {k!r}.")
        if k not in self.cache_cuts:
            raise ValueError(
                f"{self.source!r} cannot be cut after {k} blocks; it can after {self.cache_cuts}: "
                f"{self._why_not_cut(k)}."
            )

    def _why_not_cut(self, k):
        """Why the activations after `k` blocks cannot be computed apart, in words."""
        return "only its whole output (every block frozen) can be cached"

    def fingerprint(self, k):
        """A digest of what `prefix(k)` computes: the kind of extractor, its input conventions, the cut, its blocks'
        names, the bytes of every weight before the cut and, for a SavedModel, its graph and chosen output; not where
        it was loaded from.

        A cache keyed by it is never reused after the extractor, its input size or range, or any weight before the
        cut changes, and is found again however the extractor's path is spelled (`./model`, `model/`, a copy).

        Example:
            >>> extractor.fingerprint(2) == tfxfer.load_extractor(extractor.model).fingerprint(2)
            True
        """
        digest = hashlib.sha256(repr((type(self).__name__, self.image_size, self.value_range, k,
                                      [b.name for b in self.blocks[:k]], self._computation())).encode())
        for block in self.blocks[:k]:
            for weight in block.weights:
                digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
        return digest.hexdigest()

    def _computation(self):
        """What the fingerprint holds besides weights and block names where a subclass's operations can differ under
        the same names (a SavedModel's graph and chosen output); None here."""
        return None

    def describe(self):
        """The blocks as a table.

        Returns:
            A pandas DataFrame, one row per block: `block` (index), `name`, `layers`, `variables`, `params`,
            `trainable_params`, `frozen` and `output_shape`.

        Example:
            >>> list(extractor.describe()["name"])
            ['stem_conv', 'block_1', 'block_2', 'block_3']
        """
        rows = []
        for index, block in enumerate(self.blocks):
            frozen = self._block_frozen(block)
            rows.append(
                {
                    "block": index,
                    "name": block.name,
                    "layers": len(block.layers),
                    "variables": len(block.weights),
                    "params": block.num_params,
                    "trainable_params": 0 if frozen else sum(parameter_count(w.shape) for w in block.learnable),
                    "frozen": frozen,
                    "output_shape": block.output_shape,
                }
            )
        columns = ["block", "name", "layers", "variables", "params", "trainable_params", "frozen", "output_shape"]
        return pd.DataFrame(rows, columns=columns).set_index("block")  # the columns, even with no block

    def get_config(self):
        config = super().get_config()
        config.update(
            source=self.source,
            image_size=self.image_size,
            value_range=self.value_range,
            train_batchnorm=self.train_batchnorm,
        )
        return config


def _pooled(output, width, packed):
    """One cut's activations as a vector per example, where they are a spatial map or a sequence with its mask packed
    (see `Extractor.pooled_cut_outputs`)."""
    if not isinstance(output, tf.Tensor) or output.shape.rank not in (3, 4):
        return output
    if output.shape.rank == 4:
        return tf.reduce_mean(output, axis=[1, 2])
    if not packed:
        return output  # a sequence without its mask: the probe pools it
    hidden, masks = output[..., :width], [i for i, name in enumerate(packed) if "mask" in name]
    if not masks:
        return tf.reduce_mean(hidden, axis=1)
    weights = output[..., width + masks[0]][..., None]
    return tf.reduce_sum(hidden * weights, axis=1) / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)
