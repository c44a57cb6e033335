"""The served graph of an export: preprocessing, the model, and the outputs the task asks for, as SavedModel
signatures with stable input names and output keys.

- `serving_default`, image models: `image_bytes` (tf.string `[batch]`: JPEG, PNG, GIF or BMP file contents; REST
  clients send `{"b64": "..."}` and TF Serving decodes the base64) → decoded, resized (bilinear by default) and
  scaled by `tfxfer.data.decode_image`, as in training, then the model.
- `serving_images`, image models: `images` (float32 `[batch, height, width, 3]`, decoded pixel values in [0, 255],
  any size) → resized and scaled by `tfxfer.data.resize_and_scale`, the function `decode_image` runs, then the model.
- `serving_default`, text models: `texts` (tf.string `[batch]`).
- `metadata`, no inputs: `class_names`, `task_type`, `input_kind`, `extractor_source`, `threshold`, `image_size`,
  `value_range` and `metadata_json` (the whole of `tfxfer.json`), for TensorFlow clients.

The outputs of the prediction signatures are the task's (`Task.served_outputs`): for classes `scores`, `classes`
(names ranked by score) and `ranked_scores`, and for multi-label `labels` (names above the threshold); for
regression `predictions`. The saved module also keeps its preprocessing as functions (`preprocess_image_bytes`,
`preprocess_images`), so a client can see exactly what the model is given.
"""

import tensorflow as tf

from tfxfer.data.decoding import decode_image, resize_and_scale
from tfxfer.data.task import Task

_INPUTS = {
    "image": {"serving_default": {"image_bytes": "string [batch]"},
              "serving_images": {"images": "float32 [batch, height, width, 3]"}},
    "text": {"serving_default": {"texts": "string [batch]"}},
}
_METADATA_OUTPUTS = {"class_names": "string [n_classes]", "task_type": "string []", "input_kind": "string []",
                     "extractor_source": "string []", "threshold": "float32 []", "metadata_json": "string []"}
_IMAGE_METADATA_OUTPUTS = {"image_size": "int32 [2]", "value_range": "float32 [2]"}


def signature_table(input_kind, task_type):
    """The signatures of an export: `{signature key: {"inputs": {name: "dtype shape"}, "outputs": {...}}}`.

    Example:
        >>> signature_table("text", "regression")["serving_default"]
        {'inputs': {'texts': 'string [batch]'}, 'outputs': {'predictions': 'float32 [batch, n_targets]'}}
    """
    outputs = Task(task_type, []).served_outputs
    table = {key: {"inputs": inputs, "outputs": outputs} for key, inputs in _INPUTS[input_kind].items()}
    metadata = dict(_METADATA_OUTPUTS, **(_IMAGE_METADATA_OUTPUTS if input_kind == "image" else {}))
    table["metadata"] = {"inputs": {}, "outputs": metadata}
    return table


def image_preprocessing(spec):
    """The served image preprocessing: `(from image bytes, from decoded pixels)`, as tf.functions with fixed input
    signatures, from an export's spec (`image_size`, `value_range`, `interpolation`)."""
    height, width = spec["image_size"]

    def decode(contents):
        return decode_image(contents, (height, width), spec["value_range"], spec["interpolation"])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
    def from_bytes(image_bytes):
        return tf.map_fn(decode, image_bytes, fn_output_signature=tf.TensorSpec([height, width, 3], tf.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
    def from_pixels(images):
        return resize_and_scale(images, (height, width), spec["value_range"], spec["interpolation"])

    return from_bytes, from_pixels


def serving_module(model, spec, metadata_json):
    """The `tf.Module` to save, tracking the model, and its signatures.

    Args:
        model: The Keras model (what the extractor takes in, the head's output out).
        spec: The export's spec: `task_type`, `class_names`, `threshold`, `input_kind`, `extractor_source`, and for
            images `image_size`, `value_range`, `interpolation`.
        metadata_json: The export's metadata as a JSON string.

    Returns:
        `(module, signatures)` for `tf.saved_model.save`.
    """
    module = tf.Module()
    # The model's layers, not the model: a compiled model tracks its optimizer, whose slots (two per weight with Adam)
    # made a fine-tuned MobileNetV2's export 39 MB instead of 11; the layers hold the weights and any tables or assets.
    module.layers = list(model.layers)
    # The raw tf.Variables too: loaders that restore through a Session (saved_model_cli run; TF Serving's C++ loader
    # works the same way) restore only variables reached as tf.Variable objects; through Keras' wrappers they stay
    # uninitialised ("Could not find variable dense/bias").
    module.model_variables = [variable.value for variable in model.variables]
    task = Task(spec["task_type"], spec["class_names"])

    def outputs(inputs):  # float32 scores whatever the model's dtype policy
        # An empty batch runs as one blank example, none of which is returned: TensorFlow's convolutions fail on
        # a batch of 0 ("Incompatible shapes: [0,16,16,3] vs. [1,1,1,4]"), which a client saw (a tester's find).
        count = tf.shape(inputs)[0]
        blank = tf.zeros(tf.concat([[1], tf.shape(inputs)[1:]], 0), inputs.dtype)
        inputs = tf.cond(count > 0, lambda: inputs, lambda: blank)
        served = task.serve(tf.cast(model(inputs, training=False), tf.float32), spec["threshold"])
        return {key: value[:count] for key, value in served.items()}

    constants = {"class_names": tf.constant(spec["class_names"]), "task_type": tf.constant(spec["task_type"]),
                 "input_kind": tf.constant(spec["input_kind"]),
                 "extractor_source": tf.constant(spec["extractor_source"]),
                 "threshold": tf.constant(spec["threshold"] or 0.0, tf.float32),
                 "metadata_json": tf.constant(metadata_json)}
    if spec["input_kind"] == "text":
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
        def serve_texts(texts):
            return outputs(texts)

        signatures = {"serving_default": serve_texts}
    else:
        constants.update(image_size=tf.constant(spec["image_size"], tf.int32),
                         value_range=tf.constant(spec["value_range"], tf.float32))
        module.preprocess_image_bytes, module.preprocess_images = image_preprocessing(spec)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve_image_bytes(image_bytes):
            return outputs(module.preprocess_image_bytes(image_bytes))

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")])
        def serve_images(images):
            return outputs(module.preprocess_images(images))

        signatures = {"serving_default": serve_image_bytes, "serving_images": serve_images}

    @tf.function(input_signature=[])
    def metadata():
        return dict(constants)

    signatures["metadata"] = metadata
    return module, signatures
