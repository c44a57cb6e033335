"""Exports of the real pretrained models in ../shared/assets, run on real hymenoptera photos and real texts by a
fresh TensorFlow-only process and, for strings, by `saved_model_cli run` (the signatures `saved_model_cli show`
lists, and its run on a JPEG, are checked on the tiny exports of test_export.py: the same export code writes them)."""

import io
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfxfer
from test_export import decoded, run_fresh_client, saved_model_cli
from tfxfer.serving import export
from tfxfer.serving import load_exported

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export_assets")]  # one worker builds the module fixtures once

HUB = "models/hub"
MOBILENET_V2_WEIGHTS = "models/keras/mobilenet_v2_1.0_224_no_top/mobilenet_v2_1.0_224_tfslim_no_top.weights.h5"
CLASSES = ["ants", "bees"]


def photos(assets, split, per_class, offset=0):
    """Hymenoptera photos of a split, `per_class` of each class in sorted order, with labels ants=0, bees=1."""
    folder = assets / "data" / "hymenoptera" / "hymenoptera_data" / split
    files, labels = [], []
    for label, name in enumerate(CLASSES):
        found = sorted(p for p in (folder / name).iterdir() if p.suffix in (".jpg", ".jpeg"))
        files += [str(p) for p in found[offset:offset + per_class]]
        labels += [label] * per_class
    return files, np.array(labels)


def trained_classifier(extractor, assets):
    """A softmax head trained on frozen features of 20 photos per class, under the extractor."""
    files, labels = photos(assets, "train", 20)
    features = extractor(decoded(files, extractor), training=False)
    keras.utils.set_random_seed(0)
    head = keras.layers.Dense(2, activation="softmax")
    probe = keras.Sequential([keras.Input(features.shape[1:]), head])
    probe.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    probe.fit(features.numpy(), labels, epochs=60, batch_size=40, verbose=0)
    inputs = keras.Input((*extractor.image_size, 3))
    return keras.Model(inputs, head(extractor(inputs)))


@pytest.fixture(scope="module")
def real_exports(shared_assets, tmp_path_factory):
    root = tmp_path_factory.mktemp("real") / "saved_models"
    val_files, val_labels = photos(shared_assets, "val", 2)
    gif = shared_assets / "data/hymenoptera/hymenoptera_data/train/ants/imageNotFound.gif"
    files = val_files + [str(gif)]
    hub = tfxfer.load_extractor(shared_assets / HUB / "mobilenet_v2_100_224_feature_vector")
    hub_model = trained_classifier(hub, shared_assets)
    application = tfxfer.load_extractor("MobileNetV2", weights=str(shared_assets / MOBILENET_V2_WEIGHTS))
    inputs = keras.Input((*application.image_size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(application(inputs))
    application_model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    glove = tfxfer.load_extractor(shared_assets / HUB / "glove50_top2446_text_embedding")
    text_inputs = keras.Input((), dtype="string")
    glove_model = keras.Model(text_inputs, keras.layers.Dense(2, activation="softmax")(glove(text_inputs)))
    texts = ["Free entry in 2 a wkly comp to win FA Cup final tkts", "Ok lar... Joking wif u oni...", "",
             "WINNER!! You have been selected to receive a prize"]
    import tensorflow_text  # noqa: F401  (the MiniLM preprocessor's ops, which building its model traces)

    minilm = tfxfer.load_extractor(shared_assets / HUB / "all_minilm_l6_v2_encoder",
                                   preprocessor=shared_assets / HUB / "all_minilm_l6_v2_preprocess")
    minilm_model = keras.Model(text_inputs, keras.layers.Dense(2, activation="softmax")(minilm(text_inputs)))
    pair = ["A man is playing a guitar.", "Free entry in 2 a wkly comp to win FA Cup final tkts"]
    requests = {"hub": dict(files=files), "application": dict(files=files), "glove": dict(texts=texts),
                "minilm": dict(texts=pair, tensorflow_text=True)}
    exports = {}
    for kind, extractor, model, class_names in (("hub", hub, hub_model, CLASSES),
                                                 ("application", application, application_model, CLASSES),
                                                 ("glove", glove, glove_model, ["ham", "spam"]),
                                                 ("minilm", minilm, minilm_model, ["ham", "spam"])):
        path = export(model, kind, root, task_type="multiclass", class_names=class_names)
        batch = tf.constant(requests[kind]["texts"]) if "texts" in requests[kind] else decoded(files, extractor)
        exports[kind] = dict(path=path, model=model, expected=model(batch, training=False).numpy(), **requests[kind])
    exports["hub"]["labels"] = val_labels
    return exports


def test_real_exports_give_the_in_memory_scores_in_a_fresh_tensorflow_process(real_exports, tmp_path):
    requests = []
    for kind, case in real_exports.items():
        request = {"export": str(case["path"]), "outputs": str(tmp_path / f"{kind}.npz")}
        request.update({key: case[key] for key in ("files", "texts", "tensorflow_text") if key in case})
        requests.append(request)
    for case, outputs in zip(real_exports.values(), run_fresh_client(requests)):
        np.testing.assert_allclose(outputs["scores"], case["expected"], atol=1e-5)
    # The trained hub classifier names the validation photos' true classes (saved_model_cli's run on a JPEG, the
    # same signature, is checked on the tiny export in test_export.py).
    hub = real_exports["hub"]
    assert [CLASSES[i] for i in hub["expected"][:len(hub["labels"])].argmax(axis=1)] == [
        CLASSES[label] for label in hub["labels"]]


def test_saved_model_cli_runs_the_glove_export_on_strings(real_exports):
    case = real_exports["glove"]
    text = saved_model_cli("run", "--dir", str(case["path"]), "--tag_set", "serve", "--signature_def",
                           "serving_default", "--input_exprs", f"texts={json.dumps(case['texts'][:1])}")
    printed = text.split("Result for output key scores:")[1].split("Result")[0]
    scores = [float(value) for value in re.findall(r"[-+]?\d*\.\d+(?:e[-+]?\d+)?", printed)]
    np.testing.assert_allclose(scores, case["expected"][0], atol=1e-5)


def test_load_exported_tables_on_real_photos_and_an_sms_csv(real_exports, shared_assets, tmp_path):
    hub = real_exports["hub"]
    table = load_exported(hub["path"]).predict(hub["files"])
    np.testing.assert_allclose(table[["score_ants", "score_bees"]].to_numpy(), hub["expected"], atol=1e-5)
    pd.read_csv(shared_assets / "data/sms_spam/sms_spam.csv").head(5).to_csv(tmp_path / "sms.csv", index=False)
    texts = load_exported(real_exports["glove"]["path"]).predict(tmp_path / "sms.csv")
    assert len(texts) == 5 and list(texts.columns) == ["text", "file", "class", "score", "score_ham", "score_spam"]
    assert texts.file[0].endswith("sms.csv, row 2") and texts.file[4].endswith("sms.csv, row 6")


def test_minilm_names_tensorflow_text_where_it_is_missing_and_its_export_runs_with_it(real_exports, shared_assets):
    """One process: where TF Text is not installed, loading the MiniLM pair names the op and the package; with it,
    the export runs (the fresh TensorFlow client above imports TF Text itself; load_exported registers the ops)."""
    case = real_exports["minilm"]
    hub = shared_assets / "models/hub"
    script = ("import sys\nsys.modules['tensorflow_text'] = None  # as where it is not installed\nimport tfxfer\n"
              "try:\n"
              f"    tfxfer.load_extractor({str(hub / 'all_minilm_l6_v2_encoder')!r}, "
              f"preprocessor={str(hub / 'all_minilm_l6_v2_preprocess')!r})\n"
              "except ImportError as error:\n    print(error, file=sys.stderr)\n"
              "del sys.modules['tensorflow_text']  # installed after all\n"
              f"print(tfxfer.load_exported({str(case['path'])!r}).predict({case['texts']!r}).to_json(orient='split'))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "uses the TensorFlow Text op NormalizeUTF8" in result.stderr and "pip install 'tfxfer[text]'" in result.stderr
    table = pd.read_json(io.StringIO(result.stdout.strip().splitlines()[-1]), orient="split")
    np.testing.assert_allclose(table[["score_ham", "score_spam"]].to_numpy(), case["expected"], atol=1e-5)
