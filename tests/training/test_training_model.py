"""The three regimes on tiny TF Hub-format and Keras extractors: what trains, what stays, heads per task."""

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

import tfxfer
from helpers import save_tiny_text_model, tiny_cnn
from tfxfer.data.task import Task

MULTICLASS = Task("multiclass", ["a", "b", "c"], 3, "sparse", class_weights={0: 1.0, 1: 1.0, 2: 1.0})


@pytest.fixture
def arrays():
    rng = np.random.default_rng(1)
    return rng.random((24, 16, 16, 3), dtype=np.float32), rng.integers(0, 3, 24)


def snapshot(extractor):
    return [[w.numpy().copy() for w in block.weights] for block in extractor.blocks]


def extractors(tiny_hub_model):
    return {"hub": lambda: tfxfer.load_extractor(tiny_hub_model), "keras": lambda: tfxfer.load_extractor(tiny_cnn())}


@pytest.mark.parametrize("kind", ["hub", "keras"])
@pytest.mark.parametrize("regime, freeze, frozen_after, warmup, epochs", [
    ("feature-extraction", None, 4, None, 2), ("mid-layer", 2, 2, None, 2), ("mid-layer", None, 2, 1, 3),
    ("fine-tune", None, 0, 1, 3), ("fine-tune", 1, 1, 1, 3),
])
def test_regime_trains_what_it_says(tiny_hub_model, arrays, kind, regime, freeze, frozen_after, warmup, epochs):
    extractor = extractors(tiny_hub_model)[kind]()
    before = snapshot(extractor)
    model = tfxfer.TransferModel(extractor, regime=regime, freeze_blocks=freeze, epochs=2, warmup_epochs=warmup,
                                 patience=None, verbose=0).fit(arrays, task=MULTICLASS)
    assert model.frozen_blocks_ == frozen_after
    expected_trainable = sum(len(b.learnable) for b in extractor.blocks[frozen_after:]) + 2  # + output kernel, bias
    assert len(model.model_.trainable_weights) == expected_trainable
    for index, (block, old) in enumerate(zip(extractor.blocks, before)):
        same = [np.array_equal(w.numpy(), v) for w, v in zip(block.weights, old)]
        if index < frozen_after:
            assert all(same), f"frozen block {index} changed"
        else:
            assert not all(same), f"trainable block {index} did not change"
        stats = [s for w, s in zip(block.weights, same) if "moving_" in w.path]
        assert all(stats), f"BatchNorm statistics of block {index} changed"
    assert len(model.history_["loss"]) == epochs
    assert [phase.frozen_blocks for phase in model.phases_][-1] == frozen_after


def test_fine_tune_recompiles_with_the_lower_learning_rate(tiny_hub_model, arrays, capsys):
    model = tfxfer.TransferModel(tiny_hub_model, regime="fine-tune", warmup_epochs=2, epochs=2, patience=None,
                                 learning_rate=1e-3, fine_tune_learning_rate=1e-5, verbose=2)
    model.fit(arrays, validation=arrays, task=MULTICLASS)
    printed = capsys.readouterr().out  # each phase named as it begins: Keras numbers the epochs on, 1/2 then 3/4
    assert "head warm-up (phase 1 of 2): 4 of 4 blocks frozen, learning rate 0.001, at most 2 epochs" in printed
    assert printed.index("fine-tuning (phase 2 of 2): 0 of 4 blocks frozen, learning rate 1e-05") > printed.index(
        "Epoch 2/2")
    assert model.learning_rates_ == [1e-3, 1e-5] and model.fine_tune_epoch_ == 2
    assert float(model.model_.optimizer.learning_rate.numpy()) == pytest.approx(1e-5)
    assert model.model_.optimizer.iterations.numpy() == 2 * 1  # the fresh optimizer counts phase 2's steps only
    assert len(model.history_["val_loss"]) == 4


@pytest.mark.parametrize("task, labels, shape", [
    (Task("multilabel", ["x", "y", "z", "w"], 4, "multi_hot"), lambda r: (r.random((24, 4)) > 0.5).astype("float32"),
     (24, 4)),
    (Task("regression", ["score"], 1, "float"), lambda r: r.random((24,)).astype("float32") * 5, (24, 1)),
])
def test_multilabel_and_regression_heads(tiny_hub_model, arrays, task, labels, shape):
    y = labels(np.random.default_rng(0))
    model = tfxfer.TransferModel(tiny_hub_model, head=tfxfer.Head(hidden_units=(8,), l2=1e-4), epochs=2,
                                 verbose=0).fit((arrays[0], y), task=task)
    predictions = model.predict(arrays[0])
    assert predictions.shape == shape and np.isfinite(predictions).all()
    if task.task_type == "multilabel":
        assert "val_auc" not in model.history_ and "auc" in model.history_ and "f1" in model.history_
        assert ((predictions >= 0) & (predictions <= 1)).all()
    else:
        assert "mae" in model.history_


def test_class_weights_reach_keras(tiny_hub_model, arrays):
    task = Task("multiclass", ["a", "b", "c"], 3, "sparse", class_weights={0: 100.0, 1: 0.01, 2: 0.01})
    x, y = arrays
    weighted = tfxfer.TransferModel(tiny_hub_model, epochs=3, learning_rate=0.05, seed=0, verbose=0).fit(
        (x, y), task=task)
    assert (weighted.predict(x).argmax(1) == 0).mean() > 0.9


@pytest.mark.parametrize("argument, value, message", [
    ("regime", "fine-grained", "regime must be one of"),
    ("freeze_blocks", 9, "from 0 to 4"),
    ("learning_rate", -1.0, "learning_rate must be a positive number"),
    ("epochs", 0, "epochs must be a whole number"),
])
def test_bad_arguments_are_named(tiny_hub_model, arrays, argument, value, message):
    options = {"regime": "mid-layer", argument: value}
    with pytest.raises(ValueError, match=message):
        tfxfer.TransferModel(tiny_hub_model, **options, verbose=0).fit(arrays, task=MULTICLASS)


@pytest.mark.parametrize("options, message", [  # each was taken and did nothing, or worse (found by a hostile tester)
    (dict(regime="mid-layer", schedule={"fine-tune": "cosine"}),  # no warm-up: its one phase is "train"
     r"schedule names phase 'fine-tune', which this plan does not have: its phases are \['train'\]"),
    (dict(regime="fine-tune", schedule={"head": "cosine"}), r"its phases are \['warm-up', 'fine-tune'\]"),
    (dict(regime="fine-tune", freeze_blocks=4, layer_decay=0.8), r"freeze_blocks=4 freezes every block, so "
                                                                 r"regime='fine-tune' would train the head alone"),
    (dict(regime="mid-layer", freeze_blocks=4), "so regime='mid-layer' would train the head alone"),
    (dict(regime="fine-tune", block_rates=(1e-6, float("inf"))), "positive finite rates"),  # trained to NaN weights
    (dict(regime="fine-tune", block_rates=(1e-6, 1e-4), fine_tune_learning_rate=3e-4),
     r"so fine_tune_learning_rate=0.0003 would do nothing: pass one of them"),
    (dict(regime="mid-layer", block_rates=(1e-6, 1e-4), learning_rate=3e-3), "so learning_rate=0.003 would do nothing"),
    (dict(jit_compile="yes"), "jit_compile must be 'auto', True or False"),
])
def test_settings_that_would_do_nothing_are_refused(tiny_hub_model, arrays, options, message):
    with pytest.raises(ValueError, match=message):
        tfxfer.TransferModel(tiny_hub_model, **options, epochs=1, verbose=0).fit(arrays, task=MULTICLASS)


def test_numpy_numbers_are_numbers(tiny_hub_model, arrays):
    fitted = tfxfer.TransferModel(tiny_hub_model, regime="mid-layer", freeze_blocks=2, layer_decay=np.float32(0.8),
                                  epochs=np.int64(1), learning_rate=np.float32(1e-3), verbose=0)
    assert len(fitted.fit(arrays, task=MULTICLASS).history_["loss"]) == 1


@pytest.mark.parametrize("validation, message", [
    (lambda x, y: (x[:8], np.array([0, 1, 2, 7, 0, 1, 2, 0])), r"validation: label 7 at row 3 is not a class index"),
    (lambda x, y: (x[:8, :8, :8], y[:8]), r"validation: The data's images are of size \(8, 8\)"),
    (lambda x, y: (x[:8], y[:5]), "validation: 8 inputs but 5 labels"),
])
def test_validation_passed_apart_is_checked_like_the_training_data(tiny_hub_model, arrays, validation, message):
    with pytest.raises(ValueError, match=message):
        tfxfer.TransferModel(tiny_hub_model, verbose=0).fit(arrays, validation=validation(*arrays), task=MULTICLASS)
    with pytest.raises(ValueError, match="^24 inputs but 23 labels"):
        tfxfer.TransferModel(tiny_hub_model, verbose=0).fit((arrays[0], arrays[1][:23]), task=MULTICLASS)


def test_head_and_task_mismatch_is_refused(tiny_hub_model, arrays):
    with pytest.raises(ValueError, match="num_outputs"):
        tfxfer.TransferModel(tiny_hub_model, verbose=0).fit(arrays, task=Task("multiclass", ["a"], 1, "sparse"))
    with pytest.raises(ValueError, match="dropout"):
        tfxfer.Head(dropout=1.5)


def test_the_head_normalises_text_features_and_image_features_only_when_asked(tiny_hub_model, tmp_path):
    text = tfxfer.load_extractor(save_tiny_text_model(tmp_path / "text"))
    image = tfxfer.load_extractor(tiny_hub_model)
    task = Task("multiclass", ["ham", "spam"], 2, "sparse")

    def head_layers(extractor, head=None):
        layers = tfxfer.build_model(extractor, task, head).get_layer("head").layers
        return [(layer.name, getattr(layer, "units", None)) for layer in layers
                if "batch_norm" in layer.name or "dense" in layer.name]

    # By default: BatchNorm and one hidden layer of 128 under a text extractor, a linear head under an image one.
    assert head_layers(text) == [("head_batch_norm", None), ("head_dense_0", 128)]
    assert head_layers(image) == []
    assert head_layers(image, tfxfer.Head(batch_norm=True)) == [("head_batch_norm", None)]
    assert head_layers(text, tfxfer.Head(batch_norm=False, hidden_units=())) == []
    assert head_layers(image, tfxfer.Head(hidden_units=(8,))) == [("head_dense_0", 8)]
    with pytest.raises(ValueError, match="hidden_units must be sizes of layers or 'auto'"):
        tfxfer.Head(hidden_units="none")
    # One size is one layer, 0 none; a flag, a fraction, a NaN penalty or batch_norm=1 are refused (a tester's finds).
    sizes = (64, 0, np.int64(64), np.array([64, 32]))
    assert [tfxfer.Head(hidden_units=units).hidden_units for units in sizes] == [(64,), (), (64,), (64, 32)]
    for bad in (dict(hidden_units=True), dict(hidden_units=[64.7]), dict(batch_norm=1), dict(l2=float("nan"))):
        with pytest.raises(ValueError, match="hidden_units must be whole numbers|batch_norm must|l1 and l2"):
            tfxfer.Head(**bad)
    # texts as a list, as an export's predict takes them (Keras' "Unrecognized data type" before; a tester's find)
    texts = ["win a prize now", "see you at five", "free money", "lunch at noon"]
    fitted = tfxfer.TransferModel(text, epochs=1, verbose=0).fit((np.asarray(texts, dtype=object), np.array(
        [1, 0, 1, 0])), task=task)
    np.testing.assert_array_equal(fitted.predict(texts), fitted.predict(np.asarray(texts, dtype=object)))
    np.testing.assert_array_equal(fitted.predict(texts), fitted.predict(np.asarray(texts)))  # "Invalid dtype: str5"
    with pytest.raises(TypeError, match=r"pass the DataFrame's column of texts, e.g. frame\['text'\]"):
        fitted.predict(pd.DataFrame({"text": texts}))
    # One example per batch under BatchNorm learned nothing and served confidently wrong (a hostile tester's find);
    # now it would leave the features unnormalised.
    with pytest.raises(ValueError, match="batch_size=1 under a head that normalises its input .* unnormalised"):
        tfxfer.TransferModel(text, batch_size=1, epochs=1, verbose=0).fit(
            (np.asarray(texts, dtype=object), np.array([1, 0, 1, 0])), task=task)
    with pytest.raises(ValueError, match="batch_norm must be True, False or 'auto'; got 'yes'"):
        tfxfer.Head(batch_norm="yes")


def test_a_last_batch_of_one_leaves_the_head_batch_norm_statistics_alone(tmp_path):
    """33 examples in batches of 32: Keras' BatchNormalization mapped the last example to zero and pulled the moving
    variance towards zero once an epoch (served scores then swell); the head's normalises it as in inference."""
    import keras
    import tensorflow as tf

    from tfxfer.training.heads import HeadBatchNormalization

    features = np.random.default_rng(0).normal(0.0, 2.0, (33, 4)).astype("float32")
    for batches in ("arrays", "dataset"):  # a batch size Keras knows when it traces, and one it does not
        layer = HeadBatchNormalization(momentum=0.9)
        model = keras.Sequential([keras.Input((4,)), layer, keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        data = dict(x=features, y=np.zeros(33), batch_size=32, shuffle=False) if batches == "arrays" else dict(
            x=tf.data.Dataset.from_tensor_slices((features, np.zeros(33))).batch(32))
        model.fit(**data, epochs=1, verbose=0)
        # one update, from the first 32 examples alone
        np.testing.assert_allclose(layer.moving_mean, 0.1 * features[:32].mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.moving_variance, 0.9 + 0.1 * features[:32].var(axis=0), rtol=1e-4)
        lone = features[-1:]
        np.testing.assert_allclose(layer(lone, training=True), layer(lone, training=False), rtol=1e-6)
    # saved and loaded as a Keras model, it stays this layer
    model.save(tmp_path / "head.keras")
    assert type(keras.models.load_model(tmp_path / "head.keras").layers[0]) is HeadBatchNormalization


def test_mirrored_strategy_on_two_logical_cpus(tiny_hub_model):
    script = textwrap.dedent(f"""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import tfxfer
        from tfxfer.data.task import Task
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        rng = np.random.default_rng(0)
        x, y = rng.random((32, 16, 16, 3), dtype=np.float32), rng.integers(0, 3, 32)
        for regime in ("feature-extraction", "fine-tune"):
            model = tfxfer.TransferModel({str(tiny_hub_model)!r}, regime=regime, epochs=1, strategy=strategy,
                                         verbose=0, **({{"warmup_epochs": 1}} if regime == "fine-tune" else {{}}))
            model.fit((x, y), task=Task("multiclass", ["a", "b", "c"], 3, "sparse"))
            print(regime, strategy.num_replicas_in_sync, type(model.extractor_.weights[0].value).__name__,
                  np.isfinite(model.history_["loss"]).all())
        # Rates per block (issue 17) under the strategy: one step, layer decay 0.5 from the top block down.
        with strategy.scope():
            extractor = tfxfer.load_extractor({str(tiny_hub_model)!r})
        old = [w.numpy().copy() for w in extractor.blocks[3].learnable + extractor.blocks[2].learnable]
        model = tfxfer.TransferModel(extractor, regime="fine-tune", warmup_epochs=0, freeze_blocks=2, epochs=1,
                                     batch_size=24, layer_decay=0.5, learning_rate=1e-3, fine_tune_learning_rate=1e-2,
                                     patience=None, cache=False, strategy=strategy, verbose=0)
        model.fit((x[:24], y[:24]), task=Task("multiclass", ["a", "b", "c"], 3, "sparse"))
        new = [w.numpy() for w in extractor.blocks[3].learnable + extractor.blocks[2].learnable]
        n3 = len(extractor.blocks[3].learnable)
        steps = [np.abs(a - b).max() for a, b in zip(new, old)]
        print("steps", round(max(steps[:n3]) / 1e-2, 3), round(max(steps[n3:]) / 1e-2, 3),
              type(extractor.weights[0].value).__name__)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.split("\n")
    assert "feature-extraction 2 MirroredVariable True" in lines and "fine-tune 2 MirroredVariable True" in lines
    # Block 3 of 4 at rate * 0.5, block 2 at rate * 0.25.
    assert "steps 0.5 0.25 MirroredVariable" in lines, result.stdout


def test_a_fitted_model_survives_a_refused_fit_and_the_finder(tmp_path):
    """A second fit refused for its data, and the learning-rate finder, left a fitted model with a new untrained
    head (predictions moved by 0.26; an export then served it); found by a notebook-style tester."""
    from helpers import noise_folders

    folder = noise_folders(tmp_path / "images", per_class=6)
    extractor = tfxfer.load_extractor(tiny_cnn())
    data = tfxfer.load_images(folder, extractor=extractor, batch_size=8, validation_split=0.25, seed=0)
    fitted = tfxfer.TransferModel(extractor, epochs=2, seed=0, verbose=0).fit(data)
    images = np.concatenate([x for x, _ in data.validation])
    before = fitted.predict(images)
    wrong = tfxfer.load_images(folder, image_size=(16, 16), value_range=(0, 255), batch_size=8,
                               validation_split=0.25, seed=0)
    with pytest.raises(ValueError, match=r"images are in \[0, 255\]"):
        fitted.fit(wrong)
    np.testing.assert_array_equal(fitted.predict(images), before)
    fitted.find_learning_rate(data, steps=10)
    np.testing.assert_array_equal(fitted.predict(images), before)
    with pytest.raises(ValueError, match="uint8 pixels .* divided by 255"):  # was 0.61 off, silently
        fitted.predict((images * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"got one image of shape \(16, 16, 3\): pass image\[None\]"):
        fitted.predict(images[0])  # one image without its batch axis ("of size (16, 3)" before)
    # A tester's finds: floats in 0 to 255 (what tf.image.resize returns) scored silently; files, a DataFrame of
    # paths, and the DataSplits in evaluate met bare Keras errors.
    with pytest.raises(ValueError, match=r"hold values up to .* takes pixels in \[0, 1\]: divide pixels"):
        fitted.predict(images * 255)
    files = sorted(str(path) for path in folder.rglob("*.png"))
    for given in (files, files[0], pd.DataFrame({"path": files})):
        with pytest.raises(TypeError, match=r"for image files, export the model and run tfxfer.load_exported"):
            fitted.predict(given)
    assert fitted.evaluate(data) == fitted.evaluate(data.validation)
    assert fitted.extractor_.frozen_blocks == fitted.frozen_blocks_
    # The validation split passed apart, as a notebook user passes it: trained end to end, not refused.
    again = tfxfer.TransferModel(extractor, epochs=1, seed=0, verbose=0).fit(data, validation=data.validation)
    assert len(again.history_["val_loss"]) == 1
    # Never fitted: the finder and a refused fit leave it unfitted, and its Extractor frozen as it was; predict and
    # export say to fit (the finder left a predicting, exportable, untrained model; found by a hostile tester).
    fresh_extractor = tfxfer.load_extractor(tiny_cnn())
    fresh = tfxfer.TransferModel(fresh_extractor, verbose=0)
    with pytest.raises(RuntimeError, match=r"not fitted: call fit\(data\) first"):
        fresh.predict(images)
    fresh.find_learning_rate(data, steps=10)
    with pytest.raises(ValueError, match=r"images are in \[0, 255\]"):
        fresh.fit(wrong)
    assert not hasattr(fresh, "model_") and fresh_extractor.frozen_blocks == 0
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh.evaluate(data.validation)
    with pytest.raises(TypeError, match=r"call fit\(\) first"):
        tfxfer.export(fresh, "unfitted", root=tmp_path / "exports")
    assert not (tmp_path / "exports").exists()


def test_regression_targets_far_from_zero_train_and_are_served_in_their_units(tmp_path):
    """Targets near 1500 flat-lined at a loss of 2.3e6: the output layer starts near 0 and Adam moves it by about
    the learning rate per step (a hostile tester's find). The head now scales its output by the training targets'
    mean and spread."""
    import pandas as pd
    from PIL import Image

    paths = []
    for index in range(30):
        pixels = np.zeros((16, 16, 3), np.uint8) + np.uint8(index * 8)
        paths.append(str(tmp_path / f"{index}.png"))
        Image.fromarray(pixels).save(paths[-1])
    frame = pd.DataFrame({"path": paths, "price": [1000.0 + 35.5 * index for index in range(30)]})
    extractor = tfxfer.load_extractor(tiny_cnn())
    data = tfxfer.load_images(frame, extractor=extractor, label_column="price", seed=0)
    assert data.task.target_mean[0] == pytest.approx(np.mean(data.examples("train")[1]))
    model = tfxfer.TransferModel(extractor, epochs=5, learning_rate=1e-2, patience=None, verbose=0).fit(data)
    assert max(model.history_["val_mae"]) < 1.5 * np.std(frame.price)  # it was the targets' size, about 1500
    assert 900 < float(model.predict(np.zeros((1, 16, 16, 3), np.float32))[0, 0]) < 2100
