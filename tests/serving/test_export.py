"""Exports on tiny models: what a bare TensorFlow client gets, the signatures, versions that are never overwritten
and appear whole, the TF Serving config, and `load_exported` tables."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfxfer
from helpers import checksums, is_whole_version, save_tiny_text_model, tiny_cnn
from tfxfer.data import decode_image
from tfxfer.serving import export, signature_table, versions, write_models_config
from tfxfer.extractors import save_hub_format
from tfxfer.serving import load_exported

pytestmark = pytest.mark.xdist_group("export")  # one worker builds the module fixtures once

CLASSES = ["ants", "bees", "wasps"]

#: A TensorFlow client: tfxfer and tensorflow_hub cannot be imported, and it reports any Keras module it imported
#: beyond those `import tensorflow` itself loads.
FRESH_CLIENT = textwrap.dedent("""
    import json, sys
    sys.modules["tfxfer"] = sys.modules["tensorflow_hub"] = None
    import numpy as np
    import tensorflow as tf
    before = set(sys.modules)
    for request in json.loads(sys.argv[1]):
        if request.get("tensorflow_text"):
            import tensorflow_text
        model = tf.saved_model.load(request["export"])
        if "files" in request:
            inputs = {"image_bytes": tf.constant([open(f, "rb").read() for f in request["files"]])}
        else:
            inputs = {"texts": tf.constant(request["texts"])}
        outputs = model.signatures["serving_default"](**inputs)
        np.savez(request["outputs"], **{key: value.numpy() for key, value in outputs.items()})
    new = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("keras", "tf_keras", "tfxfer"))
    print(json.dumps({"new_modules": new}))
""")


def run_fresh_client(requests):
    """Runs the requests in a fresh Python that imports only TensorFlow; returns each request's outputs."""
    result = subprocess.run([sys.executable, "-c", FRESH_CLIENT, json.dumps(requests)], capture_output=True,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["new_modules"] == [], f"loading the exports imported {report['new_modules']}"
    return [dict(np.load(request["outputs"], allow_pickle=True)) for request in requests]


def image_files(folder, count=4, seed=0):
    """Small random images of different sizes, one per format the serving signature decodes."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image_format = ("JPEG", "PNG", "GIF", "BMP")[index % 4]
        pixels = (rng.random((20 + 3 * index, 24 + 2 * index, 3)) * 255).astype(np.uint8)
        path = folder / f"image_{index}.{image_format.lower()}"
        Image.fromarray(pixels).save(path, format=image_format)
        paths.append(path)
    return paths


def decoded(paths, extractor):
    """What the training pipeline feeds the model for these files."""
    return tf.stack([decode_image(tf.io.read_file(str(path)), extractor.image_size, extractor.value_range)
                     for path in paths])


def head_model(extractor, outputs, activation):
    """The extractor under a random dense head, as the trained model would be."""
    if extractor.input_kind == "text":
        inputs = keras.Input((), dtype="string")
    else:
        inputs = keras.Input((*extractor.image_size, 3))
    return keras.Model(inputs, keras.layers.Dense(outputs, activation=activation)(extractor(inputs)))


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory):
    """Exports of tiny models for each task and input kind, with the in-memory model and inputs of each."""
    folder = tmp_path_factory.mktemp("exports")
    root = folder / "saved_models"
    files = image_files(folder / "images")
    hub = tfxfer.load_extractor(save_hub_format(tiny_cnn(), folder / "tiny_hub"))
    keras_extractor = tfxfer.load_extractor(tiny_cnn(seed=1))
    text = tfxfer.load_extractor(save_tiny_text_model(folder / "tiny_text"))
    texts = ["The ants march", "bees make honey", "", "A WASP! a wasp?", "ants and bees and wasps"]
    cases = {
        "multiclass": (hub, "softmax", 3, "multiclass", dict(class_names=CLASSES)),
        "multilabel": (keras_extractor, "sigmoid", 3, "multilabel", dict(class_names=CLASSES, threshold=0.5)),
        "regression": (hub, None, 2, "regression", dict(class_names=["length", "weight"])),
        "text": (text, "softmax", 3, "multiclass", dict(class_names=CLASSES)),
    }
    exports = {}
    for kind, (extractor, activation, outputs, task_type, options) in cases.items():
        model = head_model(extractor, outputs, activation)
        if kind == "multilabel":  # One label always above the threshold, one never, one either side.
            model.layers[-1].bias.assign([4.0, -4.0, 0.0])
        path = export(model, kind, root, task_type=task_type, **options)
        inputs = dict(texts=texts) if kind == "text" else dict(files=[str(f) for f in files])
        expected = model(tf.constant(texts) if kind == "text" else decoded(files, extractor), training=False).numpy()
        exports[kind] = dict(path=path, model=model, extractor=extractor, expected=expected, **inputs)
    return exports


@pytest.mark.slow
def test_a_fresh_tensorflow_process_gets_the_in_memory_scores(tiny_exports, tmp_path):
    requests = []
    for kind, case in tiny_exports.items():
        request = {"export": str(case["path"]), "outputs": str(tmp_path / f"{kind}.npz")}
        request.update({key: case[key] for key in ("files", "texts") if key in case})
        requests.append(request)
    for (kind, case), outputs in zip(tiny_exports.items(), run_fresh_client(requests)):
        expected = case["expected"]
        if kind == "regression":
            assert sorted(outputs) == ["predictions"]
            np.testing.assert_allclose(outputs["predictions"], expected, atol=1e-5)
            continue
        np.testing.assert_allclose(outputs["scores"], expected, atol=1e-5)
        ranked = np.argsort(-expected, axis=1, kind="stable")
        assert outputs["classes"].tolist() == [[CLASSES[i].encode() for i in row] for row in ranked]
        np.testing.assert_allclose(outputs["ranked_scores"], np.take_along_axis(expected, ranked, 1), atol=1e-5)
        if kind == "multilabel":
            over = [[CLASSES[i].encode() if expected[r, i] > 0.5 else b"" for i in row] for r, row in enumerate(ranked)]
            assert outputs["labels"].tolist() == over
            assert {b"ants"} <= set(outputs["labels"].ravel()) and b"bees" not in set(outputs["labels"].ravel())


def test_decoded_images_signature_matches_the_bytes_signature(tiny_exports):
    case = tiny_exports["multiclass"]
    loaded = tf.saved_model.load(str(case["path"]))
    pixels = tf.cast(tf.stack([tf.image.resize(tf.io.decode_image(tf.io.read_file(f), 3, expand_animations=False),
                                               case["extractor"].image_size) for f in case["files"]]), tf.float32)
    outputs = loaded.signatures["serving_images"](images=pixels)
    np.testing.assert_allclose(outputs["scores"].numpy(), case["expected"], atol=1e-6)
    big = tf.image.resize(pixels, (40, 28))  # Any size: resized inside, as the bytes are.
    assert loaded.signatures["serving_images"](images=big)["scores"].shape == (4, 3)
    # Bytes shorter than a header were "pos 8 out of range for string b'hello'" to a TF Serving client (a tester's).
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        loaded.signatures["serving_default"](image_bytes=tf.constant([b"hello"]))
    # An empty batch failed in the first convolution ("Incompatible shapes"): it gets empty outputs.
    empty = loaded.signatures["serving_default"](image_bytes=tf.constant([], tf.string))
    assert empty["scores"].shape == (0, 3) and empty["classes"].shape == (0, 3)


def test_training_and_serving_give_the_model_the_same_inputs(tiny_exports, tmp_path):
    """One preprocessing: the files as the training pipeline decodes them, and as the export's signatures do."""
    case = tiny_exports["multiclass"]
    for index, path in enumerate(case["files"]):
        target = tmp_path / "data" / ("ants", "bees")[index % 2] / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Path(path).read_bytes())
    data = tfxfer.load_images(tmp_path / "data", extractor=case["extractor"], validation_split=0)
    paths = data.examples("train")[0]
    trained_on = np.stack([image.numpy() for image, _ in data.unbatched("train")])
    loaded = tf.saved_model.load(str(case["path"]))
    served = loaded.preprocess_image_bytes(tf.constant([Path(path).read_bytes() for path in paths])).numpy()
    assert served.dtype == trained_on.dtype and np.array_equal(served, trained_on), "bytes: not bit for bit"
    pixels = tf.stack([tf.cast(tf.io.decode_image(tf.io.read_file(path), 3, expand_animations=False), tf.float32)
                       for path in paths[:1]])
    np.testing.assert_allclose(loaded.preprocess_images(pixels).numpy(), trained_on[:1], atol=1e-6)
    scores = loaded.signatures["serving_default"](image_bytes=tf.constant([Path(paths[0]).read_bytes()]))["scores"]
    np.testing.assert_allclose(scores.numpy(), case["model"](trained_on[:1], training=False).numpy(), atol=1e-6)


def test_signatures_have_the_documented_names_and_dtypes(tiny_exports):
    for kind, case in tiny_exports.items():
        loaded = tf.saved_model.load(str(case["path"]))
        task_type = "multiclass" if kind == "text" else kind
        table = signature_table(case["extractor"].input_kind, task_type)
        assert sorted(loaded.signatures) == sorted(table)
        for key, documented in table.items():
            signature = loaded.signatures[key]
            inputs = signature.structured_input_signature[1]
            assert {name: spec.dtype.name for name, spec in inputs.items()} == {
                name: text.split()[0] for name, text in documented["inputs"].items()}
            assert {name: spec.dtype.name for name, spec in signature.structured_outputs.items()} == {
                name: text.split()[0] for name, text in documented["outputs"].items()}


def test_metadata_is_in_the_signature_and_in_assets_extra(tiny_exports):
    case = tiny_exports["multilabel"]
    stored = json.loads((case["path"] / "assets.extra" / "tfxfer.json").read_text())
    assert stored["class_names"] == CLASSES and stored["task_type"] == "multilabel" and stored["threshold"] == 0.5
    assert stored["extractor_source"] == case["extractor"].source and stored["image_size"] == [16, 16]
    assert stored["versions"] == {"tfxfer": tfxfer.__version__, "tensorflow": tf.__version__,
                                  "keras": keras.__version__}
    constants = tf.saved_model.load(str(case["path"])).signatures["metadata"]()
    assert [name.decode() for name in constants["class_names"].numpy()] == CLASSES
    assert constants["task_type"].numpy() == b"multilabel" and constants["threshold"].numpy() == 0.5
    assert constants["image_size"].numpy().tolist() == [16, 16]
    assert constants["value_range"].numpy().tolist() == [0.0, 1.0]
    assert json.loads(constants["metadata_json"].numpy()) == stored


def saved_model_cli(*args):
    """`saved_model_cli`, the script TensorFlow installs, as a subprocess."""
    script = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable))
    command = [script] if script else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(command + list(args), capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def shown_signatures(text):
    """`saved_model_cli show --all` output as `{signature: {"inputs"/"outputs": {name: dtype}}}`."""
    shown = {}
    for block in re.split(r"signature_def\['", text)[1:]:
        key = block.split("'", 1)[0]
        shown[key] = {side: dict(re.findall(side + r"\['(\w+)'\] tensor_info:\s+dtype: (DT_\w+)", block))
                      for side in ("inputs", "outputs")}
    return shown


def loaded_signatures(path):
    """The signatures as `tf.saved_model.load` gives them, in `shown_signatures`' form."""
    from tensorflow.core.framework import types_pb2

    def dtype(spec):
        return types_pb2.DataType.Name(spec.dtype.as_datatype_enum)

    return {key: {"inputs": {name: dtype(spec) for name, spec in function.structured_input_signature[1].items()},
                  "outputs": {name: dtype(spec) for name, spec in function.structured_outputs.items()}}
            for key, function in tf.saved_model.load(str(path)).signatures.items()}


def assert_saved_model_cli_shows(path, input_kind, task_type, shown=None):
    """The signatures that `saved_model_cli show` lists (or `shown`) are the documented ones."""
    dtypes = {"string": "DT_STRING", "float32": "DT_FLOAT", "int32": "DT_INT32"}
    shown = shown or shown_signatures(saved_model_cli("show", "--dir", str(path), "--all"))
    for key, documented in signature_table(input_kind, task_type).items():
        for side in ("inputs", "outputs"):
            assert shown[key][side] == {name: dtypes[text.split()[0]] for name, text in documented[side].items()}


def saved_model_cli_classes(path, files, tmp_path):
    """The `classes` output of `saved_model_cli run` on image files, one list of names per file."""
    inputs = tmp_path / "image_bytes.npy"
    np.save(inputs, np.array([Path(f).read_bytes() for f in files], dtype=object), allow_pickle=True)
    text = saved_model_cli("run", "--dir", str(path), "--tag_set", "serve", "--signature_def", "serving_default",
                           "--inputs", f"image_bytes={inputs}")
    match = re.search(r"Result for output key classes:\s*\n(\[\[.*?\]\])", text, re.S)
    assert match, text
    return [re.findall(r"b'([^']*)'", row) for row in match.group(1).split("]")[:-2]]


@pytest.mark.slow
def test_saved_model_cli_shows_the_signatures_and_runs_on_a_jpeg(tiny_exports, tmp_path):
    case = tiny_exports["multiclass"]
    assert_saved_model_cli_shows(case["path"], "image", "multiclass")
    # The text export's, loaded here: saved_model_cli's listing is the same code's, checked above.
    text = tiny_exports["text"]["path"]
    assert_saved_model_cli_shows(text, "text", "multiclass", shown=loaded_signatures(text))
    jpeg = case["files"][0]
    assert jpeg.endswith(".jpeg")
    assert saved_model_cli_classes(case["path"], [jpeg], tmp_path)[0][0] == CLASSES[int(case["expected"][0].argmax())]


def test_exporting_twice_gives_version_2_and_leaves_version_1_unchanged(tiny_exports, tmp_path):
    model = tiny_exports["multiclass"]["model"]
    first = export(model, "twice", tmp_path, task_type="multiclass", class_names=CLASSES)
    before = checksums(first)
    second = export(model, "twice", tmp_path, task_type="multiclass", class_names=CLASSES)
    assert (first.name, second.name) == ("1", "2") and versions(tmp_path / "twice") == [1, 2]
    assert checksums(first) == before
    assert sorted(p.name for p in (tmp_path / "twice").iterdir()) == ["1", "2"]
    assert load_exported(tmp_path / "twice").version == 2


#: Exports the tiny hub model with a random head to `root/name`, `count` times, printing each version.
EXPORTER = textwrap.dedent("""
    import sys
    import keras, tfxfer
    from tfxfer.serving import export
    source, root, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    extractor = tfxfer.load_extractor(source)
    inputs = keras.Input((*extractor.image_size, 3))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(extractor(inputs)))
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(count):
        print(export(model, "shared", root, task_type="multiclass", class_names=["a", "b", "c"]).name, flush=True)
""")


def start_exporter(source, root, count):
    process = subprocess.Popen([sys.executable, "-c", EXPORTER, str(source), str(root), str(count)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert process.stdout.readline().strip() == "ready", process.stderr.read()[-3000:]
    return process


@pytest.mark.slow
def test_exports_at_once_get_different_versions_and_one_killed_at_any_point_leaves_only_whole_ones(tiny_hub_model,
                                                                                                     tmp_path):
    """Two processes export to one model folder at once, then the one that would export on and on is SIGKILLed at
    a random moment while a reader lists the folder."""
    model_folder = tmp_path / "shared"
    steady, killed = start_exporter(tiny_hub_model, tmp_path, 3), start_exporter(tiny_hub_model, tmp_path, 1000)
    for process in (steady, killed):
        process.stdin.write("go\n")
        process.stdin.flush()
    out, err = steady.communicate(timeout=300)
    assert steady.returncode == 0, err[-3000:]
    mine = [int(line) for line in out.split()]
    before = {v: checksums(model_folder / str(v)) for v in mine}
    claimed = [int(killed.stdout.readline())]  # one whole version written, then a random moment later
    seen_partial = []
    deadline = time.monotonic() + random.Random(0).uniform(0.0, 1.5)
    while time.monotonic() < deadline:  # A reader listing the folder while versions are being written.
        seen_partial += [v for v in versions(model_folder) if not is_whole_version(model_folder / str(v))]
    killed.send_signal(signal.SIGKILL)
    claimed += [int(line) for line in killed.stdout.read().split()]  # what readline's buffer holds too
    killed.wait()
    killed.stderr.close()
    assert killed.returncode == -signal.SIGKILL and seen_partial == []
    found = versions(model_folder)
    assert len(mine) == 3 and not set(mine) & set(claimed) and set(mine + claimed) <= set(found)
    # Numbered 1, 2, 3... with no gap; at most one version written whole but not yet printed when the kill came.
    assert found == list(range(1, len(found) + 1)) and len(found) - len(mine + claimed) in (0, 1)
    for version in found:
        assert is_whole_version(model_folder / str(version)), f"version {version} is not whole"
    assert {v: checksums(model_folder / str(v)) for v in before} == before
    jpeg = tf.constant([image_files(tmp_path / "image", count=1)[0].read_bytes()])
    for version in found:
        loaded = tf.saved_model.load(str(model_folder / str(version)))
        assert loaded.signatures["serving_default"](image_bytes=jpeg)["scores"].shape == (1, 3)
    model = head_model(tfxfer.load_extractor(tiny_hub_model), 3, "softmax")
    path = export(model, "shared", tmp_path, task_type="multiclass", class_names=["a", "b", "c"])
    assert int(path.name) == found[-1] + 1
    assert [p.name for p in model_folder.iterdir() if not p.name.isdigit()] == []  # Dead exports' folders removed.


def test_models_config_lists_every_model(tiny_exports, tmp_path):
    model = tiny_exports["multiclass"]["model"]
    export(model, "ants_bees", tmp_path, task_type="multiclass", class_names=CLASSES)
    export(model, "wasps", tmp_path, task_type="multiclass", class_names=CLASSES, models_config=True)
    config = (tmp_path / "models.config").read_text()
    assert re.findall(r'name: "(\w+)"\s+base_path: "([^"]+)"', config) == [
        ("ants_bees", str(tmp_path.resolve() / "ants_bees")), ("wasps", str(tmp_path.resolve() / "wasps"))]
    assert config.startswith("model_config_list {") and config.count('model_platform: "tensorflow"') == 2
    write_models_config(tmp_path, base_path="/models/")
    assert '"/models/ants_bees"' in (tmp_path / "models.config").read_text()
    # Where the server sees the root, given with the export (`--models-config /models`): the host's paths were
    # written, which the README's docker command cannot read (a tester's find).
    export(model, "wasps", tmp_path, task_type="multiclass", class_names=CLASSES, models_config="/serving")
    assert '"/serving/wasps"' in (tmp_path / "models.config").read_text()
    from tfxfer.cli.parser import build_parser

    flags = ["train", "data", "--extractor", "x", "--export", "m"]
    assert build_parser().parse_args(flags + ["--models-config", "/models"]).models_config == "/models"
    assert build_parser().parse_args(flags + ["--models-config"]).models_config is True
    assert build_parser().parse_args(flags).models_config is False
    # A relative base path was written as given, for a server that reads it from wherever it runs (a tester's find);
    # refused before anything is exported.
    with pytest.raises(ValueError, match=r"base_path='models/rel' is relative"):
        export(model, "wasps", tmp_path, task_type="multiclass", class_names=CLASSES, models_config="models/rel")
    assert versions(tmp_path / "wasps") == [1, 2]
    from tfxfer.cli.commands import UsageError
    from tfxfer.cli.outputs import check_export_flags

    with pytest.raises(UsageError, match=r"--models-config models/rel is relative"):
        check_export_flags(build_parser().parse_args(flags + ["--models-config", "models/rel"]))
    with pytest.raises(FileNotFoundError, match="holds no exported model"):
        write_models_config(tmp_path / "ants_bees")
    # A version folder that holds no SavedModel was listed, and TF Serving would have failed on it (a tester's find).
    (tmp_path / "empty" / "1").mkdir(parents=True)
    assert '"empty"' not in write_models_config(tmp_path).read_text()
    # A folder of the user's own files was filled with a version among them, without a word (a tester's find).
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "plan.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"notes holds plan.txt, which is not a whole version of an export "
                                         r"\(1/, 2/...\): an export goes into a folder of its own"):
        export(model, "notes", tmp_path, task_type="multiclass", class_names=CLASSES)
    assert sorted(path.name for path in (tmp_path / "notes").iterdir()) == ["plan.txt"]
    (tmp_path / "numbered" / "1").mkdir(parents=True)  # a folder named like a version, holding a user's data
    (tmp_path / "numbered" / "1" / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match=r"numbered holds 1, which is not a whole version"):
        export(model, "numbered", tmp_path, task_type="multiclass", class_names=CLASSES)
    assert [path.name for path in (tmp_path / "numbered").iterdir()] == ["1"]


def test_load_exported_runs_image_files_and_names_the_bad_ones(tiny_exports, tmp_path):
    case = tiny_exports["multiclass"]
    exported = load_exported(case["path"])
    table = exported.predict(case["files"], batch_size=3)
    assert list(table.columns) == ["file", "class", "score"] + [f"score_{name}" for name in CLASSES]
    np.testing.assert_allclose(table[[f"score_{name}" for name in CLASSES]].to_numpy(), case["expected"], atol=1e-6)
    assert table["class"].tolist() == [CLASSES[i] for i in case["expected"].argmax(axis=1)]
    folder = Path(case["files"][0]).parent
    assert load_exported(case["path"]).predict(folder)["file"].tolist() == sorted(case["files"])
    (tmp_path / "broken.jpg").write_bytes(Path(case["files"][0]).read_bytes()[:200])
    with pytest.raises(ValueError, match=r"broken\.jpg: truncated or corrupt JPEG"):
        exported.predict([case["files"][1], tmp_path / "broken.jpg"])
    with pytest.raises(TypeError, match=r"image files and folders, not ndarray; .*serving_images"):
        exported.predict([case["files"][1], np.zeros((16, 16, 3), np.uint8)])  # pathlib's message named neither
    with pytest.raises(FileNotFoundError, match="missing.png"):
        exported.predict([tmp_path / "missing.png"])
    with pytest.raises(FileNotFoundError, match="Image file https://example.com/a.png does not exist; URLs are not"):
        exported.predict("https://example.com/a.png")
    import pandas as pd

    with pytest.raises(TypeError, match=r"pass the DataFrame's column of paths, e.g. frame\['file'\]"):
        exported.predict(pd.DataFrame({"file": case["files"]}))  # it named frame['path'] (a tester's find)
    # A CSV of paths was "not an image: text"; the model file itself, "[Errno 20] Not a directory" (testers' finds).
    (tmp_path / "photos.csv").write_text(f"path\n{case['files'][0]}\n")
    with pytest.raises(ValueError, match=r"photos.csv is a table; an image model takes image files: pass the images"):
        exported.predict(tmp_path / "photos.csv")
    assert load_exported(exported.path / "saved_model.pb").path == exported.path
    with pytest.raises(FileNotFoundError, match=r"fingerprint.pb is a file, not an export: pass the folder of the "
                                                r"export \("):
        load_exported(exported.path / "fingerprint.pb")
    with pytest.raises(FileNotFoundError, match=rf"pass the folder of the export \({exported.path}, or"):
        load_exported(exported.path / "variables" / "variables.index")  # the version, not variables/


def test_load_exported_runs_texts_and_a_csv(tiny_exports, tmp_path, monkeypatch):
    case = tiny_exports["text"]
    csv = tmp_path / "texts.csv"
    csv.write_text("id,text\n" + "".join(f'{i},"{text}"\n' for i, text in enumerate(case["texts"])))
    exported = load_exported(case["path"].parent)
    with pytest.raises(tfxfer.DataError, match=r"texts.csv, row 4: missing or empty text"):
        exported.predict(csv)  # the third text is empty
    from_csv = exported.predict(csv, on_bad="skip")
    kept = [i for i, text in enumerate(case["texts"]) if text]
    assert from_csv["text"].tolist() == [case["texts"][i] for i in kept] and len(from_csv.attrs["skipped"]) == 1
    np.testing.assert_allclose(from_csv[[f"score_{n}" for n in CLASSES]].to_numpy(), case["expected"][kept],
                               atol=1e-6)
    assert exported.predict(case["texts"][:2])["class"].tolist() == from_csv["class"].tolist()[:2]
    # A DataFrame was iterated by its column names, None scored as the word 'None', bytes as "b'...'" (a tester's)
    import pandas as pd
    from_frame = exported.predict(pd.DataFrame({"id": [1, 2], "text": [case["texts"][0], None]}), on_bad="skip")
    assert from_frame["text"].tolist() == case["texts"][:1] and len(from_frame.attrs["skipped"]) == 1
    assert exported.predict([case["texts"][0].encode()])["text"].tolist() == case["texts"][:1]
    with pytest.raises(tfxfer.DataError, match=r"input 2: empty text \(nan\)"):
        exported.predict(pd.Series([case["texts"][0], float("nan")]))
    with pytest.raises(ValueError, match="text_column='body' is not a column; the columns are \\['id', 'text'\\]"):
        exported.predict(csv, text_column="body")
    # A word that names a folder here, among texts: it was read as the folder, 3 inputs gave 5 rows (a tester's)
    (tmp_path / "spam").mkdir()
    (tmp_path / "spam" / "a.txt").write_text("win money")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="'spam' is among texts but names an existing folder here: pass texts=True"):
        exported.predict(["win money", "spam", "hello"])
    assert len(exported.predict(["win money", "spam", "hello"], texts=True)) == 3
    assert len(exported.predict(["spam"])) == 1  # a folder alone is a folder
    # A CSV whose separator was not said, and a header as spreadsheets leave it (found by a hostile tester: predict
    # scored "free money;0" as a text, where training said to pass sep=';')
    (tmp_path / "semi.csv").write_text("text;label\nfree money;1\nsee you;0\n")
    with pytest.raises(tfxfer.DataError, match=r"semi.csv: The header was read as one column: .* pass sep=';'"):
        exported.predict(tmp_path / "semi.csv")
    (tmp_path / "spaced.csv").write_text("text ,label\nfree money,1\n")
    with pytest.raises(tfxfer.DataError, match=r"text_column='text' is not a column, but 'text ' is, with spaces"):
        exported.predict(tmp_path / "spaced.csv")
    # A one-column file without a header lost its first text as the column's name; an empty quoted cell and a
    # blank line were dropped without a word (a hostile tester's finds).
    (tmp_path / "bare.csv").write_text('I loved it\nawful service\n""\n\nok fine\n')
    with pytest.warns(UserWarning, match=r"bare.csv: its only column, 'I loved it', is read as the texts and its first "
                                         r"row as the column's name; pass text_column='I loved it' to say so, or "
                                         r"column_names=\['text'\] if the file has no header row"):
        bare = exported.predict(tmp_path / "bare.csv")
    assert bare["text"].tolist() == ["awful service", "ok fine"]
    assert [(item.source.rsplit(", ", 1)[1], item.reason) for item in bare.attrs["skipped"]] == [
        ("row 3", "blank row"), ("row 4", "blank row")]
    assert exported.predict(tmp_path / "bare.csv", column_names=["text"])["text"].tolist()[0] == "I loved it"


def test_a_model_of_joined_text_columns_joins_a_csvs_columns_as_training_did(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"premise": [f"ants march {i}" for i in range(8)],
                          "hypothesis": ["bees make honey", "a wasp stings"] * 4, "label": ["yes", "no"] * 4})
    data = tfxfer.load_text(frame, text_column=["premise", "hypothesis"], text_separator=" | ", validation_split=0.25)
    fitted = tfxfer.TransferModel(save_tiny_text_model(tmp_path / "text"), epochs=1, patience=None,
                                  verbose=0).fit(data)
    exported = load_exported(tfxfer.export(fitted, "pairs", root=tmp_path / "exports", data_summary=data))
    assert exported.metadata["joined_columns"] == {"columns": ["premise", "hypothesis"], "separator": " | "}
    frame.to_csv(tmp_path / "pairs.csv", index=False)
    table = exported.predict(tmp_path / "pairs.csv")  # scored the premise alone before (found by a hostile tester)
    assert table["text"][1] == "ants march 1 | a wasp stings"
    np.testing.assert_allclose(table["score_yes"], exported.predict(list(table["text"]), texts=True)["score_yes"])
    frame.rename(columns={"premise": "first", "hypothesis": "second"}).to_csv(tmp_path / "renamed.csv", index=False)
    renamed = exported.predict(tmp_path / "renamed.csv", text_column=["first", "second"])
    assert renamed["text"].tolist() == table["text"].tolist()
    with pytest.raises(ValueError, match=r"trained on texts joined from 2 columns \(\['premise', 'hypothesis'\], "
                                         r"separated by ' \| '\); pass text_column= with this file's columns"):
        exported.predict(tmp_path / "pairs.csv", text_column="premise")


def test_a_model_of_one_text_column_reads_that_column_of_a_csv(tmp_path):
    """Trained on 'Message Text', predict read a CSV's 'text' column instead, without a word, or refused the training
    file itself (a hostile tester's find)."""
    import pandas as pd

    frame = pd.DataFrame({"Message Text": [f"win a prize {i}" for i in range(4)] + [f"lunch at {i}" for i in range(4)],
                          "text": ["unrelated"] * 8, "Spam Label": ["spam"] * 4 + ["ham"] * 4})
    data = tfxfer.load_text(frame, text_column="Message Text", label_column="Spam Label", validation_split=0.25)
    fitted = tfxfer.TransferModel(save_tiny_text_model(tmp_path / "text"), epochs=1, patience=None,
                                  verbose=0).fit(data)
    exported = load_exported(tfxfer.export(fitted, "messages", root=tmp_path / "exports", data_summary=data))
    frame.to_csv(tmp_path / "messages.csv", index=False)
    assert exported.predict(tmp_path / "messages.csv")["text"].tolist() == frame["Message Text"].tolist()
    assert exported.predict(tmp_path / "messages.csv", text_column="text")["text"].tolist() == ["unrelated"] * 8
    with pytest.raises(ValueError, match="trained on one text per example"):
        exported.predict(tmp_path / "messages.csv", text_column=["text", "Message Text"])
    # A CSV and a text together: the text's file was NaN (a hostile tester's find)
    mixed = exported.predict([tmp_path / "messages.csv", "free prize now"])
    assert mixed["file"].tolist()[-1] == "" and mixed["text"].tolist()[-1] == "free prize now"
    # A file without it: not "text_column='Message Text' is not a column" when no column was named (a reviewer)
    frame[["text", "Spam Label"]].to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match=r"other\.csv: the model was trained on the texts of column\(s\) "
                                         r"\['Message Text'\], which this file lacks \(its columns are \['text', "
                                         r"'Spam Label'\]\)"):
        exported.predict(tmp_path / "other.csv")


def test_load_exported_tables_for_multilabel_and_regression(tiny_exports):
    labels = load_exported(tiny_exports["multilabel"]["path"]).predict(tiny_exports["multilabel"]["files"])
    expected = tiny_exports["multilabel"]["expected"]
    assert labels["labels"].str.split(";").map(set).tolist() == [
        {CLASSES[i] for i in range(3) if row[i] > 0.5} for row in expected]
    regression = load_exported(tiny_exports["regression"]["path"]).predict(tiny_exports["regression"]["files"])
    assert list(regression.columns) == ["file", "length", "weight"]
    np.testing.assert_allclose(regression[["length", "weight"]].to_numpy(), tiny_exports["regression"]["expected"],
                               atol=1e-6)


def test_an_export_resizes_as_the_fitted_model_was_trained(tiny_hub_model, tmp_path):
    """Found by a hostile tester: data loaded with interpolation="nearest" and exported without data_summary (as the
    README's tour exports) was served bilinear-resized images, 0.02 off the model's own scores."""
    for label, name in enumerate(["ants", "bees"]):
        image_files(tmp_path / "data" / name, count=4, seed=label)
    extractor = tfxfer.load_extractor(tiny_hub_model)
    data = tfxfer.data.load_images(tmp_path / "data", extractor=extractor, validation_split=0.25, batch_size=4,
                                   interpolation="nearest")
    fitted = tfxfer.TransferModel(extractor, epochs=1, verbose=0).fit(data)
    path = export(fitted, "nearest", tmp_path / "saved_models")
    served = load_exported(path)
    assert served.metadata["interpolation"] == "nearest" == served.metadata["training"]["interpolation"]
    images = np.stack([image.numpy() for image, _ in data.unbatched("train")])
    np.testing.assert_allclose(served.predict(data.examples("train")[0])[["score_ants", "score_bees"]].to_numpy(),
                               fitted.predict(images), atol=1e-6)
    # A JPEG with an EXIF rotation is noted in predict as in training (found by a hostile tester: only training said)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (20, 24)).save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    with pytest.warns(UserWarning, match="1 JPEG.s. carry an EXIF rotation .*rotated.jpg.*which is not applied"):
        served.predict([tmp_path / "rotated.jpg"])


@pytest.mark.parametrize("cache", [False, True])
def test_a_fitted_transfer_model_exports_its_task_and_history(tiny_hub_model, tmp_path, cache):
    for label, name in enumerate(["ants", "bees"]):
        image_files(tmp_path / "data" / name, count=4, seed=label)
    extractor = tfxfer.load_extractor(tiny_hub_model)
    data = tfxfer.data.load_images(tmp_path / "data", extractor=extractor, validation_split=0.25, batch_size=4)
    fitted = tfxfer.TransferModel(extractor, epochs=2, patience=None, cache=cache, verbose=0).fit(data)
    assert fitted.cached_phases_ == [cache]
    path = export(fitted, "fitted", tmp_path / "saved_models", data_summary=data,
                  metrics=fitted.evaluate(data.validation))
    stored = json.loads((path / "assets.extra" / "tfxfer.json").read_text())
    assert stored["class_names"] == ["ants", "bees"] and stored["task_type"] == "multiclass"
    assert len(stored["training"]["history"]["loss"]) == 2 and stored["training"]["regime"] == "feature-extraction"
    assert stored["training"]["cached_phases"] == [cache]
    assert set(stored["metrics"]) >= {"loss", "accuracy"}
    assert stored["data_summary"]["sizes"] == data.sizes and stored["interpolation"] == "bilinear"
    if cache:  # The data as a search across extractors holds it, decoded for another: the best trial of any but the
        # first was refused after the search ("The data was decoded to (128, 112)...", a tester's find).
        other = tfxfer.data.load_images(tmp_path / "data", image_size=(24, 24), value_range=(-1, 1),
                                        validation_split=0.25, batch_size=4)
        moved = json.loads((export(fitted, "moved", tmp_path / "saved_models", data_summary=other) / "assets.extra" /
                            "tfxfer.json").read_text())
        assert (moved["image_size"], moved["value_range"], moved["data_summary"]["sizes"]) == ([16, 16], [0, 1],
                                                                                               data.sizes)
    # Without metrics=, they were null in every export (the CLI passes none; a tester's find): the validation
    # metrics at the epoch whose weights the model kept.
    default = json.loads((export(fitted, "fitted", tmp_path / "saved_models") / "assets.extra" / "tfxfer.json")
                         .read_text())["metrics"]
    assert default == {key: values[fitted.kept_epoch_] for key, values in fitted.history_.items()
                       if key.startswith("val_")} and "val_accuracy" in default
    saved = [name for name, _ in tf.train.list_variables(str(path / "variables" / "variables"))]
    assert not [name for name in saved if "optimizer" in name], saved  # Adam's slots are no use to a server
    files = sorted(str(p) for p in (tmp_path / "data").rglob("*.*"))
    np.testing.assert_allclose(load_exported(path).predict(files)[["score_ants", "score_bees"]].to_numpy(),
                               fitted.model_(decoded(files, extractor), training=False).numpy(), atol=1e-6)


def test_export_names_what_is_wrong(tiny_exports, tmp_path):
    model = tiny_exports["multiclass"]["model"]
    with pytest.raises(ValueError, match="Export name '../up'"):
        export(model, "../up", tmp_path, task_type="multiclass", class_names=CLASSES)
    with pytest.raises(ValueError, match="Export name '7'"):
        export(model, "7", tmp_path, task_type="multiclass", class_names=CLASSES)
    with pytest.raises(ValueError, match="class_names has 2 names but model .* has 3 outputs"):
        export(model, "m", tmp_path, task_type="multiclass", class_names=["a", "b"])
    with pytest.raises(ValueError, match="task_type must be one of"):
        export(model, "m", tmp_path, task_type="binary", class_names=CLASSES)
    with pytest.raises(ValueError, match="needs class_names"):
        export(model, "m", tmp_path, task_type="multiclass")
    with pytest.raises(TypeError, match="call fit"):
        export(tfxfer.TransferModel("MobileNetV2"), "m", tmp_path)
    other = tfxfer.load_extractor(tiny_cnn(input_shape=(24, 24, 3)))
    with pytest.raises(ValueError, match=r"takes images \(16, 16, 3\) but its extractor .* takes \(24, 24, 3\)"):
        export(model, "m", tmp_path, extractor=other, task_type="multiclass", class_names=CLASSES)
    assert not (tmp_path / "m").exists() or versions(tmp_path / "m") == []
    with pytest.raises(FileNotFoundError, match="neither saved_model.pb nor version folders"):
        load_exported(tmp_path)
