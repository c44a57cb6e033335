"""Running an export the way a client does: its `serving_default` signature on image files, texts or a CSV."""

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from tfxfer.data.decoding import IMAGE_EXTENSIONS, decodable
from tfxfer.data.images import path_hint, rotation_note
from tfxfer.data.errors import BadInputs
from tfxfer.data.folders import list_files
from tfxfer.data.tables import table_files
from tfxfer.extractors.resolve import load_with_text_ops
from tfxfer.data.task import Task
from tfxfer.serving import text_inputs
from tfxfer.serving.formats import is_litert_export
from tfxfer.serving.versioning import METADATA_FILE, resolve_export



class ExportedModel:
    """An export loaded with TensorFlow, run through its `serving_default` signature as TF Serving runs it.

    Attributes:
        path: The version folder.
        version: The version number.
        metadata: The export's `assets.extra/tfxfer.json` as a dict.
        task_type: `"multiclass"`, `"multilabel"` or `"regression"`.
        class_names: Class (or target) names in output order.
        input_kind: `"image"` or `"text"`.
        signatures: The SavedModel's signatures (`serving_default`, `metadata`, and `serving_images` for images).
    """

    def __init__(self, path):
        self.path = resolve_export(path)
        self._read_metadata("a SavedModel")
        # BERT-style text exports use TensorFlow Text ops, which importing tensorflow_text registers.
        try:
            self._saved_model = load_with_text_ops(tf.saved_model.load, str(self.path), str(self.path))
        except (tf.errors.OpError, ValueError, OSError) as error:
            raise ValueError(f"{self.path} could not be loaded ({str(error).strip().splitlines()[0]}); the version may "
                             "be damaged or partly copied: export the model again, or pass an earlier version.") \
                from None
        self.signatures = self._saved_model.signatures

    def _read_metadata(self, what):
        self.version = int(self.path.name) if self.path.name.isdigit() else None
        metadata_file = self.path / METADATA_FILE
        if not metadata_file.is_file():
            raise ValueError(f"{self.path} is {what} but not a tfxfer export (no {METADATA_FILE}); "
                             "export models with tfxfer.export.")
        try:
            self.metadata = json.loads(metadata_file.read_text())
            self.task_type = self.metadata["task_type"]
            self.class_names = list(self.metadata["class_names"])
            self.input_kind = self.metadata["input_kind"]
        except (ValueError, TypeError, KeyError) as error:  # not JSON; JSON but not the metadata's object
            raise ValueError(f"{metadata_file} is damaged ({type(error).__name__}: {error}); export the model again, "
                             "or pass an earlier version.") from None

    def __repr__(self):
        return (f"ExportedModel({str(self.path)!r}: {self.input_kind} {self.task_type}, "
                f"{len(self.class_names)} outputs {self.class_names[:10]})")

    def predict(self, inputs, *, text_column=None, batch_size=32, on_bad="error", texts=False, sep=None,
                column_names=None, encoding="utf-8"):
        """Runs `serving_default` on image files or texts and returns one row per input.

        Args:
            inputs: For image exports, image files and folders (searched recursively for
                `.jpg .jpeg .png .gif .bmp .webp` files, in sorted order). For text exports, texts (bytes are
                decoded as UTF-8; None and NaN are empty texts); `.txt` files (one text each, as training reads
                them) and folders of them (searched recursively); and CSV/TSV files (`.csv`, `.tsv`, `.tab`) and
                DataFrames, whose `text_column` gives the texts. A path object, a string that ends in
                `.txt`/`.csv`/`.tsv`/`.tab`, or one that names an existing folder, is read as a path; other strings
                are texts. A single string or path is one input.
            text_column: The column of texts in CSV/TSV inputs; by default the one the model was trained on
                (`text` unless `load_text(text_column=...)` said otherwise), or the only column. A model trained on
                texts joined from several columns (`load_text(text_column=[...])`) joins those columns of the CSV
                the same way by default; pass the list of this file's columns that hold them, in order, where their
                names differ. (Texts given directly must be joined already.)
            batch_size: Inputs per call of the signature.
            on_bad: `"error"` stops at files that do not decode (all are named); `"skip"` leaves them out and lists
                them in the table's `attrs["skipped"]`.
            texts: Text exports: take every input as a text, even one that names a file.
            sep: The CSV/TSV field separator (by default from the suffix, see `tfxfer.data.read_table`). With `sep`,
                `text_column` or `column_names`, a `.txt` file is a table too, as training reads a `.txt` data file.
            column_names: The columns of CSV/TSV inputs without a header row (e.g. `["label", "text"]`).
            encoding: The encoding of `.txt` and CSV/TSV files.

        Returns:
            A pandas DataFrame: the input (`file` for images; `text`, and `file` for texts read from files); for
            multiclass, `class` (the best) and `score` (its score); for multilabel, `labels` (the names above the
            threshold, `;`-separated, best first); for both, `score_<class name>` per class; for regression, one
            column per target.

        Raises:
            FileNotFoundError: A path does not exist.
            ValueError: Files do not decode (all are named, with the reason), or a CSV has no such column.
            tfxfer.data.DataError: A CSV/TSV file is missing or malformed.

        Example:
            >>> exported = load_exported(exported_path)  # a tfxfer.export folder
            >>> list(exported.predict(data.examples("validation")[0][:2]).columns)
            ['file', 'class', 'score', 'score_ants', 'score_bees', 'score_wasps']
        """
        if isinstance(inputs, (str, bytes, os.PathLike)):
            inputs = [inputs]
        elif isinstance(inputs, pd.Series):
            inputs = inputs.tolist()
        bad = BadInputs(on_bad)
        table = {"sep": sep, "column_names": column_names, "encoding": encoding}
        if isinstance(inputs, pd.DataFrame) and self.input_kind == "image":
            raise TypeError(f"An image model takes image files: pass the DataFrame's column of paths, e.g. "
                            f"frame[{str(inputs.columns[0]) if len(inputs.columns) else 'path'!r}].")
        if self.input_kind == "image":
            tables = table_files(inputs)
            if tables:  # it read as "not an image: text", which says nothing of what to pass
                raise ValueError(f"{tables[0]} is a table; an image model takes image files: pass the images or their "
                                 "folder, or the table's column of paths (pandas.read_csv(...)['path']).")
            items = _image_files(inputs, bad)
            columns = {"file": [str(item) for item in items]}
            argument, values = "image_bytes", items
        else:
            joined = self.metadata.get("joined_columns")
            if isinstance(inputs, pd.DataFrame):  # its text column, as a CSV's
                pairs = text_inputs.table_texts(inputs, text_column, table, bad, joined)
            elif texts:
                pairs = [text_inputs.literal(position, item, bad) for position, item in enumerate(inputs)]
            else:
                pairs = text_inputs.texts_of(inputs, text_column, table, bad, joined)
            pairs = [pair for pair in pairs if pair is not None]
            columns = {"text": [text for _, text in pairs]}
            if any(source is not None for source, _ in pairs):
                columns["file"] = [source or "" for source, _ in pairs]  # blank for a text given as itself
            argument, values = "texts", [text for _, text in pairs]
        outputs = [self._run(argument, values[start:start + batch_size])
                   for start in range(0, len(values), batch_size)]
        table = self._table(columns, outputs)
        table.attrs["skipped"] = bad.skipped
        return table

    def _run(self, argument, batch):
        """The served outputs (NumPy arrays by key) of one batch of image paths or texts."""
        if self.input_kind == "image":
            batch = [Path(path).read_bytes() for path in batch]
        result = self.signatures["serving_default"](**{argument: tf.constant(batch, tf.string)})
        return {key: value.numpy() for key, value in result.items()}

    def _table(self, columns, outputs):
        task = Task(self.task_type, self.class_names)
        merged = {key: _concatenate(outputs, key, len(self.class_names)) for key in task.served_outputs}
        return pd.DataFrame({**columns, **task.prediction_columns(merged, taken=columns)})


def _concatenate(outputs, key, width):
    if not outputs:
        return np.zeros((0, width), np.float32)
    return np.concatenate([output[key] for output in outputs])


def _image_files(inputs, bad):
    files = []
    for item in inputs:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"An image export predicts on image files and folders, not {type(item).__name__}; for "
                            "decoded pixels, call its signatures['serving_images'](images=...) with float32 "
                            "[n, height, width, 3] in [0, 255].")
        path = Path(item)
        if path.is_dir():
            found = list_files(path, IMAGE_EXTENSIONS, bad)  # as training lists a class folder
            if not found:
                raise FileNotFoundError(f"{path} holds no image files ({', '.join(IMAGE_EXTENSIONS)}); an image "
                                        "model reads image files and folders of them.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            shown = item if "://" in str(item) else path  # a URL as written (a path folds its //)
            raise FileNotFoundError(f"Image file {shown} does not exist{path_hint(str(item), path)}.")
    kept = decodable(files, bad, skip_does="predict the others")
    note = rotation_note(kept)
    if note:  # as training notes it: the served model sees the files as stored
        warnings.warn(note, stacklevel=3)
    return kept


def load_exported(path):
    """Loads an export with TensorFlow, to run it on image files, texts or a CSV of texts.

    LiteRT exports (`format="litert"`) load too, into a `tfxfer.serving.litert_client.LiteRTModel` that runs the
    `.tflite` file in the LiteRT interpreter and returns the same tables.

    Args:
        path: `<root>/<name>` (its highest version is loaded), `<root>/<name>/<version>`, or a LiteRT export's
            `model.tflite`.

    Returns:
        An `ExportedModel` (or `LiteRTModel`); `.predict(inputs)` returns a pandas DataFrame.

    Raises:
        FileNotFoundError: `path` is not an export.
        ValueError: `path` is a SavedModel that tfxfer did not export.

    Example:
        >>> exported = load_exported(exported_path)  # a tfxfer.export folder
        >>> exported.class_names, exported.input_kind
        (['ants', 'bees', 'wasps'], 'image')
    """
    from tfxfer.serving.litert_client import LiteRTModel

    return LiteRTModel(path) if is_litert_export(path) else ExportedModel(path)
