"""KerasHub text backbones as extractors: strings in, the preset's tokenizer and packer inside, the vector its text
classifier reads out.

A text backbone takes a dict (`token_ids`, `padding_mask`, and for BERT `segment_ids`) and every transformer layer
reads the padding mask beside the hidden states, so its blocks are cut where exactly one computed tensor crosses
(`true_cuts(..., side_inputs=True)`): the embeddings, each transformer layer, and the pooler. The activations
cached at such a cut are the hidden states with the model inputs still in use appended as channels
(`[batch, sequence, hidden + 1]` for the mask; integers are exact in float32), which the suffix splits again.

Exports of these models run the tokenizer's TensorFlow Text ops: a client imports `tensorflow_text` before it
loads one (the export's metadata lists it under `client_imports`; TF Serving ships the ops).
"""

import hashlib

import keras
from keras import ops

from tfxfer import _compat
from tfxfer.extractors.base import Extractor
from tfxfer.extractors.keras_model import KerasExtractor, split_blocks
from tfxfer.extractors.kerashub_vision import config_digest
from tfxfer.extractors.resolve import keras_hub_module


def text_graph(backbone):
    """The backbone as a model from its input dict to the vector its text classifier reads.

    BERT-like backbones have a `pooled_output` (a tanh dense layer on the first token, pretrained with the
    backbone); the others give the sequence, whose first token (`[CLS]`, `<s>`) their classifiers read.

    Returns:
        `(model, output)`: the model, and a sentence naming its output.
    """
    outputs = backbone.output
    if isinstance(outputs, dict) and "pooled_output" in outputs:
        features, words = outputs["pooled_output"], "the backbone's pooled_output (as its text classifier reads)"
    else:
        sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        features, words = sequence[:, 0, :], "the first token of the backbone's sequence output (as its classifier)"
    return keras.Model(backbone.input, features, name=f"{backbone.name}_features"), words


def preprocessor_description(preprocessor):
    """What a text preprocessor does to a string, in words."""
    tokenizer = preprocessor.tokenizer
    lowercase = getattr(tokenizer, "lowercase", None)
    case = "" if lowercase is None else (", lowercased" if lowercase else ", case kept")
    return (f"{type(preprocessor).__name__}: {type(tokenizer).__name__} (vocabulary of "
            f"{tokenizer.vocabulary_size()}{case}), packed with the special tokens and padded or truncated to "
            f"sequence_length={preprocessor.sequence_length}")


class _UnpackedSuffix(keras.layers.Layer):
    """The model after a cut, on cached activations whose last channels hold the model inputs still in use."""

    def __init__(self, model, width, side_dtypes, batchnorm_training, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.width = width
        self.side_dtypes = side_dtypes
        self._batchnorm_training = batchnorm_training

    def call(self, packed, training=None):
        hidden = packed[..., : self.width]
        sides = [ops.cast(packed[..., self.width + i], dtype) for i, dtype in enumerate(self.side_dtypes)]
        return self.model([hidden, *sides], training=self._batchnorm_training(training))


@keras.saving.register_keras_serializable(package="tfxfer")
class KerasHubTextExtractor(Extractor):
    """A KerasHub text backbone with its preset's preprocessor inside: strings `[batch]` in, a vector out.

    Blocks are the embeddings, each transformer layer and the pooler (see the module docstring for how they are
    cut and cached). Dropout, like BatchNorm, runs in inference mode unless no block is frozen and
    `train_batchnorm` is set. `describe()` says what the preprocessor does (`attrs["preprocessing"]`) and which
    output is used (`attrs["output"]`). Build it with `tfxfer.load_extractor`.

    Args:
        model: The backbone as a model from its input dict to one vector (see `text_graph`).
        preprocessor: The preset's `keras_hub.models.TextClassifierPreprocessor` (tokenizer and packer).
        source: Where the backbone came from, for messages and exports.
        output: The sentence naming the model's output, for `describe()`.
        granularity: `"stage"` or `"cut"`, see `split_blocks`.
        block_pattern: See `split_blocks`.
        train_batchnorm: Let dropout (and any BatchNorm) run in training mode when no block is frozen.
        **kwargs: Keras layer arguments.

    Example:
        >>> import keras_hub
        >>> vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ants", "bees", "march"]
        >>> preprocessor = keras_hub.models.BertTextClassifierPreprocessor(
        ...     keras_hub.tokenizers.BertTokenizer(vocabulary=vocabulary), sequence_length=8)
        >>> backbone = keras_hub.models.BertBackbone(vocabulary_size=8, num_layers=2, num_heads=2, hidden_dim=8,
        ...                                          intermediate_dim=16, max_sequence_length=8)
        >>> extractor = tfxfer.load_extractor(backbone, preprocessor=preprocessor)
        >>> list(extractor.describe()["name"]), extractor(tf.constant(["ants march"])).shape
        (['token_embedding', 'transformer_layer_0', 'transformer_layer_1', 'pooled_dense'], TensorShape([1, 8]))
    """

    def __init__(self, model, preprocessor, *, source, output="", granularity="stage", block_pattern=None,
                 train_batchnorm=False, **kwargs):
        if isinstance(model, dict) or isinstance(preprocessor, dict):
            keras_hub_module()  # registers the classes that the configurations name
            model, preprocessor = (keras.saving.deserialize_keras_object(item) if isinstance(item, dict) else item
                                   for item in (model, preprocessor))
        super().__init__(source=source, input_kind="text", train_batchnorm=train_batchnorm, **kwargs)
        self.model = model
        self.preprocessor = preprocessor
        self.output_description = output
        self.granularity = granularity
        self.block_pattern = block_pattern
        self.blocks = split_blocks(model, granularity, block_pattern, side_inputs=True)

    client_imports = ("tensorflow_text",)
    _set_block_trainable = KerasExtractor._set_block_trainable
    _block_frozen = KerasExtractor._block_frozen

    @property
    def preprocessing(self):
        """What happens to the strings before the first block, in words."""
        return preprocessor_description(self.preprocessor)

    def call(self, inputs, training=None):
        return self.model(self.preprocessor(inputs), training=self._batchnorm_training(training))

    @property
    def cache_cuts(self):
        return list(range(1, self.n_blocks + 1))

    def _graph_layers(self):
        return [self, self.model, *self.model.layers]

    def _cut(self, k):
        """The tensor after block k, and the names and tensors of the model inputs that blocks after k read."""
        cut = _compat.node_output(self.blocks[k - 1].layers[-1])
        read = {id(tensor) for block in self.blocks[k:] for layer in block.layers
                for node in _compat.inbound_nodes(layer)[:1] for tensor in node.input_tensors}
        return cut, [(name, tensor) for name, tensor in self.model.input.items() if id(tensor) in read]

    def packed_inputs(self, k):
        self.check_cut(k)
        if k == self.n_blocks:
            return None, []
        cut, sides = self._cut(k)
        return (int(cut.shape[-1]), [name for name, _ in sides]) if sides else (None, [])

    def _prefix_function(self, k):
        if k == self.n_blocks:
            return super()._prefix_function(k)
        cut, sides = self._cut(k)
        head_cut = keras.Model(self.model.input, cut)

        def prefix(texts):
            features = self.preprocessor(texts)
            hidden = head_cut(features, training=False)
            extra = [ops.cast(features[name], hidden.dtype)[..., None] for name, _ in sides]
            return ops.concatenate([hidden, *extra], axis=-1)

        return prefix

    def suffix(self, k):
        self.check_cut(k)
        if k == self.n_blocks:
            return super().suffix(k)
        cut, sides = self._cut(k)
        hidden = keras.Input(cut.shape[1:], dtype=cut.dtype, name="hidden")
        side_inputs = [keras.Input(tensor.shape[1:], dtype=tensor.dtype, name=name) for name, tensor in sides]
        outputs = _compat.run_graph_from([cut, *(tensor for _, tensor in sides)], self.model.outputs[0],
                                         [hidden, *side_inputs])
        return _UnpackedSuffix(keras.Model([hidden, *side_inputs], outputs), int(cut.shape[-1]),
                               [tensor.dtype for _, tensor in sides], self._batchnorm_training,
                               name=f"{self.name}_after_{k}")

    def fingerprint(self, k):
        vocabulary = getattr(self.preprocessor.tokenizer, "get_vocabulary", lambda: [])()
        digest = hashlib.sha256((super().fingerprint(k) + config_digest(self.preprocessor)).encode())
        digest.update("\n".join(map(str, vocabulary)).encode())
        return digest.hexdigest()

    def describe(self):
        table = super().describe()
        table.attrs["preprocessing"] = self.preprocessing
        table.attrs["output"] = self.output_description
        return table

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:1]) + tuple(self.model.outputs[0].shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(model=keras.saving.serialize_keras_object(self.model),
                      preprocessor=keras.saving.serialize_keras_object(self.preprocessor),
                      output=self.output_description, granularity=self.granularity, block_pattern=self.block_pattern)
        for key in ("image_size", "value_range"):
            config.pop(key)
        return config
