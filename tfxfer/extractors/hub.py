"""TF Hub extractors: a Keras 3 layer over a restored SavedModel (`resolve` finds and loads it).

`hub.KerasLayer` works with Keras 2 only (tensorflow/hub#903), so this module has its own layer. It relies on the
Reusable SavedModel contract (https://www.tensorflow.org/hub/reusable_saved_models): the restored object has
`__call__(inputs, training)`, `variables`, `trainable_variables` and `regularization_losses`. SavedModels exported
by Keras (`model.export`, a `serve` endpoint) and plain ones with a `serving_default` signature load too, in
inference mode only (they carry no training graph).
"""

import logging
import os
import warnings

import keras
import tensorflow as tf

from tfxfer import _compat
from tfxfer.extractors.base import Extractor
from tfxfer.extractors.blocks import Block, block_label, group_by_names
from tfxfer.extractors.hub_cuts import GraphCuts, HubSuffix, inference_function, pack_sides
from tfxfer.extractors.hub_endpoints import check_image_input, endpoint, graph_digest, size_from_name
from tfxfer.extractors.resolve import load_saved_model, register_text_ops

log = logging.getLogger(__name__)

#: The pixel range of TF Hub's common signature for images.
HUB_IMAGE_VALUE_RANGE = (0.0, 1.0)


def _scope(variable_name):
    name = variable_name.split(":")[0]
    return name.rsplit("/", 1)[0] if "/" in name else name


@keras.saving.register_keras_serializable(package="tfxfer")
class HubExtractor(Extractor):
    """A TF Hub SavedModel as a Keras 3 layer with blocks derived from its variables' scopes.

    The restored variables become this layer's weights (so `model.trainable_weights`, optimizers, `save_weights` and
    checkpoints see them), the SavedModel's `regularization_losses` are added as layer losses while any block trains
    (Keras, too, counts only the regularizers of trainable weights), and the restored
    function is called with `training=True` only when no block is frozen and `train_batchnorm` is set.

    Blocks come from the variables' scope names in order of first appearance (`Conv1/...`, `block_3_expand/...`,
    `encoder/layer_2/...`): a new block starts wherever the first number in the scope changes (see
    `tfxfer.extractors.blocks`). A SavedModel whose names give no structure is one block.

    Args:
        source: A TF Hub handle, a SavedModel folder, a `.tar.gz` of one or a `gs://` path.
        preprocessor: For BERT-style encoders, the matching preprocessing SavedModel (TF Hub's BERT layout: strings
            in, a dict of `input_word_ids`, `input_mask`, `input_type_ids` out). Needs `import tensorflow_text`.
        output_key: Which output to return when the SavedModel returns a dict (default `pooled_output`, else
            `default`, else the only key).
        image_size: `(height, width)` for image extractors; by default the SavedModel's own input shape, else the
            size in the handle's name (`..._224`), else 224.
        value_range: Pixel range the model expects; TF Hub image models take `[0, 1]`.
        block_pattern: A regular expression whose first group is a scope's block key, to override the grouping.
        train_batchnorm: Let BatchNorm run in training mode when no block is frozen.
        cache_sequences: For text models, cache the sequence activations between transformer layers (see above).
        **kwargs: Keras layer arguments (`name`, `dtype`, `trainable`).

    Example:
        >>> hub = HubExtractor(hub_folder)  # or a handle: "https://tfhub.dev/google/imagenet/..."
        >>> hub.n_blocks, hub.input_kind, hub.image_size, hub.value_range
        (4, 'image', (16, 16), (0.0, 1.0))
    """

    def __init__(self, source, *, preprocessor=None, output_key=None, image_size=None, value_range=None,
                 block_pattern=None, train_batchnorm=False, cache_sequences=False, **kwargs):
        restored = load_saved_model(source)
        call_fn, takes_training, input_spec = endpoint(restored, source)
        preprocess_fn = restored_preprocessor = None
        if preprocessor is not None and not isinstance(input_spec, dict):
            raise ValueError(f"preprocessor= is for BERT-style encoders, whose SavedModel takes a dict of token ids; "
                             f"{source!r} takes {input_spec}: leave preprocessor= out.")
        if preprocessor is not None:
            register_text_ops()
            restored_preprocessor = load_saved_model(preprocessor)
            preprocess_fn, _, input_spec = endpoint(restored_preprocessor, preprocessor)
        if isinstance(input_spec, dict):
            raise ValueError(
                f"The SavedModel {source!r} takes a dict of tensors ({sorted(input_spec)}), as BERT-style encoders do. "
                "Pass its text preprocessing SavedModel as preprocessor=... (TF Hub's *_preprocess models)."
            )
        outputs = getattr(call_fn, "concrete_functions", None) and call_fn.concrete_functions[0].structured_outputs
        if preprocessor is None and isinstance(outputs, dict) and "input_word_ids" in outputs:
            raise ValueError(f"The SavedModel {source!r} is a text preprocessor (strings in, {sorted(outputs)} out), "
                             "not an encoder: load its encoder as the extractor, with this one as preprocessor=.")
        if output_key is not None and isinstance(outputs, (tf.Tensor, tf.TensorSpec)):  # ignored, silently before
            raise ValueError(f"{source!r} returns one output, not a dict of them: leave output_key= out.")
        if output_key is not None and isinstance(outputs, dict) and output_key not in outputs:  # said in Keras' words
            raise ValueError(f"{source!r} has no output {output_key!r}; it has {sorted(outputs)}: pass one of them.")
        if input_spec.dtype == tf.string:
            given = [name for name, value in (("image_size", image_size), ("value_range", value_range)) if value]
            if given:  # ignored, it would say nothing
                one = len(given) == 1
                raise ValueError(f"{' and '.join(f'{name}=' for name in given)} appl{'ies' if one else 'y'} to image "
                                 f"extractors; {source!r} takes text: leave {'it' if one else 'them'} out.")
            input_kind, image_size, value_range = "text", None, None
        elif input_spec.shape.rank == 4:
            input_kind = "image"
            check_image_input(input_spec, source, image_size)
            static = tuple(input_spec.shape[1:3])
            image_size = image_size or (static if None not in static else None) or size_from_name(source)
            if image_size is None:
                image_size = (224, 224)
                warnings.warn(f"{source} does not state its image size; assuming 224x224. Pass image_size=[height, "
                              "width] to change it.", UserWarning, stacklevel=2)
            value_range = value_range or HUB_IMAGE_VALUE_RANGE
        else:
            raise ValueError(
                f"The SavedModel {source!r} takes {input_spec}; tfxfer extractors take images [batch, height, width, 3] "
                "or a batch of strings [batch]."
            )
        super().__init__(source=source, input_kind=input_kind, image_size=image_size, value_range=value_range,
                         train_batchnorm=train_batchnorm, **kwargs)
        self.preprocessor = None if preprocessor is None else os.fspath(preprocessor)
        if preprocessor is not None:
            self.client_imports = ("tensorflow_text",)
        self.output_key = output_key
        self.block_pattern = block_pattern
        self._graph_digest = None
        self._call_fn, self._takes_training, self._preprocess_fn = call_fn, takes_training, preprocess_fn
        # The restored object owns the variables and functions; keep it alive with the layer.
        self._restored = restored
        # It owns the preprocessor's resources (vocabulary tables), which an export must be able to reach.
        self._restored_preprocessor = restored_preprocessor
        self._regularization_losses = list(getattr(restored, "regularization_losses", []))
        if cache_sequences and preprocessor is None:
            raise ValueError(f"cache_sequences=True is for BERT-style encoders loaded with preprocessor=; {source!r} "
                             f"is {'an image' if input_kind == 'image' else 'a text'} model without one: leave "
                             "cache_sequences out (its cuts, if any, are cached without asking).")
        self.cache_sequences = bool(cache_sequences)
        self._wrap_variables(restored)
        self._find_cuts(restored)
        self._build_at_init()

    def _wrap_variables(self, restored):
        # A Reusable SavedModel lists its variables; a plain tf.Module's are those its function reads.
        functions = getattr(self._call_fn, "concrete_functions", [])
        found = list(getattr(restored, "variables", None) or [v for f in functions for v in f.variables])
        trainable_ids = {id(v) for v in getattr(restored, "trainable_variables", None) or
                         [v for f in functions for v in f.trainable_variables]}
        restored_variables, seen = [], set()
        for variable in found:
            if id(variable) not in seen:
                seen.add(id(variable))
                restored_variables.append(variable)
        wrapped = []
        for variable in restored_variables:
            weight = keras.Variable(
                initializer=variable,
                trainable=id(variable) in trainable_ids,
                dtype=variable.dtype,
                shape=variable.shape,
                name=variable.name.split(":")[0].replace("/", "_"),
            )
            _compat.track_variable(self, weight)
            wrapped.append(weight)
        scopes = [_scope(v.name) for v in restored_variables]
        groups = group_by_names(scopes, self.block_pattern) if scopes else []
        self.blocks = [
            Block(
                name=block_label(scopes[group[0]]),
                weights=[wrapped[i] for i in group],
                learnable=[wrapped[i] for i in group if id(restored_variables[i]) in trainable_ids],
            )
            for group in groups
        ]
        if len(self.blocks) == 1 and len(scopes) > 1:
            log.info("%s: its variable names give no block structure, so it is one block.", self.source)

    def _find_cuts(self, restored):
        """Finds the block boundaries where the graph can be cut; where none is, `_uncut` says why."""
        cuts, uncut = None, None
        function = inference_function(restored)
        if function is None:
            uncut = ("it is called through a serving signature, which has no training graph to cut: only a Reusable "
                     "SavedModel's __call__ is cut")
        elif self.n_blocks < 2:
            uncut = "it has fewer than two blocks (its variable names give no block structure)"
        elif tf.distribute.get_strategy().num_replicas_in_sync > 1:
            uncut = ("it was loaded under a strategy of several replicas, whose mirrored variables the graph's "
                     "single-device handles cannot stand for")
        elif self.preprocessor is not None and not self.cache_sequences:
            uncut = ("a cut between transformer layers caches the sequence and its mask, [tokens, hidden + 1] floats "
                     "per text (197 KB at 128 tokens and hidden size 384, 1 GB for 5,000 texts); load it with "
                     "cache_sequences=True to cache there")
        else:
            blocks = {id(weight.value.handle): (weight.value, index) for index, block in enumerate(self.blocks)
                      for weight in block.weights}
            outputs = function.structured_outputs
            key = self._output_key(outputs) if isinstance(outputs, dict) else None
            try:
                cuts = GraphCuts(function, blocks, self.n_blocks, key)
                cuts.prefix(sorted(cuts.cuts), whole=True)  # imported now: an op it cannot read shows here
            except Exception as error:  # noqa: BLE001 - whatever the import trips on, the model still trains whole
                cuts, uncut = None, f"its graph cannot be imported and cut ({type(error).__name__}: {error})"
        if cuts is not None and not cuts.cuts:
            uncut = f"no block boundary is a cut of its graph (after {self.blocks[0].name}: {cuts.reasons[1]})"
        for k in (cuts.cuts if cuts is not None else {}):
            self.blocks[k - 1].output_shape = tuple(cuts.cut_shape(k))
        object.__setattr__(self, "_graph_cuts", cuts if uncut is None else None)  # untracked: not for export
        object.__setattr__(self, "_uncut", uncut)
        object.__setattr__(self, "_cut_reasons", {} if cuts is None else cuts.reasons)

    @property
    def graph_cuts(self):
        """The `GraphCuts` of the restored graph, or None where it is cached at its output only (see `describe`)."""
        return self._graph_cuts

    @property
    def cache_cuts(self):
        return [*sorted(self._graph_cuts.cuts if self._graph_cuts else []), self.n_blocks]

    def _why_not_cut(self, k):
        if self._uncut:
            return f"only its whole output can be cached: {self._uncut}"
        return self._cut_reasons.get(k, f"it has {self.n_blocks} blocks")

    def _flat_inputs(self, inputs):
        if self._preprocess_fn is not None:
            inputs = self._preprocess_fn(inputs)
        return [inputs[name] for name in self._graph_cuts.input_names()] if isinstance(inputs, dict) else [inputs]

    def _prefix_function(self, k):
        if k == self.n_blocks:
            return super()._prefix_function(k)
        run = self._activations([k])

        def prefix(inputs):
            return run(inputs)[0]

        return prefix

    def cut_outputs(self, cuts):
        """A function from the inputs to the activations after each of `cuts` blocks, all from one pass of the
        graph (side inputs appended as channels, see `suffix`).

        Example:
            >>> hub = HubExtractor(hub_folder)
            >>> [tuple(a.shape) for a in hub.cut_outputs(hub.cache_cuts[-2:])(np.zeros((2, 16, 16, 3), "float32"))]
            [(2, 8, 8, 8), (2, 8)]
        """
        return tf.function(self._activations(cuts), reduce_retracing=True)

    def _activations(self, cuts):
        for k in cuts:
            self.check_cut(k)
        inner = [k for k in cuts if k < self.n_blocks]
        whole = self.n_blocks in cuts
        pruned = self._graph_cuts.prefix(inner, whole) if inner else None

        def run(inputs):
            if pruned is None:
                return [self(inputs, training=False)]
            fetched = pruned(*self._flat_inputs(inputs))
            activations = {k: pack_sides(*fetched[i]) for i, k in enumerate(inner)}
            if whole:
                activations[self.n_blocks] = fetched[-1]
            return [activations[k] for k in cuts]

        return run

    def packed_inputs(self, k):
        self.check_cut(k)
        if k == self.n_blocks or not self._graph_cuts.side_inputs[k]:
            return None, []
        return int(self._graph_cuts.cut_shape(k)[-1]), list(self._graph_cuts.side_inputs[k])

    def suffix(self, k):
        """A Keras layer that runs blocks `k..n_blocks-1` on what `prefix(k)` returns, over this extractor's
        variables (its trainable weights are those of the unfrozen blocks after the cut), in inference mode."""
        self.check_cut(k)
        if k == self.n_blocks:
            return super().suffix(k)
        cuts = self._graph_cuts
        weights = [weight for block in self.blocks[k:] for weight in block.weights]
        sides = [cuts.input_dtype(name) for name in cuts.side_inputs[k]]
        return HubSuffix(cuts.suffix(k), weights, int(cuts.cut_shape(k)[-1]), sides, self._regularization_losses,
                         cuts.output_shape(), name=f"{self.name}_after_{k}")

    def describe(self):
        table = super().describe()
        cuts = set(self.cache_cuts)
        table["cut"] = [index + 1 in cuts for index in table.index]
        inner = [self.blocks[k - 1].name for k in self.cache_cuts[:-1]]
        if self._uncut:
            table.attrs["cuts"] = f"Cached only at its output: {self._uncut}."
        else:
            others = "".join(f" After {self.blocks[k - 1].name}: {why}." for k, why in sorted(self._cut_reasons.items()))
            table.attrs["cuts"] = (f"Cut (activations cached) after {', '.join(inner)} and at the output; the "
                                   f"blocks after a cut run BatchNorm in inference mode.{others}")
        return table

    def _set_block_trainable(self, block, trainable):
        for weight in block.learnable:
            weight.trainable = trainable

    def _block_frozen(self, block):
        return not self.trainable or not any(weight.trainable for weight in block.learnable)

    def call(self, inputs, training=None):
        x = inputs
        if self._preprocess_fn is not None:
            x = self._preprocess_fn(x)
        if self._takes_training:
            outputs = self._call_fn(x, training=self._batchnorm_training(training))
        else:
            outputs = self._call_fn(x)
        if isinstance(outputs, dict):
            outputs = outputs[self._output_key(outputs)]
        # As Keras counts regularizers of trainable weights only, a fully frozen extractor adds none (the restored
        # losses cannot be traced to blocks, so with any block trainable all of them count).
        if self.frozen_blocks < self.n_blocks:
            for loss in self._regularization_losses:
                self.add_loss(loss())
        return outputs

    def _output_key(self, outputs):
        if self.output_key is not None:
            if self.output_key not in outputs:
                raise ValueError(f"{self.source!r} has no output {self.output_key!r}; it has {sorted(outputs)}.")
            return self.output_key
        for key in ("pooled_output", "default"):
            if key in outputs:
                return key
        if len(outputs) == 1:
            return next(iter(outputs))
        raise ValueError(f"{self.source!r} returns several outputs {sorted(outputs)}; choose one with output_key=.")

    def _computation(self):
        """The output read and a digest of the graphs run: a model exported again under the same path and variable
        names can compute something else, and a cache of the old one must not serve it."""
        if self._graph_digest is None:  # a function called through a serving signature: the signature's graph
            graphs = [function if hasattr(function, "concrete_functions") else restored.signatures["serving_default"]
                      for function, restored in ((self._call_fn, self._restored),
                                                 (self._preprocess_fn, self._restored_preprocessor)) if function]
            self._graph_digest = graph_digest(*graphs)
        return self.output_key, self._graph_digest

    def get_config(self):
        config = super().get_config()
        config.update(preprocessor=self.preprocessor, output_key=self.output_key, block_pattern=self.block_pattern,
                      cache_sequences=self.cache_sequences)
        return config
