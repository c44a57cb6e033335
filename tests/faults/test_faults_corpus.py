"""Bad input across the public API and the command line: one table of cases, one classifier, one test.

Each case provokes one kind of bad input on real files (or a real `tfxfer` process) and says what a user should get:

- **clear error**: an exception of the type the API documents, whose message names the culprit (file, row, column,
  handle, argument) and carries no traceback of its own; for the command line, exit code 1 (2 for usage) with one
  `tfxfer <command>: error: ...` line naming the culprit and no "Traceback" on stderr;
- **counted skip**: the loader left items out and recorded each in `.skipped`, and warned;
- **accepted**: the input is odd but valid (an animated GIF, a 16-bit PNG) and every item was loaded.

What must never happen is a **bare traceback** (any other exception type: KeyError, EOFError, a `tf.errors.*` leaking
from deep inside, or a message that names nothing) or a **silent drop** (fewer items than given, none recorded).

`classify` is shared with `bench/bench_faults.py`, which runs every case (CI runs the `fast` ones) and prints the
table of kinds tried / clear / bare tracebacks / silent drops.
"""

import contextlib
import dataclasses
import hashlib
import os
import struct
import subprocess
import sys
import tarfile
import warnings
import zlib
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

import tfxfer
from helpers import tiny_cnn
from helpers import class_folders, jpeg_bytes, write_image
from helpers import in_one_process, noise_folders
from tfxfer.data import DataError
from tfxfer.extractors import save_hub_format
from tfxfer.search import SearchSpace, TransferSearch

CLEAR, SKIP, ACCEPTED, BARE, SILENT = "clear error", "counted skip", "accepted", "bare traceback", "silent drop"
#: Signs that a message carries a traceback or a framework's internals instead of words for the user.
_LEAKS = ("Traceback", 'File "', "in user code", "Detected at node", "{{node")


class NotAsExpected(AssertionError):
    """A case's outcome differs from what a user should get (known bugs are xfailed on exactly this)."""


@dataclasses.dataclass
class Outcome:
    """What one case gave: one of the five kinds, and the evidence (exception and message, or counts)."""

    kind: str
    detail: str


@dataclasses.dataclass
class Case:
    """One kind of bad input.

    Attributes:
        kind: What is bad, in words (the table's first column).
        area: Which part of tfxfer takes it: images, tables, text, extractor, archive, training, search, export, cli.
        provoke: `provoke(workspace)` feeds the bad input to the public API and returns what it returned, or raises;
            for the command line, it returns `tfxfer` argument lists and the classifier runs the process.
        expect: CLEAR, SKIP or ACCEPTED.
        names: `names(workspace)`: strings the error message must contain (file, row, column, handle, argument).
        raises: The exception types the API documents for this input.
        given: Items in the source, to tell a silent drop from a counted skip (None where not a data set).
        bug: A known bug in a file this suite may not change: the case is xfailed (strict) with this reason.
        fast: Runs in CI; the others run in `bench/bench_faults.py`.
        exit_code: For command-line cases: 1 (failure) or 2 (usage).
    """

    kind: str
    area: str
    provoke: object
    expect: str
    names: object = lambda ws: []
    raises: tuple = (ValueError,)
    given: int = None
    bug: str = None
    fast: bool = True
    exit_code: int = 1

    @property
    def cli(self):
        return self.area == "cli"


class Workspace:
    """A fresh folder per case, and tiny real models built once and shared by the cases that need them."""

    def __init__(self, tmp, shared):
        self.tmp = Path(tmp)
        self.shared = Path(shared)

    @property
    def hub(self):
        """A tiny CNN saved in TF Hub's Reusable SavedModel format (16x16 images in [0, 1])."""
        path = self.shared / "tiny_hub"
        if not path.exists():
            save_hub_format(tiny_cnn(), path)
        return path

    @property
    def noise(self):
        """Class folders of noise PNGs, 6 per class, 3 classes."""
        path = self.shared / "noise"
        if not path.exists():
            noise_folders(path, per_class=6)
        return path

    @property
    def exported(self):
        """A tfxfer export of the tiny hub model under a random 3-class head."""
        root = self.shared / "exports"
        if not root.exists():
            extractor = tfxfer.load_extractor(self.hub)
            inputs = keras.Input((*extractor.image_size, 3))
            model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(extractor(inputs)))
            tfxfer.export(model, "noise", root, task_type="multiclass", class_names=["ants", "bees", "wasps"])
        return root / "noise"


@contextlib.contextmanager
def environment(**values):
    """Sets environment variables for the duration of a case (the bench has no monkeypatch)."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update({name: str(value) for name, value in values.items()})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def classify(case, workspace):
    """Runs one case and says what it gave: clear error, counted skip, accepted, bare traceback or silent drop."""
    if case.cli:
        return classify_process(case, workspace, run_cli(case.provoke(workspace)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = case.provoke(workspace)
        except Exception as error:  # Every exception is classified, none escapes: that is the point.
            return classify_error(case, workspace, error)
    return classify_result(case, result, caught)


def classify_error(case, workspace, error):
    message = str(error)
    what = f"{type(error).__name__}: {message.splitlines()[0] if message else ''}"
    if isinstance(error, tf.errors.OpError) or not isinstance(error, case.raises):
        return Outcome(BARE, f"{what} (not a documented {'/'.join(t.__name__ for t in case.raises)})")
    missing = [name for name in case.names(workspace) if name not in message]
    if missing:
        return Outcome(BARE, f"{what} (does not name {missing})")
    leaks = [leak for leak in _LEAKS if leak in message]
    if leaks:
        return Outcome(BARE, f"{what} (message carries {leaks[0]!r})")
    return Outcome(CLEAR, what)


def classify_result(case, result, caught):
    if not (hasattr(result, "sizes") and hasattr(result, "skipped")):
        return Outcome(ACCEPTED, f"returned {type(result).__name__}")
    kept, skipped = sum(result.sizes.values()), len(result.skipped)
    counts = f"given {case.given}, kept {kept}, skipped {skipped}"
    if case.given is not None and kept + skipped < case.given:
        return Outcome(SILENT, f"{counts}: {case.given - kept - skipped} neither kept nor recorded")
    if skipped:
        warned = any("left out or not read" in str(warning.message) for warning in caught)
        if not warned:
            return Outcome(SILENT, f"{counts}, but no warning said so")
        return Outcome(SKIP, counts)
    return Outcome(ACCEPTED, counts)


def run_cli(args, timeout=300):
    """Starts `python -m tfxfer.cli ARGS` (not waiting); `classify_process` reads its result."""
    return subprocess.Popen([sys.executable, "-m", "tfxfer.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def classify_process(case, workspace, process, timeout=300):
    _, stderr = process.communicate(timeout=timeout)
    return classify_said(case, workspace, process.returncode, stderr)


def classify_said(case, workspace, returncode, stderr):
    """What a case's command line said: its exit code and stderr."""
    errors = [line for line in stderr.splitlines() if line.startswith("tfxfer")]
    what = f"exit {returncode}: {errors[0] if errors else stderr.strip().splitlines()[-1:]}"
    if "Traceback" in stderr:
        return Outcome(BARE, f"{what} (a traceback on stderr)")
    if returncode != case.exit_code or len(errors) != 1:
        return Outcome(BARE, f"{what} (expected exit {case.exit_code} and one 'tfxfer ...: error:' line)")
    missing = [name for name in case.names(workspace) if name not in errors[0]]
    if missing:
        return Outcome(BARE, f"{what} (does not name {missing})")
    return Outcome(CLEAR, what)


# --- the bad inputs -------------------------------------------------------------------------------------------

UNIT = dict(image_size=(8, 8), value_range=(0.0, 1.0), validation_split=0)
MULTICLASS = tfxfer.Task("multiclass", ["a", "b"], 2, "sparse")


def _pets(ws, extra=None, contents=b"", counts=None):
    """`pets/{cat,dog}` with 3 PNGs each, and optionally one more file `extra` (a path under pets/)."""
    root = ws.tmp / "pets"
    class_folders(root, counts or {"cat": 3, "dog": 3})
    if extra is not None:
        path = root / extra
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(contents):
            contents(path)
        else:
            path.write_bytes(contents)
    return root


def _load_pets(ws, extra=None, contents=b"", on_bad="error", **options):
    return tfxfer.load_images(_pets(ws, extra, contents, **options), on_bad=on_bad, **UNIT)


def _truncated_png(path):
    buffer = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    buffer.save(path, format="PNG")
    path.write_bytes(path.read_bytes()[:-40])


def png_bomb(width=15000, height=15000):
    """A valid grayscale PNG of `width` x `height` black pixels: a few hundred KB that decode to width*height*3 bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row, rows = zlib.compressobj(6), b"\0" * (width + 1), []
    for start in range(0, height, 1000):
        rows.append(packer.compress(row * min(1000, height - start)))
    rows.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(rows)) + chunk(b"IEND", b"")


def jpeg_declaring(width, height):
    """A small real JPEG whose frame header (SOF0) is rewritten to declare `width` x `height` pixels."""
    contents = bytearray(jpeg_bytes(size=(16, 16)))
    sof = contents.index(b"\xff\xc0")
    contents[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(contents)


def _animated_gif(path):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _png16(path):
    array = np.dstack([np.full((6, 6), value, np.uint16) for value in (65535, 32896, 0)])
    tf.io.write_file(str(path), tf.io.encode_png(array))


def _unsupported_extensions(ws):
    root = _pets(ws, "cat/scan.tiff", lambda path: Image.new("RGB", (6, 6)).save(path, format="TIFF"))
    (root / "dog" / "readme.txt").write_text("not an image")
    return tfxfer.load_images(root, **UNIT)


def _empty_class_folder(ws):
    root = _pets(ws)
    (root / "bird").mkdir()
    return tfxfer.load_images(root, **UNIT)


def _csv(ws, name, text):
    path = ws.tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def _missing_column(ws):
    write_image(ws.tmp / "a.png")
    return tfxfer.load_images(_csv(ws, "photos.csv", "image,label\na.png,x\n"), **UNIT)


def _missing_image_file(ws):
    for name in ("a", "b", "c"):
        write_image(ws.tmp / f"{name}.png")
    return tfxfer.load_images(_csv(ws, "photos.csv", "path,label\na.png,x\nb.png,y\ngone.png,x\nc.png,y\n"), **UNIT)


def _unknown_label(ws):
    path = _csv(ws, "texts.csv", "text,label\nwin a prize,spam\nsee you,ham\nhello,eggs\nlunch?,ham\n")
    return tfxfer.load_text(path, class_names=["ham", "spam"], validation_split=0)


def _target(value):
    def provoke(ws):
        path = _csv(ws, "scores.csv", f"text,score\na,0.5\nb,{value}\nc,1.5\nd,2.5\n")
        return tfxfer.load_text(path, label_column="score", task="regression", validation_split=0)
    return provoke


def _undecodable_text(ws):
    for name, texts in (("pos", ["great", "fine"]), ("neg", ["bad", "awful"])):
        for i, text in enumerate(texts):
            path = ws.tmp / "reviews" / name / f"{i}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    (ws.tmp / "reviews" / "neg" / "2.txt").write_bytes(b"caf\xe9")
    return tfxfer.load_text(ws.tmp / "reviews", validation_split=0)


DUPLICATES = ("text,label,split\nwin a prize now,spam,train\nsee you at 5,ham,train\nfree entry,spam,train\n"
              "lunch today?,ham,train\nwin a prize now,spam,test\nok see you,ham,test\n")


def _duplicates_across_splits(on_bad):
    def provoke(ws):
        return tfxfer.load_text(_csv(ws, "sms.csv", DUPLICATES), split_column="split", on_bad=on_bad)
    return provoke


def _duplicate_images_across_splits(ws):
    write_image(ws.tmp / "a.png")
    write_image(ws.tmp / "b.png", (30, 200, 30))
    write_image(ws.tmp / "c.png", (30, 30, 200))
    table = "path,label,split\na.png,x,train\nb.png,y,train\nc.png,x,val\n./a.png,x,val\n"
    return tfxfer.load_images(_csv(ws, "photos.csv", table), split_column="split", **UNIT)


def _ragged_csv(ws):
    return tfxfer.load_text(_csv(ws, "ragged.csv", "text,label\na,x\nb,y,z,w\nc,x\n"))


def _empty_csv(ws):
    return tfxfer.load_text(_csv(ws, "empty.csv", ""))


def _save_module(module, path):
    tf.saved_model.save(module, str(path))
    return path


class _RankOneOutput(tf.Module):
    """A Reusable SavedModel whose output is one number per image, which no dense head can take."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(1.0, name="scale/kernel")
        self.variables_list = [self.scale]

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3]), tf.TensorSpec([], tf.bool)])
    def __call__(self, images, training=False):
        return tf.reduce_mean(images, axis=[1, 2, 3]) * self.scale


def _no_callable(ws):
    module = tf.Module()
    module.weight = tf.Variable(1.0)
    return tfxfer.load_extractor(_save_module(module, ws.tmp / "no_call"))


def _output_does_not_fit_head(ws):
    extractor = tfxfer.load_extractor(_save_module(_RankOneOutput(), ws.tmp / "scalar_output"))
    data = tfxfer.load_images(ws.noise, extractor=extractor, validation_split=0.25, batch_size=8)
    return tfxfer.TransferModel(extractor, epochs=1, verbose=0).fit(data)


UNCACHED_HANDLE = "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vectr/5"


def _uncached_handle(ws):
    with environment(TFHUB_CACHE_DIR=ws.tmp / "hub_cache"):
        return tfxfer.load_extractor(UNCACHED_HANDLE)


def _archive(ws, name, add):
    path = ws.tmp / name
    with tarfile.open(path, "w:gz") as tar:
        add(tar)
    return path


def _truncated_archive(ws):
    archive = _archive(ws, "model.tar.gz", lambda tar: tar.add(ws.hub, arcname="."))
    archive.write_bytes(archive.read_bytes()[:archive.stat().st_size // 2])
    with environment(TFHUB_CACHE_DIR=ws.tmp / "hub_cache"):
        return tfxfer.load_extractor(archive)


def _not_an_archive(ws):
    (ws.tmp / "model.tar.gz").write_bytes(b"<html>404 Not Found</html>\n")
    with environment(TFHUB_CACHE_DIR=ws.tmp / "hub_cache"):
        return tfxfer.load_extractor(ws.tmp / "model.tar.gz")


def _archive_member_leaves(ws):
    def add(tar):
        tar.add(ws.hub, arcname=".")
        tar.addfile(tarfile.TarInfo("../../evil"), None)

    with environment(TFHUB_CACHE_DIR=ws.tmp / "hub_cache"):
        return tfxfer.load_extractor(_archive(ws, "model.tar.gz", add))


def _wrong_size_data(ws):
    extractor = tfxfer.load_extractor(ws.hub)
    data = tfxfer.load_images(ws.noise, image_size=(24, 24), value_range=(0, 1), validation_split=0.25, batch_size=8)
    return tfxfer.TransferModel(extractor, epochs=1, verbose=0).fit(data)


def _wrong_value_range_data(ws):
    extractor = tfxfer.load_extractor(ws.hub)
    data = tfxfer.load_images(ws.noise, image_size=(16, 16), value_range=(0, 255), validation_split=0.25,
                              batch_size=8)
    return tfxfer.TransferModel(extractor, epochs=1, verbose=0).fit(data)


def _wrong_size_arrays(ws):
    images = np.random.default_rng(0).random((4, 24, 24, 3), dtype=np.float32)
    return tfxfer.TransferModel(tfxfer.load_extractor(ws.hub), epochs=1, verbose=0).fit(
        (images, np.array([0, 1, 0, 1])), task=MULTICLASS)


def _labels_outside_head(ws):
    images = np.random.default_rng(0).random((6, 16, 16, 3), dtype=np.float32)
    return tfxfer.TransferModel(tfxfer.load_extractor(ws.hub), epochs=1, verbose=0).fit(
        (images, np.array([0, 1, 2, 3, 0, 1])), task=MULTICLASS)


def _text_on_image_extractor(ws):
    data = tfxfer.load_text(pd.DataFrame({"text": list("abcdefgh"), "label": list("xyxyxyxy")}), validation_split=0.25)
    return tfxfer.TransferModel(tfxfer.load_extractor(ws.hub), epochs=1, verbose=0).fit(data)


def _single_class_task(ws):
    images = np.zeros((2, 16, 16, 3), np.float32)
    return tfxfer.TransferModel(tfxfer.load_extractor(ws.hub), verbose=0).fit(
        (images, np.zeros(2)), task=tfxfer.Task("multiclass", ["a"], 1, "sparse"))


def _transfer_model(ws, **options):
    images = np.zeros((2, 16, 16, 3), np.float32)
    return tfxfer.TransferModel(tfxfer.load_extractor(ws.hub), verbose=0, **options).fit(
        (images, np.array([0, 1])), task=MULTICLASS)


def _search(ws, space=None, data=None, max_trials=1):
    data = data or tfxfer.load_images(ws.noise, image_size=(16, 16), value_range=(0, 1), batch_size=8,
                                      validation_split=0.25, seed=3)
    return TransferSearch(tiny_cnn(), max_trials=max_trials, epochs=1, directory=ws.tmp / "runs", project_name="p",
                          space=space or SearchSpace(frozen_blocks=[4], warmup_epochs=0), verbose=0).search(data)


def _search_without_validation(ws):
    data = tfxfer.load_images(ws.noise, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0)
    return _search(ws, data=data)


def _truncated_oracle(ws):
    """What a SIGKILL during Keras Tuner's (non-atomic) write of oracle.json leaves, then a resume."""
    _search(ws)
    oracle = ws.tmp / "runs" / "p" / "oracle.json"
    oracle.write_text(oracle.read_text()[:200])
    return _search(ws, max_trials=2)


def _export_model(ws):
    extractor = tfxfer.load_extractor(ws.hub)
    inputs = keras.Input((*extractor.image_size, 3))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(extractor(inputs)))


def _export_root_is_a_file(ws):
    (ws.tmp / "saved_models").write_text("not a folder")
    return tfxfer.export(_export_model(ws), "noise", ws.tmp / "saved_models", task_type="multiclass",
                         class_names=["a", "b", "c"])


def _predict_undecodable(ws):
    good = sorted((ws.noise / "ants").iterdir())[0]
    (ws.tmp / "broken.jpg").write_bytes(jpeg_bytes()[:700])
    return tfxfer.load_exported(ws.exported).predict([good, ws.tmp / "broken.jpg"])


def _cli_pets_with_truncated_jpeg(ws):
    root = _pets(ws, "dog/truncated.jpg", jpeg_bytes()[:1500])
    return ["train", root, "--extractor", ws.hub, "--epochs", "1", "--validation-split", "0.34"]


def _cli_truncated_archive(ws):
    archive = _archive(ws, "model.tar.gz", lambda tar: tar.add(ws.hub, arcname="."))
    archive.write_bytes(archive.read_bytes()[:archive.stat().st_size // 2])
    return ["inspect", archive]


def _cli_search_space(ws):
    return ["tune", ws.noise, "--extractor", ws.hub, "--freeze-choices", "9", "--dir", ws.tmp / "runs" / "p"]


def _cli_missing_column(ws):
    write_image(ws.tmp / "a.png")
    return ["train", _csv(ws, "photos.csv", "image,label\na.png,x\n"), "--extractor", ws.hub]


def _cli_not_an_export(ws):
    (ws.tmp / "models").mkdir()
    return ["predict", ws.tmp / "models", sorted((ws.noise / "ants").iterdir())[0]]


def _cli_bad_number(ws):
    return ["train", ws.noise, "--extractor", ws.hub, "--epochs", "many"]


CASES = [
    # Images in class folders.
    Case("corrupt image (random bytes named .jpg)", "images",
         lambda ws: _load_pets(ws, "dog/random.jpg", bytes(range(256)) * 4), CLEAR,
         lambda ws: ["pets/dog/random.jpg", "not an image"], (DataError,), given=7),
    Case("truncated JPEG", "images", lambda ws: _load_pets(ws, "dog/truncated.jpg", jpeg_bytes()[:1500]), CLEAR,
         lambda ws: ["pets/dog/truncated.jpg", "truncated or corrupt JPEG"], (DataError,), given=7),
    Case("truncated JPEG, on_bad='skip'", "images",
         lambda ws: _load_pets(ws, "dog/truncated.jpg", jpeg_bytes()[:1500], on_bad="skip"), SKIP, given=7),
    Case("truncated PNG", "images", lambda ws: _load_pets(ws, "cat/cut.png", _truncated_png), CLEAR,
         lambda ws: ["pets/cat/cut.png", "truncated or corrupt PNG"], (DataError,), given=7, fast=False),
    Case("zero-byte image", "images", lambda ws: _load_pets(ws, "dog/zero.png", b""), CLEAR,
         lambda ws: ["pets/dog/zero.png", "empty file (0 bytes)"], (DataError,), given=7),
    Case("PNG bomb: 220 KB that decode to 15000 x 15000 pixels", "images",
         lambda ws: _load_pets(ws, "dog/bomb.png", png_bomb()), CLEAR,
         lambda ws: ["pets/dog/bomb.png", "15000 x 15000 pixels", "MAX_IMAGE_PIXELS"], (DataError,), given=7),
    Case("JPEG declaring 60000 x 60000 pixels", "images",
         lambda ws: _load_pets(ws, "dog/huge.jpg", jpeg_declaring(60000, 60000)), CLEAR,
         lambda ws: ["pets/dog/huge.jpg", "60000 x 60000 pixels"], (DataError,), given=7, fast=False),
    Case("animated GIF (first frame used)", "images", lambda ws: _load_pets(ws, "cat/anim.gif", _animated_gif),
         ACCEPTED, given=7),
    Case("16-bit PNG", "images", lambda ws: _load_pets(ws, "cat/deep.png", _png16), ACCEPTED, given=7),
    Case("CMYK JPEG", "images",
         lambda ws: _load_pets(ws, "cat/cmyk.jpg", lambda p: Image.new("CMYK", (9, 9), (0, 90, 200, 10)).save(p)),
         ACCEPTED, given=7),
    Case("wrong extension: PNG bytes named .jpg", "images",
         lambda ws: _load_pets(ws, "cat/png.jpg", lambda p: Image.new("RGB", (9, 9)).save(p, format="PNG")),
         ACCEPTED, given=7),
    Case("wrong extension: TIFF bytes named .png", "images",
         lambda ws: _load_pets(ws, "cat/tiff.png", lambda p: Image.new("RGB", (9, 9)).save(p, format="TIFF")),
         CLEAR, lambda ws: ["pets/cat/tiff.png", "a TIFF image; convert it to PNG or JPEG"], (DataError,), given=7),
    Case("unsupported extensions (.tiff, .txt) in class folders", "images", _unsupported_extensions, SKIP, given=8),
    Case("empty class folder", "images", _empty_class_folder, CLEAR, lambda ws: ["pets/bird", "empty class folder"],
         (DataError,)),
    Case("single-class folder", "images", lambda ws: _load_pets(ws, counts={"cat": 3}), CLEAR,
         lambda ws: ["pets", "['cat']", "at least two"], (DataError,)),
    # Tables and texts.
    Case("CSV without the path column", "tables", _missing_column, CLEAR,
         lambda ws: ["photos.csv", "path_column='path'", "['image', 'label']"], (DataError,)),
    Case("CSV row naming a missing image file", "tables", _missing_image_file, CLEAR,
         lambda ws: ["photos.csv, row 4", "gone.png"], (DataError,)),
    Case("label outside class_names", "tables", _unknown_label, CLEAR, lambda ws: ["texts.csv, row 4", "'eggs'"],
         (DataError,)),
    Case("NaN regression target", "tables", _target("nan"), CLEAR,
         lambda ws: ["scores.csv, row 3", "column 'score'", "missing target"], (DataError,)),
    Case("infinite regression target", "tables", _target("inf"), CLEAR,
         lambda ws: ["scores.csv, row 3", "column 'score'", "not finite"], (DataError,)),
    Case("undecodable text (cp1252 byte in a UTF-8 file)", "text", _undecodable_text, CLEAR,
         lambda ws: ["reviews/neg/2.txt", "byte offset 3"], (DataError,)),
    Case("duplicated rows across splits (split column)", "tables", _duplicates_across_splits("error"), CLEAR,
         lambda ws: ["sms.csv, row 6", "row 2"], (DataError,), given=6),
    Case("duplicated rows across splits, on_bad='skip'", "tables", _duplicates_across_splits("skip"), SKIP,
         given=6),
    Case("one image listed in train and validation rows", "tables", _duplicate_images_across_splits, CLEAR,
         lambda ws: ["photos.csv, row 5", "row 2"], (DataError,), given=4, fast=False),
    Case("CSV with a ragged row", "tables", _ragged_csv, CLEAR, lambda ws: ["ragged.csv, row 3 has 4 fields"],
         (DataError,), fast=False),
    Case("zero-byte CSV", "tables", _empty_csv, CLEAR, lambda ws: ["empty.csv", "is empty"], (DataError,),
         fast=False),
    # Extractors.
    Case("SavedModel without a callable", "extractor", _no_callable, CLEAR,
         lambda ws: ["no_call", "nothing to call"]),
    Case("SavedModel whose output does not fit the head (one number per image)", "extractor",
         _output_does_not_fit_head, CLEAR, lambda ws: ["scalar_output"]),
    Case("keras.applications name typo", "extractor",
         lambda ws: tfxfer.load_extractor("MobilNetV2", weights=None), CLEAR,
         lambda ws: ["'MobilNetV2'", "MobileNetV2"]),
    Case("TF Hub handle typo, not cached, offline", "extractor", _uncached_handle, CLEAR,
         lambda ws: [UNCACHED_HANDLE, hashlib.sha1(UNCACHED_HANDLE.encode()).hexdigest()], (OSError,)),
    Case("SavedModel folder that does not exist", "extractor",
         lambda ws: tfxfer.load_extractor(ws.tmp / "mobilenet_v2"), CLEAR, lambda ws: ["mobilenet_v2"],
         (FileNotFoundError,), fast=False),
    # Archives.
    Case("truncated .tar.gz (interrupted download)", "archive", _truncated_archive, CLEAR,
         lambda ws: ["model.tar.gz"]),
    Case("HTML page saved as .tar.gz", "archive", _not_an_archive, CLEAR,
         lambda ws: ["model.tar.gz", "not a readable tar archive"], fast=False),
    Case("archive member with '..'", "archive", _archive_member_leaves, CLEAR,
         lambda ws: ["'../../evil'", "Refusing to extract"], fast=False),
    # Training.
    Case("images of the wrong size for a fixed-size extractor (data decoded at 24x24)", "training",
         _wrong_size_data, CLEAR, lambda ws: ["24, 24", "16, 16"]),
    Case("images decoded in [0, 255] for an extractor that takes [0, 1]", "training", _wrong_value_range_data, CLEAR,
         lambda ws: ["[0, 255]", "[0, 1]", "for_extractor"]),
    Case("image arrays of the wrong size for a fixed-size extractor", "training", _wrong_size_arrays, CLEAR,
         lambda ws: ["24, 24", "16, 16"], fast=False),
    Case("head/task mismatch: labels outside the head's classes", "training", _labels_outside_head, CLEAR,
         lambda ws: ["label"]),
    Case("head/task mismatch: text data on an image extractor", "training", _text_on_image_extractor, CLEAR,
         lambda ws: ["text", "image"], fast=False),
    Case("task with a single class", "training", _single_class_task, CLEAR, lambda ws: ["num_outputs", "got 1"],
         fast=False),
    Case("regime name typo", "training", lambda ws: _transfer_model(ws, regime="finetuning-all"), CLEAR,
         lambda ws: ["regime", "'finetuning-all'"]),
    Case("freeze_blocks beyond the extractor's blocks", "training",
         lambda ws: _transfer_model(ws, regime="mid-layer", freeze_blocks=9), CLEAR,
         lambda ws: ["freeze_blocks", "got 9"], fast=False),
    Case("negative learning rate", "training", lambda ws: _transfer_model(ws, learning_rate=-0.001), CLEAR,
         lambda ws: ["learning_rate", "-0.001"], fast=False),
    # Search.
    Case("search space out of range", "search", lambda ws: _search(ws, SearchSpace(frozen_blocks=[2, 9])), CLEAR,
         lambda ws: ["frozen_blocks", "[2, 9]"]),
    Case("search without a validation split", "search", _search_without_validation, CLEAR,
         lambda ws: ["validation split"], fast=False),
    Case("search resumed from a truncated oracle.json (killed mid-write)", "search", _truncated_oracle, CLEAR,
         lambda ws: ["oracle.json"], fast=False),
    # Export and serving.
    Case("export name with a path in it", "export",
         lambda ws: tfxfer.export(_export_model(ws), "../up", ws.tmp, task_type="multiclass",
                                  class_names=["a", "b", "c"]), CLEAR, lambda ws: ["'../up'"], fast=False),
    Case("export with class_names that do not fit the head", "export",
         lambda ws: tfxfer.export(_export_model(ws), "m", ws.tmp, task_type="multiclass", class_names=["a", "b"]),
         CLEAR, lambda ws: ["class_names has 2 names", "3 outputs"]),
    Case("export root that is a file", "export", _export_root_is_a_file, CLEAR, lambda ws: ["saved_models"],
         (OSError,)),
    Case("load_exported on a SavedModel tfxfer did not write", "export",
         lambda ws: tfxfer.load_exported(_save_module(_RankOneOutput(), ws.tmp / "plain" / "1").parent), CLEAR,
         lambda ws: ["plain/1", "not a tfxfer export"]),
    Case("predict on an undecodable image", "export", _predict_undecodable, CLEAR,
         lambda ws: ["broken.jpg", "truncated or corrupt JPEG"]),
    # The command line.
    Case("tfxfer train on a folder with a truncated JPEG", "cli", _cli_pets_with_truncated_jpeg, CLEAR,
         lambda ws: ["dog/truncated.jpg"]),
    Case("tfxfer inspect on a truncated .tar.gz", "cli", _cli_truncated_archive, CLEAR,
         lambda ws: ["model.tar.gz"]),
    Case("tfxfer tune with a search space out of range", "cli", _cli_search_space, CLEAR,
         lambda ws: ["frozen_blocks"], fast=False),
    Case("tfxfer train on a CSV without the path column", "cli", _cli_missing_column, CLEAR,
         lambda ws: ["photos.csv", "--path-column path"], fast=False),
    Case("tfxfer predict on a folder that is not an export", "cli", _cli_not_an_export, CLEAR,
         lambda ws: ["models", "not an export"], fast=False),
    Case("tfxfer train --epochs many", "cli", _cli_bad_number, CLEAR, lambda ws: ["--epochs", "'many'"],
         exit_code=2, fast=False),
]


def _param(case):
    marks = [pytest.mark.xfail(raises=NotAsExpected, strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.kind, marks=marks)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return tmp_path_factory.mktemp("shared")


@pytest.mark.parametrize("case", [_param(c) for c in CASES if c.fast and not c.cli])
def test_bad_input_gives_a_clear_error_or_a_counted_skip(case, shared, tmp_path):
    outcome = classify(case, Workspace(tmp_path, shared))
    assert outcome.kind not in (BARE, SILENT) or case.bug, f"{case.kind}: {outcome.kind}: {outcome.detail}"
    if outcome.kind != case.expect:
        raise NotAsExpected(f"{case.kind}: expected {case.expect}, got {outcome.kind}: {outcome.detail}")


def cli_outcomes(cases, shared, tmp_path):
    """Runs every case's command line, each in a workspace of its own, and classifies what each said. They run one
    after the other in one process: each in a process of its own paid TensorFlow's import (seconds of CPU) again."""
    workspaces = [Workspace(tmp_path / str(index), shared) for index, _ in enumerate(cases)]
    for workspace in workspaces:
        workspace.tmp.mkdir()
    results, _ = in_one_process(*(case.provoke(workspace) for case, workspace in zip(cases, workspaces)),
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return [classify_said(case, workspace, result.returncode, result.stderr)
            for case, workspace, result in zip(cases, workspaces, results)]


def test_command_line_says_one_line_and_exits_1(shared, tmp_path):
    cases = [case for case in CASES if case.fast and case.cli]
    outcomes = cli_outcomes(cases, shared, tmp_path)
    assert [(case.kind, outcome.kind) for case, outcome in zip(cases, outcomes)] == [
        (case.kind, CLEAR) for case in cases], [outcome.detail for outcome in outcomes]


def test_the_corpus_covers_twenty_kinds_in_ci():
    fast = [case for case in CASES if case.fast]
    assert len(fast) >= 20 and len({case.area for case in fast}) >= 8
