"""LiteRT (TFLite) exports for phones and boards: one `.tflite` flatbuffer with the preprocessing inside, its labels and
the export metadata beside it, in versions written exactly like the SavedModel exports (`tfxfer.serving.versioning`):

```
saved_models/ants_bees_lite/1/
  model.tflite                  signature serving_default: images [1, h, w, 3] pixels in [0, 255] -> scores
  labels.txt                    the class (or target) names, one a line, in output order
  assets.extra/tfxfer.json      the metadata of a SavedModel export, plus `litert`: quantization, tensors,
                                calibration, and the verification against the SavedModel graph
```

The flatbuffer is converted from the served graph of a SavedModel export (`resize_and_scale`, the model, the head),
saved first so that the converter freezes its variables; written again with repeated vectors stored once
(`tfxfer.serving.litert_pack`, 9% smaller at int8) where the interpreter gives the same scores bit for bit; then
verified in the LiteRT interpreter on held-out examples (largest score difference and top-1 agreement recorded).
"""

import contextlib
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfxfer.data.decoding import resize_and_scale
from tfxfer.data.task import Task
from tfxfer.serving.litert_client import LABELS_FILE, LITERT_FILE, LiteRTRunner, interpreter_class, litert_input
from tfxfer.serving.litert_options import check_options
from tfxfer.serving.litert_pack import share_repeated_vectors
from tfxfer.serving.savedmodel import export_metadata, export_pieces, serving_spec, trained_with, write_metadata
from tfxfer.serving.versioning import check_format, check_name, write_version

_TEXTS = ["a short sentence", "An example, with punctuation!", "", "words words words", "the last one"]


def export_litert(model, name, root="saved_models", *, quantize="none", input_type="float32",
                  output_type="float32", calibration_data=None, calibration_size=200,
                  verification_size=100, select_tf_ops=False, seed=0, extractor=None, task_type=None,
                  class_names=None, threshold=0.5, metrics=None, data_summary=None, interpolation=None):
    """Exports a trained model as the next version of `<root>/<name>`, a verified LiteRT (`.tflite`) file.

    `tfxfer.export(..., format="litert")` calls this. The file's `serving_default` signature takes `images`, one
    image `[1, height, width, 3]` of pixels in [0, 255] (float32, or uint8 with `input_type="uint8"`; any height
    and width: resizing to the extractor's size and scaling to its value range happen inside), or `texts`, one
    string `[1]`; it returns `scores` `[1, outputs]` (`predictions` for regression).

    Args:
        model: A Keras model or a fitted `TransferModel`, as for `tfxfer.export`.
        name: The model's name under `root`. A name's versions are all of one format: a folder holding SavedModel
            versions is refused (TF Serving would try to serve the `.tflite` version).
        root: The export root.
        quantize: `"none"` (float32), `"float16"` (weights in float16), `"dynamic"` (weights in int8, activations
            quantized at run time), or `"int8"` (full-integer: weights and activations in int8, calibrated on
            `calibration_size` training examples drawn with `seed`).
        input_type: Image models: `"float32"` or `"uint8"` pixels.
        output_type: `"float32"`, or with `quantize="int8"` `"uint8"` (scores quantized; the scale and zero point
            are in the file and the metadata; `load_exported` dequantizes them).
        calibration_data: The `DataSplits` whose training split calibrates int8 and whose validation split (else
            test, else training) verifies the file; by default `data_summary` when it is a `DataSplits`.
        calibration_size: Training examples for int8 calibration, drawn with `seed` (all when fewer); TensorFlow's
            guide suggests 100 to 500.
        verification_size: Held-out examples the written file is checked on. Without data, seeded random pixel
            images (or a few fixed sentences) are used, and the metadata says so.
        select_tf_ops: Let TensorFlow ops that LiteRT lacks (string splitting, lookups, TF Text) into the file as
            select TF ops; the file then needs a LiteRT runtime built with them (the Flex delegate).
        seed: Seeds the calibration and verification samples.
        extractor, task_type, class_names, threshold, metrics, data_summary, interpolation: As for `tfxfer.export`.

    Returns:
        The `pathlib.Path` of the new version folder.

    Raises:
        ValueError: An argument does not fit (named), int8 without data to calibrate on, or the converter cannot
            express an op (the op is named, with the option that lets it in).

    Example:
        >>> path = tfxfer.export(fitted, "ants_bees_lite", root=tmp_dir, format="litert", data_summary=data)
        >>> sorted(p.name for p in path.iterdir())
        ['assets.extra', 'labels.txt', 'model.tflite']
        >>> check = tfxfer.load_exported(path).metadata["litert"]["verification"]
        >>> check["max_score_difference"] < 1e-4, check["top1_agreement"]
        (True, 1.0)
    """
    check_options(quantize, input_type, output_type, calibration_size, verification_size)
    interpreter_class()  # before the conversion: the written file is verified in LiteRT's interpreter
    model, extractor, task, training = export_pieces(model, extractor, task_type, class_names)
    check_name(name)
    check_format(Path(root) / name, "litert")
    spec = serving_spec(model, extractor, task, threshold, data_summary, interpolation or trained_with(training))
    check_text_options(spec["input_kind"], quantize, input_type)
    data = calibration_data if calibration_data is not None else (
        data_summary if hasattr(data_summary, "examples") else None)
    if quantize == "int8" and data is None:
        raise ValueError("quantize='int8' calibrates on training examples: pass calibration_data= (or data_summary=) "
                         "the DataSplits from tfxfer.load_images/load_text.")
    metadata = export_metadata(spec, training, metrics, data_summary)
    rng = np.random.default_rng(seed)
    samples = _Samples(spec, input_type)
    with tempfile.TemporaryDirectory(prefix="tfxfer-litert-") as scratch:
        reference_folder = str(Path(scratch) / "reference")
        module, signatures = _reference_module(model, spec, input_type)
        tf.saved_model.save(module, reference_folder, signatures=signatures)
        converter = tf.lite.TFLiteConverter.from_saved_model(reference_folder, signature_keys=["serving_default"])
        calibration = _configure(converter, quantize, output_type, select_tf_ops, samples, data, calibration_size,
                                 rng, seed)
        converted = _convert(converter, select_tf_ops)
        reference = tf.saved_model.load(reference_folder).signatures["serving_default"]
        held_out = samples.held_out(data, verification_size, rng)
        flatbuffer = _packed(converted, held_out[0])
        try:
            verification = _verify(flatbuffer, reference, task, held_out)
        except RuntimeError as error:
            if not select_tf_ops:
                raise
            verification = {"skipped": str(error)}
    runner = LiteRTRunner(flatbuffer)
    metadata.update(export_format="litert", signatures={"serving_default": runner.signature()})
    metadata["litert"] = {"file": LITERT_FILE, "size_bytes": len(flatbuffer),
                          "converter_size_bytes": len(converted), "quantize": quantize,
                          "select_tf_ops": bool(select_tf_ops), "input": runner.input_details(),
                          "output": runner.output_details(), "calibration": calibration,
                          "verification": {**verification, "seed": seed}, "runtime": runner.runtime}

    def write(folder):
        folder.mkdir()
        (folder / LITERT_FILE).write_bytes(flatbuffer)
        (folder / LABELS_FILE).write_text("".join(f"{label}\n" for label in spec["class_names"]))
        write_metadata(folder, metadata)

    return write_version(root, name, write)


def check_convertible(extractor, select_tf_ops=False):
    """Raises ValueError at once (the converter's refusal, naming the ops and the option) where LiteRT cannot convert
    a text extractor's ops, as `export_litert` would after training: string splitting and lookups need
    `select_tf_ops=True`, TF Text's ops cannot be converted at all. Image extractors pass (LiteRT's built-in ops).

    Args:
        extractor: An `Extractor`.
        select_tf_ops: As for `export_litert`.
    """
    if extractor.input_kind != "text":
        return
    module = tf.Module()
    module.extractor = extractor
    module.extractor_variables = [variable.value for variable in extractor.variables]

    @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="texts")])
    def serve(texts):
        return {"features": extractor(texts, training=False)}

    with tempfile.TemporaryDirectory(prefix="tfxfer-litert-check-") as scratch:
        tf.saved_model.save(module, scratch, signatures={"serving_default": serve})
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=["serving_default"])
        _configure(converter, "none", "float32", select_tf_ops, None, None, 0, None, 0)
        _convert(converter, select_tf_ops)


def check_text_options(input_kind, quantize="none", input_type="float32"):
    """Refuses the LiteRT options a text model cannot take (`export_litert` checks; the CLI, before training)."""
    if input_kind == "text" and input_type != "float32":
        raise ValueError(f"input_type={input_type!r} is for image models; a text model takes strings: leave it out.")
    if input_kind == "text" and quantize == "int8":
        raise ValueError("quantize='int8' calibrates in LiteRT's interpreter, which cannot run the string ops of a "
                         "text model: use quantize='dynamic' or quantize='float16' (weights quantized, strings kept).")


def _reference_module(model, spec, input_type):
    """`(module, signatures)` of the served graph with one input, as the `.tflite` file will hold it."""
    module = tf.Module()
    module.layers = list(model.layers)  # not the model, which tracks its optimizer (see signatures.serving_module)
    module.model_variables = [variable.value for variable in model.variables]
    key = next(iter(Task(spec["task_type"], spec["class_names"]).served_outputs))
    if spec["input_kind"] == "text":
        @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name="texts")])
        def serve(texts):
            return {key: model(texts, training=False)}
    else:
        size, value_range, method = tuple(spec["image_size"]), spec["value_range"], spec["interpolation"]

        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.as_dtype(input_type), name="images")])
        def serve(images):
            # Resized as float32: LiteRT's full-integer kernels do not resize uint8 tensors.
            pixels = tf.cast(images, tf.float32)
            return {key: model(resize_and_scale(pixels, size, value_range, method), training=False)}
    return module, {"serving_default": serve}


class _Samples:
    """Examples as the `.tflite` file takes them: pixels at the extractor's size (decoded and resized as training
    decodes them), or strings; drawn from a `DataSplits`."""

    def __init__(self, spec, input_type):
        self.spec, self.dtype = spec, np.dtype(input_type)

    def draw(self, data, split, count, rng):
        inputs = data.examples(split)[0]
        chosen = sorted(rng.choice(len(inputs), size=min(count, len(inputs)), replace=False).tolist())
        return [litert_input(inputs[index], self.spec, self.dtype) for index in chosen]

    def held_out(self, data, count, rng):
        """`(examples, where they came from)` to verify the written file on."""
        if data is not None:
            for split in ("validation", "test", "train"):
                if data.sizes.get(split):
                    return self.draw(data, split, count, rng), f"{split} split"
        if self.spec["input_kind"] == "text":
            return [np.array([text], dtype=object) for text in _TEXTS], "fixed sentences (no data given)"
        height, width = self.spec["image_size"]
        pixels = rng.uniform(0, 255, (min(count, 8), 1, height, width, 3))
        return list(pixels.round().astype(self.dtype) if self.dtype == np.uint8 else pixels.astype(self.dtype)), \
            "random pixels (no data given)"


def _configure(converter, quantize, output_type, select_tf_ops, samples, data, calibration_size, rng, seed):
    """Sets the converter's optimizations and op sets; returns the calibration record for the metadata."""
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if quantize == "int8" else tf.lite.OpsSet.TFLITE_BUILTINS
    converter.target_spec.supported_ops = [builtins] + ([tf.lite.OpsSet.SELECT_TF_OPS] if select_tf_ops else [])
    if quantize == "none":
        return None
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize != "int8":
        return None
    examples = samples.draw(data, "train", calibration_size, rng)
    converter.representative_dataset = lambda: ([example] for example in examples)
    if output_type == "uint8":
        converter.inference_output_type = tf.uint8
    return {"split": "train", "examples": len(examples), "seed": seed}


def _convert(converter, select_tf_ops):
    """The flatbuffer; a converter failure over missing ops becomes an error naming them and the option (and the
    converter's own report of it, which it also writes to stderr, is left out)."""
    try:
        with _held_stderr() as held:
            flatbuffer = converter.convert()
    except Exception as error:  # the converter raises its own ConverterError, not exported by tf.lite
        message = str(error)
        ops = sorted(set(re.findall(r"'(tf\.[\w>]+)' op is neither a custom op nor a flex op", message)) |
                     set(re.findall(r"\b(tf\.[\w>]+)\s*\{", message)))
        if not ops:
            _replay(held)
            raise
        _replay(held, leave_out=_CONVERTER_REPORT)  # which the error below replaces
        library_ops = [op for op in ops if ">" in op]  # e.g. tf.TFText>RoundRobinTrim
        if library_ops:
            raise ValueError(f"LiteRT cannot convert {', '.join(library_ops)}: custom ops of a TensorFlow library "
                             "(such as TF Text) that neither LiteRT's built-in ops nor select TF ops include; export "
                             "this model as a SavedModel (format='savedmodel').") from None
        if select_tf_ops:
            raise ValueError(f"LiteRT cannot convert the model's ops {', '.join(ops)}, even as select TF ops; "
                             "export it as a SavedModel (format='savedmodel') instead.") from None
        raise ValueError(f"LiteRT's built-in ops cannot express {', '.join(ops)} (used by the model); pass "
                         "select_tf_ops=True to include them as TensorFlow ops (the app then needs "
                         "LiteRT's Flex delegate), or export a SavedModel.") from None
    _replay(held, leave_out=_CONVERTER_REPORT)  # with select TF ops, its list of them (the metadata has the file's)
    return flatbuffer


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _held_stderr():
    """Holds what C++ code writes to file descriptor 2 while the block runs (one block at a time in a process: the
    descriptor is the whole process's); yields a list that then holds the bytes. Without a file descriptor 2 (a
    daemon's, closed), nothing is held."""
    held = []
    with _STDERR_LOCK:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            yield held
            return
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            try:
                yield held
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                capture.seek(0)
                held.append(capture.read())


#: The lines of the converter's own report of ops it cannot convert (MLIR diagnostics and a summary).
_CONVERTER_REPORT = re.compile(r"^\s*$|^(loc\(|<unknown>:|error: |Some ops are not supported|TF Select ops:|Details:|"
                               r"\s+tf\.)|Flex ops: Flex|See instructions: https://www\.tensorflow\.org/lite/guide/")


def _replay(held, leave_out=None):
    """Writes held stderr bytes back to file descriptor 2, less the lines that match `leave_out`."""
    lines = [line for line in b"".join(held).splitlines(keepends=True)
             if leave_out is None or not leave_out.search(line.decode("utf-8", "replace"))]
    if lines:
        os.write(2, b"".join(lines))


def _packed(converted, examples):
    """The converter's file with its repeated vectors stored once (`tfxfer.serving.litert_pack`) where the
    interpreter gives the converter's scores bit for bit on up to 10 held-out examples; else, and where the
    interpreter cannot run the file (select TF ops), the converter's file."""
    packed = share_repeated_vectors(converted)
    if len(packed) == len(converted):
        return converted
    try:
        ours, theirs = LiteRTRunner(packed), LiteRTRunner(converted)
        same = all(np.array_equal(ours.run(example), theirs.run(example)) for example in examples[:10])
    except (RuntimeError, ValueError):  # the interpreter's refusals
        return converted
    return packed if same else converted


def _verify(flatbuffer, reference, task, held_out):
    """The written file against the SavedModel graph on held-out examples: largest score difference, top-1
    agreement (for class tasks)."""
    examples, source = held_out
    runner = LiteRTRunner(flatbuffer)
    name = runner.input_name
    expected = np.concatenate([next(iter(reference(**{name: tf.constant(example)}).values())).numpy()
                               for example in examples])
    got = np.concatenate([runner.run(example) for example in examples])
    record = {"examples": len(examples), "source": source, "reference": "the SavedModel graph of the same export",
              "max_score_difference": float(np.max(np.abs(got - expected))), "top1_agreement": None}
    if task.has_classes:
        record["top1_agreement"] = float(np.mean(got.argmax(axis=1) == expected.argmax(axis=1)))
    return record
