"""Running a LiteRT export as an app does: the `.tflite` file in the LiteRT interpreter (`ai_edge_litert`, the package
that replaces `tf.lite.Interpreter`), one input at a time, with the tables of `tfxfer.serving.client`."""

import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfxfer.data.decoding import decode_file
from tfxfer.data.task import Task
from tfxfer.serving.client import ExportedModel
from tfxfer.serving.versioning import LITERT_FILES, check_exists, resolve_export

LITERT_FILE, LABELS_FILE = LITERT_FILES[:2]


def interpreter_class():
    """The LiteRT interpreter class; an ImportError that says what to install where ai-edge-litert is missing."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError("Running LiteRT (.tflite) exports needs the LiteRT interpreter: pip install "
                          "'tfxfer[litert]' (or ai-edge-litert).") from None
    return Interpreter


class LiteRTRunner:
    """A `.tflite` file's `serving_default` signature in the LiteRT interpreter, one example at a time.

    Args:
        model: The flatbuffer (bytes) or the path of a `.tflite` file.
        num_threads: Interpreter threads; None for LiteRT's default.

    Attributes:
        input_name: The signature's one input (`images` or `texts`).
        output_name: Its one output (`scores` or `predictions`).
        runtime: The interpreter package and its version.

    Example:
        >>> runner = LiteRTRunner(litert_path / "model.tflite", num_threads=1)  # a tfxfer.export(format="litert")
        >>> runner.run(np.full((1, 40, 30, 3), 128.0, np.float32)).shape
        (1, 3)
    """

    def __init__(self, model, num_threads=None):
        content = model if isinstance(model, bytes) else Path(model).read_bytes()
        self.interpreter = interpreter_class()(model_content=content, num_threads=num_threads)
        self._signature = self.interpreter.get_signature_runner("serving_default")
        (self.input_name,), (self.output_name,) = self._inputs(), self._outputs()
        import ai_edge_litert

        self.runtime = {"package": "ai-edge-litert", "version": getattr(ai_edge_litert, "__version__", None)}

    def _inputs(self):
        return list(self._signature.get_input_details())

    def _outputs(self):
        return list(self._signature.get_output_details())

    def run(self, example):
        """The output for one example (`[1, height, width, 3]` pixels or `[1]` strings), dequantized to float32."""
        try:
            output = self._signature(**{self.input_name: example})[self.output_name]
        except RuntimeError as error:
            if "Flex delegate" not in str(error):
                raise
            ops = ", ".join(sorted(set(re.findall(r"\((Flex\w+)\)", str(error))))) or "select TF ops"
            raise RuntimeError(f"The file holds select TF ops ({ops}), which the ai-edge-litert interpreter cannot "
                               "run: run it where LiteRT is linked with the Flex delegate (Android: "
                               "org.tensorflow:tensorflow-lite-select-tf-ops), or export a SavedModel.") from None
        scale, zero_point = self._signature.get_output_details()[self.output_name]["quantization"]
        if scale:
            output = (output.astype(np.float32) - zero_point) * scale
        return output.astype(np.float32)

    def input_details(self):
        """The input tensor: name, dtype, shape (-1 where any size goes), quantization `(scale, zero point)`."""
        return _details(self.input_name, self._signature.get_input_details()[self.input_name])

    def output_details(self):
        """The output tensor, described as `input_details` describes the input."""
        return _details(self.output_name, self._signature.get_output_details()[self.output_name])

    def signature(self):
        """`{"inputs": {name: "dtype shape"}, "outputs": {...}}`, as the SavedModel signature tables say it."""
        return {"inputs": _described(self.input_details()), "outputs": _described(self.output_details())}


def _details(name, details):
    scale, zero_point = details["quantization"]
    return {"name": name, "dtype": np.dtype(details["dtype"]).name if details["dtype"] is not np.object_ else "string",
            "shape": [int(side) for side in details["shape_signature"]],
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None}


def _described(details):
    return {details["name"]: f"{details['dtype']} [{', '.join('any' if s < 0 else str(s) for s in details['shape'])}]"}


def verification_summary(litert):
    """What the verification of a LiteRT export found, in a phrase: `metadata["litert"]` of the export.

    Example:
        >>> verification_summary({"verification": {"examples": 2, "source": "validation split",
        ...                                        "max_score_difference": 3e-7, "top1_agreement": 1.0}})[-46:]
        'from the SavedModel 3e-07, top-1 agreement 1.0'
    """
    check = litert["verification"]
    if check.get("skipped"):  # the interpreter's sentence, within ours
        said = check["skipped"].rstrip(".")
        return f"not verified: {said[:1].lower() + said[1:] if said[1:2].islower() else said}"  # not "liteRT'
    agreement = "" if check["top1_agreement"] is None else f", top-1 agreement {check['top1_agreement']}"  # regression
    return (f"verified on {check['examples']} examples of the {check['source']}: largest score difference from the "
            f"SavedModel {check['max_score_difference']:.2g}{agreement}")


class LiteRTModel(ExportedModel):
    """A LiteRT export loaded in the LiteRT interpreter; `predict` returns the tables `ExportedModel.predict` does.

    Images are decoded and resized as training decodes them, then given to the file as pixels in [0, 255].

    Args:
        path: `<root>/<name>`, a version folder, or its `model.tflite`.
        num_threads: Interpreter threads; None for LiteRT's default.

    Attributes:
        path, version, metadata, task_type, class_names, input_kind: As for `ExportedModel`.
        runner: The `LiteRTRunner`.

    Example:
        >>> exported = tfxfer.load_exported(litert_path)  # a folder that tfxfer.export(format="litert") wrote
        >>> type(exported).__name__, list(exported.predict(data.examples("validation")[0][:2]).columns)
        ('LiteRTModel', ['file', 'class', 'score', 'score_ants', 'score_bees', 'score_wasps'])
    """

    def __init__(self, path, num_threads=None):
        path = Path(path)
        if path.suffix == ".tflite" and not path.is_dir():  # a file; a folder may be named so (`--export a.tflite`)
            check_exists(path)
            path = path.resolve()  # a link's target, in its version folder
            if path.name != LITERT_FILE:  # its folder's metadata and labels are another file's (a tester's find)
                raise ValueError(f"{path} is not the {LITERT_FILE} of a tfxfer export, whose version folder holds its "
                                 f"labels and metadata: pass a version folder or its {LITERT_FILE}.")
            path = path.parent
        self.path = resolve_export(path, LITERT_FILES)
        self._read_metadata("a .tflite file")
        try:
            self.runner = LiteRTRunner(self.path / LITERT_FILE, num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{self.path / LITERT_FILE} could not be loaded ({str(error).strip().splitlines()[0]}); "
                             "the version may be damaged or partly copied: export the model again.") from None
        self._input_dtype = np.dtype(self.runner.input_details()["dtype"]) if self.input_kind == "image" else None

    def _run(self, argument, batch):
        rows = np.concatenate([self.runner.run(self._prepare(item)) for item in batch]) if batch else \
            np.zeros((0, len(self.class_names)), np.float32)
        task = Task(self.task_type, self.class_names)
        return {key: value.numpy() for key, value in task.serve(tf.constant(rows), self.metadata["threshold"]).items()}

    def _prepare(self, item):
        return litert_input(item, self.metadata, self._input_dtype)


def litert_input(item, spec, dtype):
    """One input as a LiteRT export takes it: a text as `[1]` strings, or an image file decoded and resized as
    training decodes it (`spec`: `input_kind`, `image_size`, `interpolation`), as `[1, height, width, 3]` pixels in
    [0, 255] of `dtype` (uint8 rounded).

    Example:
        >>> spec = {"input_kind": "image", "image_size": [8, 8], "interpolation": "bilinear"}
        >>> litert_input(data.examples("train")[0][0], spec, np.uint8).shape
        (1, 8, 8, 3)
    """
    if spec["input_kind"] == "text":
        return np.array([item], dtype=object)
    pixels = decode_file(item, spec["image_size"], (0.0, 255.0), spec["interpolation"]).numpy()[None]
    return (np.round(pixels) if np.dtype(dtype) == np.uint8 else pixels).astype(dtype)
