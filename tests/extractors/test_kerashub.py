"""KerasHub presets as extractors: tiny backbones built from configurations (random weights), written with
`save_to_preset` and loaded back through the same `from_preset` calls a download takes; blocks, freezing, cached
training, a search, and exports that TensorFlow alone serves."""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfxfer
from helpers import noise_folders, write_image
from tfxfer.data import decode_image
from tfxfer.search import SearchSpace, TransferSearch
from tfxfer.serving import export

keras_hub = pytest.importorskip("keras_hub")

pytestmark = pytest.mark.xdist_group("kerashub")  # one worker builds the module fixtures once

SIZE = 32
CLASSES = ["ants", "bees", "wasps"]
WORDS = "the a ants bees wasps honey march make and sting fly nest queen hive".split()
VOCABULARY = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"bcdefghijklmnopqrstuvwxyz!?"]))


def save_vision_preset(folder):
    """A tiny ResNet image classifier preset (backbone, ImageNet-style converter, task) in `folder`."""
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7], stackwise_num_filters=[64, 16, 16],
        stackwise_num_blocks=[2, 1, 1], stackwise_num_strides=[1, 2, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(None, None, 3))
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    converter = keras_hub.layers.ResNetImageConverter(image_size=(SIZE, SIZE), scale=list(1 / (255 * std)),
                                                      offset=list(-mean / std))
    preprocessor = keras_hub.models.ResNetImageClassifierPreprocessor(image_converter=converter)
    keras_hub.models.ResNetImageClassifier(backbone, num_classes=3, preprocessor=preprocessor).save_to_preset(folder)
    return str(folder)


def save_text_preset(folder):
    """A tiny BERT text classifier preset (backbone, WordPiece tokenizer, packer of 16 tokens, task) in `folder`."""
    tokenizer = keras_hub.tokenizers.BertTokenizer(vocabulary=VOCABULARY, lowercase=True)
    preprocessor = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=16)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(VOCABULARY), num_layers=2, num_heads=2,
                                             hidden_dim=16, intermediate_dim=32, max_sequence_length=16)
    keras_hub.models.BertTextClassifier(backbone, num_classes=3, preprocessor=preprocessor).save_to_preset(folder)
    return str(folder)


@pytest.fixture(scope="module")
def presets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kerashub")
    tf.keras.utils.set_random_seed(0)
    return {"vision": save_vision_preset(folder / "tiny_resnet"), "text": save_text_preset(folder / "tiny_bert")}


def texts(count=36, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(count):
        label = CLASSES[index % 3]
        words = rng.choice(WORDS, size=rng.integers(2, 9)).tolist()
        rows.append({"text": " ".join([label, *words]).capitalize(), "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def datasets(presets, tmp_path_factory):
    folder = noise_folders(tmp_path_factory.mktemp("kerashub_images") / "images", per_class=8)
    vision = tfxfer.load_extractor(presets["vision"])
    return {"vision": tfxfer.load_images(folder, extractor=vision, batch_size=8, validation_split=0.25, seed=3),
            "text": tfxfer.load_text(texts(), batch_size=8, validation_split=0.25, seed=3)}


def test_vision_preset_gives_stage_blocks_and_the_classifier_features(presets):
    extractor = tfxfer.load_extractor(presets["vision"])
    table = extractor.describe()
    assert list(table["name"]) == ["conv1", "stack0", "stack1", "stack2"]
    assert extractor.image_size == (SIZE, SIZE) and extractor.value_range == (0.0, 255.0)
    assert "resize to 32x32" in table.attrs["preprocessing"] and "times [0.01712" in table.attrs["preprocessing"]
    assert "global average pooling" in table.attrs["output"]
    pixels = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    task = keras_hub.models.ImageClassifier.from_preset(presets["vision"])
    expected = np.mean(task.backbone(task.preprocessor.image_converter(pixels)), axis=(1, 2))
    np.testing.assert_allclose(extractor(pixels).numpy(), expected, atol=1e-5)
    from_task = tfxfer.load_extractor(task)  # a task object brings its backbone, converter and pooling
    assert from_task.n_blocks == 4 and from_task.preprocessing == extractor.preprocessing
    np.testing.assert_allclose(from_task(pixels).numpy(), expected, atol=1e-5)


def test_text_preset_gives_layer_blocks_and_the_pooled_output(presets):
    extractor = tfxfer.load_extractor(presets["text"], sequence_length=12)
    table = extractor.describe()
    assert list(table["name"]) == ["token_embedding", "transformer_layer_0", "transformer_layer_1", "pooled_dense"]
    assert extractor.input_kind == "text" and extractor.client_imports == ("tensorflow_text",)
    assert "sequence_length=12" in table.attrs["preprocessing"]
    assert f"vocabulary of {len(VOCABULARY)}," in table.attrs["preprocessing"]
    strings = tf.constant(["The ants march", "bees make honey", "", "A WASP! a wasp?"])
    backbone = keras_hub.models.Backbone.from_preset(presets["text"])
    preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(presets["text"], sequence_length=12)
    expected = backbone(preprocessor(strings))["pooled_output"]
    np.testing.assert_allclose(extractor(strings).numpy(), expected.numpy(), atol=1e-5)
    activations = extractor.prefix(1)(strings)  # Inside the encoder, the mask rides along as the last channel.
    assert activations.shape == (4, 12, 17)
    np.testing.assert_allclose(extractor.suffix(1)(activations).numpy(), expected, atol=1e-5)
    assert extractor.packed_inputs(1) == (16, ["padding_mask"])  # what the probe averages over: marked tokens
    pooled = extractor.pooled_cut_outputs([1], tf.TensorSpec([None], tf.string))(strings)[0].numpy()
    mask = activations[..., -1:].numpy()
    np.testing.assert_allclose(pooled, (activations[..., :-1].numpy() * mask).sum(1) / np.maximum(mask.sum(1), 1),
                               atol=1e-5)


def test_transformer_vision_backbone_gets_a_block_per_layer():
    backbone = keras_hub.models.ViTBackbone(image_shape=(SIZE, SIZE, 3), patch_size=8, num_layers=3, num_heads=2,
                                            hidden_dim=16, mlp_dim=32)
    converter = keras_hub.layers.ViTImageConverter(image_size=(SIZE, SIZE), scale=1 / 127.5, offset=-1)
    extractor = tfxfer.load_extractor(backbone, preprocessor=converter)
    assert extractor.n_blocks == 5 and "3 transformer layers" in extractor.describe().attrs["output"]
    pixels = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    expected = backbone(converter(pixels))[:, 0]
    np.testing.assert_allclose(extractor(pixels).numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(extractor.suffix(2)(extractor.prefix(2)(pixels)).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["vision", "text"])
def test_freeze_and_unfreeze_set_the_trainable_weights(presets, kind):
    extractor = tfxfer.load_extractor(presets[kind])
    learnable = [len(block.learnable) for block in extractor.blocks]
    assert extractor.freeze(2).frozen_blocks == 2 and len(extractor.trainable_weights) == sum(learnable[2:])
    assert extractor.unfreeze().frozen_blocks == 0 and len(extractor.trainable_weights) == sum(learnable)


@pytest.fixture(scope="module")
def fitted(presets, datasets):
    """Per kind, mid-layer training with 2 frozen blocks end to end and on cached activations."""
    runs = {}
    for kind in ("vision", "text"):
        runs[kind] = [tfxfer.TransferModel(tfxfer.load_extractor(presets[kind]), regime="mid-layer", freeze_blocks=2,
                                           epochs=1, patience=None, seed=7, cache=cache, verbose=0).fit(
                          datasets[kind]) for cache in (False, True)]
    return runs


@pytest.mark.parametrize("kind", ["vision", "text"])
def test_training_moves_exactly_the_unfrozen_blocks(presets, fitted, kind):
    trained = fitted[kind][0].extractor_
    pretrained = tfxfer.load_extractor(presets[kind])
    for index, (block, original) in enumerate(zip(trained.blocks, pretrained.blocks)):
        same = [np.array_equal(w.numpy(), o.numpy()) for w, o in zip(block.weights, original.weights)]
        if index < 2:  # frozen: every weight bit-identical, BatchNorm statistics included
            assert all(same), f"frozen block {block.name} changed"
        else:
            assert not all(same), f"trainable block {block.name} did not move"


@pytest.mark.parametrize("kind", ["vision", "text"])
def test_cached_training_equals_end_to_end(fitted, kind):
    end_to_end, cached = fitted[kind]
    assert end_to_end.cached_phases_ == [False] and cached.cached_phases_ == [True]
    np.testing.assert_allclose(end_to_end.history_["val_loss"], cached.history_["val_loss"], atol=1e-5)
    for trained, on_cache in zip(end_to_end.model_.weights, cached.model_.weights):  # same model, same predictions
        np.testing.assert_allclose(trained.numpy(), on_cache.numpy(), atol=1e-5, err_msg=trained.path)


@pytest.mark.parametrize("kind", ["vision", "text"])
def test_two_trial_search(presets, datasets, kind, tmp_path):
    depths = [3, 4] if kind == "vision" else [4]  # text: the head only, as tracing its tokenizer is the slow part
    search = TransferSearch(presets[kind], max_trials=2, epochs=1, patience=None, directory=tmp_path, project_name=kind,
                            space=SearchSpace(frozen_blocks=depths, warmup_epochs=1), verbose=0)
    table = search.search(datasets[kind])
    assert len(table) == 2 and set(table.status) == {"COMPLETED"} and set(table.frozen_blocks) <= set(depths)
    assert search.hypermodel_.extractor.source == presets[kind]


#: A TensorFlow client that cannot import tfxfer, Keras Hub or TF Hub (TF Text only where the export says so).
CLIENT = textwrap.dedent("""
    import json, sys
    sys.modules["tfxfer"] = sys.modules["keras_hub"] = sys.modules["tensorflow_hub"] = None
    import numpy as np
    import tensorflow as tf
    for request in json.loads(sys.argv[1]):
        metadata = json.load(open(request["export"] + "/assets.extra/tfxfer.json"))
        for module in metadata["client_imports"]:
            __import__(module)
        model = tf.saved_model.load(request["export"])
        if "files" in request:
            inputs = {"image_bytes": tf.constant([open(f, "rb").read() for f in request["files"]])}
        else:
            inputs = {"texts": tf.constant(request["texts"])}
        np.save(request["outputs"], model.signatures["serving_default"](**inputs)["scores"].numpy())
""")


def test_exports_serve_bytes_and_strings_with_tensorflow_alone(fitted, tmp_path):
    files = [write_image(tmp_path / f"photo_{i}.{suffix}", colour=(40 * i, 200 - 30 * i, 90), size=(40 + i, 30))
             for i, suffix in enumerate(["jpg", "png", "jpg"])]
    strings = ["The queen ants nest", "bees and wasps", ""]
    requests, expected = [], []
    for kind in ("vision", "text"):
        model = fitted[kind][1]
        path = export(model, f"tiny_{kind}", tmp_path / "saved_models")
        extractor = model.extractor_
        if kind == "vision":
            inputs = tf.stack([decode_image(tf.io.read_file(str(f)), extractor.image_size, extractor.value_range)
                               for f in files])
            requests.append({"export": str(path), "files": [str(f) for f in files]})
        else:
            inputs = tf.constant(strings)
            requests.append({"export": str(path), "texts": strings})
        requests[-1]["outputs"] = str(tmp_path / f"{kind}.npy")
        expected.append(model.model_(inputs, training=False).numpy())
    metadata = json.loads((tmp_path / "saved_models/tiny_text/1/assets.extra/tfxfer.json").read_text())
    assert metadata["client_imports"] == ["tensorflow_text"] and metadata["extractor_source"].endswith("tiny_bert")
    result = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(requests)], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for request, scores in zip(requests, expected):
        np.testing.assert_allclose(np.load(request["outputs"]), scores, atol=1e-5)


def test_pooling_can_be_chosen_and_a_wrong_one_is_refused(presets):
    extractor = tfxfer.load_extractor(presets["vision"], pooling="none")
    assert extractor(np.zeros((1, SIZE, SIZE, 3), "float32")).shape == (1, 2, 2, 16)
    with pytest.raises(ValueError, match="pooling='token'.*'avg', 'max', 'none'"):
        tfxfer.load_extractor(presets["vision"], pooling="token")


def test_missing_preprocessing_says_what_to_do(presets, tmp_path):
    keras_hub.models.Backbone.from_preset(presets["vision"]).save_to_preset(tmp_path / "backbone_only")
    with pytest.raises(ValueError, match="image_converter.json.*preprocessor="):
        tfxfer.load_extractor(tmp_path / "backbone_only")
    with pytest.raises(ValueError, match="needs its tokenizer and packer: pass preprocessor="):
        tfxfer.load_extractor(keras_hub.models.Backbone.from_preset(presets["text"]))
    with pytest.raises(ValueError, match="sequence_length= applies to text backbones"):
        tfxfer.load_extractor(presets["vision"], sequence_length=8)


def test_builtin_name_loads_offline_from_a_filled_kaggle_cache(presets, tmp_path, monkeypatch):
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    name = "resnet_18_imagenet"
    handle = parse_model_handle(keras_hub.models.Backbone.presets[name]["kaggle_handle"].removeprefix("kaggle://"))
    cache = Cache()
    for file in os.listdir(presets["vision"]):
        target = cache.get_path(handle, file)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(os.path.join(presets["vision"], file), "rb") as source, open(target, "wb") as copy:
            copy.write(source.read())
        cache.mark_as_complete(handle, file)
    extractor = tfxfer.load_extractor(name)
    assert extractor.source == name and extractor.n_blocks == 4


def test_unreachable_handle_fails_fast_and_names_the_local_folder_way(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    handle = "kaggle://tfxfer-tests/no-such-model/keras/tiny/1"
    start = time.monotonic()
    with pytest.raises(OSError) as error:
        tfxfer.load_extractor(handle)
    assert time.monotonic() - start < 30
    assert handle in str(error.value) and "local folder" in str(error.value)


def test_without_keras_hub_the_install_command_is_named(presets, monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(ImportError, match=r"pip install 'tfxfer\[kerashub\]'"):
        tfxfer.load_extractor(presets["vision"])
    with pytest.raises(FileNotFoundError, match="KerasHub preset"):
        tfxfer.load_extractor("resnet_51_imagenet")
