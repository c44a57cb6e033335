"""HubExtractor on TF Hub-format SavedModels built by the tests: blocks, freezing, outputs, handles, errors."""

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from helpers import tiny_cnn
from tfxfer.data.task import Task
from helpers import assert_freezing_held, classifier, step_changes


def learnable_paths(extractor):
    return {w.path for block in extractor.blocks for w in block.learnable}


def test_blocks_follow_variable_scopes(tiny_hub_model):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    table = extractor.describe()
    assert list(table["name"]) == ["stem_conv", "block_1", "block_2", "block_3"]
    assert extractor.input_kind == "image" and extractor.image_size == (16, 16)
    assert extractor.value_range == (0.0, 1.0)
    assert table["params"].sum() == sum(int(np.prod(w.shape)) for w in extractor.weights)


def test_output_equals_restored_object(tiny_hub_model, images):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    restored = tf.saved_model.load(str(tiny_hub_model))
    np.testing.assert_allclose(extractor(images[0]).numpy(), restored(images[0], training=False).numpy(), atol=1e-5)


@pytest.mark.parametrize("k", [0, 2, 4])
def test_one_step_moves_exactly_the_unfrozen_blocks(tiny_hub_model, images, k):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    report = step_changes(extractor, *images, freeze=k)
    assert_freezing_held(extractor, report, learnable_paths(extractor), k)


def test_trainable_weights_follow_freezing(tiny_hub_model):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    model = classifier(extractor)
    total = len(model.trainable_weights)
    extractor.freeze("all")
    assert extractor.frozen_blocks == 4 and len(model.trainable_weights) == 2  # only the head
    extractor.freeze(1)
    assert len(model.trainable_weights) == total - len(extractor.blocks[0].learnable)
    extractor.unfreeze()
    assert extractor.frozen_blocks == 0 and len(model.trainable_weights) == total


def test_batchnorm_statistics_move_only_when_asked(tiny_hub_model, images):
    stats = lambda e: [w.numpy().copy() for w in e.weights if "moving_mean" in w.path]  # noqa: E731
    default = tfxfer.load_extractor(tiny_hub_model)
    before = stats(default)
    step_changes(default, *images, freeze=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, stats(default)))
    training = tfxfer.load_extractor(tiny_hub_model, train_batchnorm=True)
    before = stats(training)
    step_changes(training, *images, freeze=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, stats(training)))


def test_regularization_losses_are_added(tiny_hub_model, images):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    extractor(images[0])
    assert len(extractor.losses) == 1 and float(extractor.losses[0]) > 0
    extractor.freeze("all")
    extractor(images[0])
    assert extractor.losses == []  # like Keras, which counts regularizers of trainable weights only


def test_save_and_load_weights_round_trip(tiny_hub_model, tmp_path, images):
    extractor = tfxfer.load_extractor(tiny_hub_model)
    model = classifier(extractor)
    model.fit(*images, epochs=1, verbose=0)
    expected = model.predict(images[0], verbose=0)
    model.save_weights(tmp_path / "trained.weights.h5")
    fresh = classifier(tfxfer.load_extractor(tiny_hub_model))
    assert not np.allclose(fresh.predict(images[0], verbose=0), expected)
    fresh.load_weights(tmp_path / "trained.weights.h5")
    np.testing.assert_allclose(fresh.predict(images[0], verbose=0), expected, atol=1e-6)


def test_keras_export_loads_in_inference_mode(tmp_path, images):
    model = tiny_cnn()
    model.export(str(tmp_path / "exported"), verbose=False)
    extractor = tfxfer.load_extractor(tmp_path / "exported")
    np.testing.assert_allclose(extractor(images[0]).numpy(), model(images[0]).numpy(), atol=1e-5)
    assert extractor.n_blocks >= 1 and extractor.blocks[0].learnable


def test_handle_loads_offline_from_filled_cache(tiny_hub_model, tmp_path, monkeypatch, images):
    handle = "https://tfhub.dev/tfxfer/tiny_cnn/1"
    cache = tmp_path / "hub_cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    shutil.copytree(tiny_hub_model, cache / hashlib.sha1(handle.encode()).hexdigest())
    assert tfxfer.handle_cache_folder(handle) == str(cache / hashlib.sha1(handle.encode()).hexdigest())
    extractor = tfxfer.load_extractor(handle)
    assert extractor.source == handle and extractor.n_blocks == 4
    assert extractor(images[0]).shape == (8, 8)


def test_uncached_handle_fails_fast_and_says_what_to_do(tmp_path, monkeypatch):
    handle = "https://www.kaggle.com/models/tfxfer/not-cached/tensorFlow2/default/1"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "empty_cache"))
    start = time.monotonic()
    with pytest.raises(OSError) as error:
        tfxfer.load_extractor(handle)
    assert time.monotonic() - start < 30
    message = str(error.value)
    assert handle in message and hashlib.sha1(handle.encode()).hexdigest() in message and "local folder" in message


def _tar(path, add):
    with tarfile.open(path, "w:gz") as tar:
        add(tar)
    return path


def test_good_archive_loads(tiny_hub_model, tmp_path, monkeypatch, images):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "cache"))
    archive = _tar(tmp_path / "tiny.tar.gz", lambda tar: tar.add(tiny_hub_model, arcname="."))
    extractor = tfxfer.load_extractor(archive)
    assert extractor.n_blocks == 4 and extractor(images[0]).shape == (8, 8)


def _member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    "member, culprit",
    [
        (_member("../x"), "'../x'"),
        (_member("/etc/x"), "'/etc/x'"),
        (_member("escape", tarfile.SYMTYPE, "../../outside"), "'escape'"),
        (_member("hard", tarfile.LNKTYPE, "/etc/passwd"), "'hard'"),
        (_member("dev", tarfile.CHRTYPE), "'dev'"),
    ],
)
def test_hostile_archive_is_refused_and_writes_nothing(tiny_hub_model, tmp_path, monkeypatch, member, culprit):
    cache = tmp_path / "cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))

    def add(tar):
        tar.add(tiny_hub_model, arcname=".")
        tar.addfile(member, None)

    archive = _tar(tmp_path / "bad.tar.gz", add)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ValueError, match="Refusing to extract") as error:
        tfxfer.load_extractor(archive)
    assert culprit in str(error.value)
    assert sorted(os.listdir(tmp_path)) == before and not cache.exists()


def test_archive_past_size_limit_is_refused(tiny_hub_model, tmp_path):
    archive = _tar(tmp_path / "big.tar.gz", lambda tar: tar.add(tiny_hub_model, arcname="."))
    with pytest.raises(ValueError, match="size limit|past the limit"):
        tfxfer.extract_archive(archive, cache_dir=tmp_path / "cache", max_bytes=1000)
    assert not (tmp_path / "cache").exists()


def test_missing_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does_not_exist.*does not exist"):
        tfxfer.load_extractor(tmp_path / "does_not_exist")


def test_keras_applications_arguments_given_for_a_saved_model_are_refused(tiny_hub_model):
    """alpha=, weights=, pooling= (and a typo) were dropped without a word for a SavedModel (a tester's find)."""
    for options in (dict(alpha=0.5), dict(weights="nope.h5"), dict(pooling="max", bogus=1)):
        with pytest.raises(ValueError, match=rf"load_extractor got {'.*'.join(sorted(options))}=? .*a TF Hub model or "
                                             r"SavedModel, which brings its own weights and size"):
            tfxfer.load_extractor(tiny_hub_model, **options)
    assert tfxfer.load_extractor("MobileNetV2", weights=None, image_size=96).image_size == (96, 96)  # one side


def test_folder_that_is_not_a_saved_model(tmp_path):
    (tmp_path / "just_a_folder").mkdir()
    with pytest.raises(ValueError, match="just_a_folder.*no saved_model.pb"):
        tfxfer.load_extractor(tmp_path / "just_a_folder")
    # A file was "not a SavedModel folder: it has no saved_model.pb", whatever it was (a tester's find).
    for name, advice in (("saved_model.pb", "pass the folder that holds it"), ("m.keras", "a Keras model file"),
                         ("w.h5", "pass the keras.applications name they belong to"), ("m.zip", "unzip it"),
                         ("notes.txt", "pass the folder that holds saved_model.pb")):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(ValueError, match=rf"{name}' is a file, not a SavedModel folder: .*{advice}"):
            tfxfer.load_extractor(tmp_path / name)


def test_a_half_copied_saved_model_is_named_and_a_home_path_is_expanded(tiny_hub_model, tmp_path, monkeypatch):
    """Hostile testers' finds: TensorFlow's 'Unsuccessful TensorSliceReader constructor', and '~/model' not found."""
    (tmp_path / "half").mkdir()
    shutil.copy(tiny_hub_model / "saved_model.pb", tmp_path / "half")
    with pytest.raises(ValueError, match=r"half' holds saved_model.pb but no variables/variables.index: the "
                                         r"SavedModel was copied in part"):
        tfxfer.load_extractor(tmp_path / "half")
    monkeypatch.setenv("HOME", str(tiny_hub_model.parent))
    assert tfxfer.load_extractor("~/tiny_hub").n_blocks == 4


def test_saved_model_without_a_callable(tmp_path):
    root = tf.Module()
    root.v = tf.Variable(1.0)
    tf.saved_model.save(root, str(tmp_path / "no_call"))
    with pytest.raises(ValueError, match="no_call.*nothing to call"):
        tfxfer.load_extractor(tmp_path / "no_call")


def test_keras_3_model_trains_with_hub_extractor_in_fit(tiny_hub_model, images):
    extractor = tfxfer.load_extractor(tiny_hub_model).freeze(2)
    model = classifier(extractor)
    history = model.fit(*images, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3 and np.isfinite(history.history["loss"]).all()


def test_import_needs_no_network_and_cli_entry_point_exists():
    # keras_hub (an optional extra) is imported only when a KerasHub source is loaded.
    result = subprocess.run([sys.executable, "-c", "import sys, tfxfer; print(tfxfer.__version__, 'keras_hub' in "
                             "sys.modules)"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == f"{tfxfer.__version__} False"


def test_a_savedmodel_that_does_not_state_its_image_size_is_taken_at_224_and_says_how_to_change_it(tmp_path):
    """It was a log line in Python's words, and the command line had no flag to change it (a hostile tester's)."""
    from tfxfer.cli.commands import _extractor_options
    from tfxfer.cli.parser import build_parser

    module = tf.Module()
    module.scale = tf.Variable(1.0)
    module.__call__ = tf.function(lambda images: tf.reduce_mean(images, axis=[1, 2]) * module.scale,
                                  input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    sizeless = tmp_path / "exports_128" / "sizeless"  # a size in a parent folder's name is not the model's
    tf.saved_model.save(module, str(sizeless))
    with pytest.warns(UserWarning, match=r"sizeless does not state its image size; assuming 224x224\. Pass "
                                         r"image_size=\[height, width\] to change it\."):
        assert tfxfer.load_extractor(sizeless).image_size == (224, 224)
    args = build_parser().parse_args(["train", "photos", "--extractor", "x", "--image-size", "32", "40"])
    assert _extractor_options(args, "x") == {"image_size": (32, 40)}
    assert tfxfer.load_extractor(sizeless, **_extractor_options(args, "x")).image_size == (32, 40)
    # Nor had it a flag for a pixel range other than TF Hub's [0, 1] (a hostile tester's find).
    args = build_parser().parse_args(["train", "photos", "--extractor", "x", "--value-range", "-1", "1"])
    assert tfxfer.load_extractor(sizeless, **_extractor_options(args, "x")).value_range == (-1.0, 1.0)
    # A text SavedModel ignored --image-size without a word (found trying the new flag as a user).
    from helpers import save_tiny_text_model

    with pytest.raises(ValueError, match=r"image_size= applies to image extractors; .*text_model' takes text: "
                                         r"leave it out\."):
        tfxfer.load_extractor(save_tiny_text_model(tmp_path / "text_model"), image_size=(32, 40))


def test_the_cache_key_changes_with_the_graph_and_the_output_read(tmp_path):
    """A model exported again under one path with the same variables but other operations, or read at another
    output, kept its fingerprint, and a resumed search trained on the old one's cached activations (a hostile
    tester's find)."""
    def save(name, scale):
        module = tf.Module()
        module.kernel = tf.Variable(tf.ones((3, 4)), name="block_1/kernel")
        module.__call__ = tf.function(lambda x: {"emb": tf.reduce_mean(x, axis=[1, 2]) @ module.kernel * scale,
                                                 "zeros": tf.zeros_like(tf.reduce_mean(x, axis=[1, 2]))},
                                      input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32)])
        tf.saved_model.save(module, str(tmp_path / name))
        return tmp_path / name

    one, other = save("one", 1.0), save("other", 0.0)
    key = [tfxfer.load_extractor(path, output_key=output).fingerprint(1)
           for path, output in ((one, "emb"), (one, "emb"), (other, "emb"), (one, "zeros"))]
    assert key[0] == key[1] and len(set(key)) == 3


def test_a_serving_signature_of_two_inputs_is_named(tmp_path):
    module = tf.Module()
    function = tf.function(lambda images, sizes: {"features": tf.reduce_mean(images, axis=[1, 2]) + sizes})
    tf.saved_model.save(module, str(tmp_path / "two_inputs"), signatures=function.get_concrete_function(
        tf.TensorSpec([None, 16, 16, 3], tf.float32, name="images"), tf.TensorSpec([None, 1], tf.float32,
                                                                                   name="sizes")))
    with pytest.raises(ValueError, match=r"two_inputs' is called through its serving_default signature, which takes 2 "
                                         r"inputs \(images, sizes\); an extractor takes one"):
        tfxfer.load_extractor(tmp_path / "two_inputs")


def test_a_plain_tf_module_gets_the_variables_its_function_reads_as_blocks(tmp_path, images):
    """A tf.Module saved without the Reusable SavedModel's `variables` showed 'no variables', and fine-tuning it
    trained the head alone (a hostile tester's find)."""
    module = tf.Module()
    module.first = tf.Variable(tf.random.stateless_normal((3, 8), seed=(0, 1)), name="block_1/kernel")
    module.second = tf.Variable(tf.random.stateless_normal((8, 8), seed=(0, 2)), name="block_2/kernel")
    module.__call__ = tf.function(lambda x: tf.nn.relu(tf.reduce_mean(x, axis=[1, 2]) @ module.first) @ module.second,
                                  input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "plain"))
    extractor = tfxfer.load_extractor(tmp_path / "plain")
    assert [block.name for block in extractor.blocks] == ["block_1", "block_2"]
    before = [block.weights[0].numpy().copy() for block in extractor.blocks]
    model = tfxfer.TransferModel(extractor, regime="mid-layer", freeze_blocks=1, epochs=1, learning_rate=1e-2,
                                 patience=None, verbose=0).fit(images, task=Task("multiclass", ["a", "b", "c"]))
    assert model.trainable_params_ == 64 + 8 * 3 + 3
    assert [np.array_equal(block.weights[0].numpy(), old) for block, old in zip(extractor.blocks, before)] == [
        True, False]


@pytest.mark.parametrize("shape, dtype, image_size, message", [
    ([None, 32, 32, 1], tf.float32, None, r"takes images of 1 channel; tfxfer feeds RGB images, channels last"),
    ([None, 3, 32, 32], tf.float32, None, r"images of 32 channels \(channels first, NCHW\?\)"),
    ([None, 32, 32, 3], tf.uint8, None, r"takes uint8 pixels; tfxfer feeds float pixels"),
    ([1, 32, 32, 3], tf.float32, None, r"takes a fixed batch of 1; .* export it with batch dimension None"),
    ([None, 32, 32, 3], tf.float32, (64, 64), r"exactly 32x32; image_size= cannot make them 64x64: leave it out"),
])
def test_an_image_input_tfxfer_cannot_feed_is_named_at_load(tmp_path, shape, dtype, image_size, message):
    """Each loaded, then failed in training with Keras' 'Could not automatically infer the output shape' (a hostile
    tester's finds)."""
    module = tf.Module()
    module.scale = tf.Variable(1.0, name="block_1/scale")
    module.__call__ = tf.function(lambda x: tf.reduce_mean(tf.cast(x, tf.float32), axis=[1, 2]) * module.scale,
                                  input_signature=[tf.TensorSpec(shape, dtype)])
    tf.saved_model.save(module, str(tmp_path / "model"))
    with pytest.raises(ValueError, match=message):
        tfxfer.load_extractor(tmp_path / "model", image_size=image_size)


DIGEST = """
import sys
import tensorflow as tf
from tfxfer.extractors.hub_endpoints import graph_digest
for _ in range(int(sys.argv[2])):  # functions loaded before: restored names count them
    tf.saved_model.load(sys.argv[1])
print(graph_digest(tf.saved_model.load(sys.argv[1]).__call__))
"""


def test_a_saved_models_graph_digest_is_the_same_in_every_process(tmp_path, tiny_hub_model):
    """A graph with control flow lists its functions in an order that changes with Python's string hashing, and
    names them after the functions the process loaded before: its digest changed with both, so a search with
    MiniLM's preprocessor could not be resumed or exported ("other weights"), nor one across extractors given in
    another order (testers' finds)."""
    class Flow(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            y = tf.map_fn(lambda v: tf.cond(v > 0, lambda: v * 2, lambda: v - 1), x)
            z = tf.while_loop(lambda i, a: i < 3, lambda i, a: (i + 1, tf.cond(
                a[0] > 1, lambda: a * 0.5, lambda: a + 1)), (0, y))[1]
            return tf.cond(tf.reduce_sum(z) > 0, lambda: z, lambda: -z)

    tf.saved_model.save(Flow(), str(tmp_path / "flow"))
    runs = [subprocess.Popen([sys.executable, "-c", DIGEST, str(tmp_path / "flow"), str(before)],
                             stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONHASHSEED": str(seed), "TF_CPP_MIN_LOG_LEVEL": "3"})
            for seed, before in ((1, 0), (2, 0), (1, 1))]  # orders that differ, and names
    digests = [run.communicate(timeout=120)[0].split()[-1] for run in runs]
    assert digests[0] == digests[1] == digests[2] and len(digests[0]) == 64
    # A graph without functions digests as before the order was fixed: searches recorded then still resume
    from tfxfer.extractors.hub_endpoints import graph_digest

    function = tf.saved_model.load(str(tiny_hub_model)).__call__
    graphs = [concrete.graph.as_graph_def() for concrete in function.concrete_functions]
    assert graphs and not any(graph.library.function for graph in graphs)
    before = hashlib.sha256()
    for graph in graphs:
        before.update(graph.SerializeToString(deterministic=True))
    assert graph_digest(function) == before.hexdigest()
