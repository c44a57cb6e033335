"""Mixed precision (bfloat16 runs on CPU) trains and exports float32 scores; flip TTA averages a model and its
mirror; label smoothing and the precision policy refuse what they cannot do."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from helpers import tiny_cnn
from tfxfer.data.task import Task
from tfxfer.training import Head, flip_averaged, pick_precision

MULTICLASS = Task("multiclass", ["a", "b", "c"], 3, "sparse", class_weights={0: 1.0, 1: 1.0, 2: 1.0})


def arrays(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 16, 16, 3), dtype=np.float32), rng.integers(0, 3, n)


def test_bfloat16_trains_and_exports_float32_scores(tiny_hub_model, tmp_path):
    x, y = arrays()
    model = tfxfer.TransferModel(tiny_hub_model, regime="fine-tune", warmup_epochs=1, epochs=1, batch_size=16,
                                 head=Head(hidden_units=(8,)), precision="mixed_bfloat16", label_smoothing=0.1,
                                 patience=None, cache=False, verbose=0).fit((x, y), task=MULTICLASS)
    head = model.model_.get_layer("head")
    assert head.get_layer("head_dense_0").compute_dtype == "bfloat16"
    assert head.get_layer("output").compute_dtype == "float32"
    assert model.extractor_.compute_dtype == "float32"  # a SavedModel's graph stays float32
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    assert np.isfinite(model.history_["loss"]).all() and len(model.history_["loss"]) == 2
    predicted = model.predict(x)
    assert predicted.dtype == np.float32
    path = tfxfer.export(model, "mixed", root=tmp_path / "exports", test_time_augmentation=True)
    served = tf.saved_model.load(str(path)).signatures["serving_images"](images=tf.constant(x * 255.0))
    assert served["scores"].dtype == tf.float32
    expected = model.predict(x, test_time_augmentation=True)
    np.testing.assert_allclose(served["scores"].numpy(), expected, atol=2e-2)
    assert not np.allclose(expected, predicted, atol=1e-6)  # the export serves the flip-averaged scores
    # TTA's loss is the loss training used, label smoothing included, as the plain loss is (found by a hostile
    # tester: it was plain cross-entropy, so TTA's loss beside the plain one read as worse when it was better)
    # (the head's L2 penalty is in both evaluated losses, so their difference is compared)
    loss = MULTICLASS.loss(label_smoothing=0.1)
    evaluated = [model.evaluate((x, y), test_time_augmentation=flip)["loss"] for flip in (False, True)]
    assert evaluated[1] - evaluated[0] == pytest.approx(float(loss(y, expected) - loss(y, predicted)), abs=1e-4)


def test_mixed_float16_scales_the_loss_and_auto_is_float32_on_cpu():
    model = tfxfer.TransferModel(tiny_cnn(), precision="mixed_float16", verbose=0)
    compiled = model.build(MULTICLASS)
    assert isinstance(compiled.optimizer, keras.optimizers.LossScaleOptimizer)
    assert pick_precision() == "float32"
    assert tfxfer.TransferModel(tiny_cnn(), verbose=0).build(MULTICLASS).dtype_policy.name == "float32"
    with pytest.raises(ValueError, match="precision must be 'auto' or one of"):
        tfxfer.TransferModel(tiny_cnn(), precision="float16").build(MULTICLASS)


class Seen(keras.callbacks.Callback):
    """Records the optimizer class it sees and, as a user's callback may, stops after the first epoch."""

    def __init__(self):
        super().__init__()
        self.optimizers = []

    def on_epoch_end(self, epoch, logs=None):
        self.optimizers.append(type(self.model.optimizer).__name__)
        self.model.stop_training = True


def test_a_phase_on_the_cache_scales_the_loss_and_obeys_the_users_callbacks(tmp_path):
    """Found by a hostile tester: the trainer over cached activations was built outside the dtype policy, so mixed
    float16 did not scale its loss; a user's callback could neither stop it nor set its learning rate."""
    from helpers import noise_folders

    extractor = tfxfer.load_extractor(tiny_cnn())
    data = tfxfer.load_images(noise_folders(tmp_path / "images", per_class=4), extractor=extractor, batch_size=4,
                              validation_split=0.25, seed=0)
    seen = Seen()
    model = tfxfer.TransferModel(extractor, precision="mixed_float16", epochs=5, patience=None, verbose=0)
    model.fit(data, callbacks=[seen])
    assert model.cached_phases_ == [True] and len(model.history_["loss"]) == 1  # stopped after one epoch
    assert seen.optimizers == ["LossScaleOptimizer"]
    model = tfxfer.TransferModel(extractor, epochs=2, patience=None, verbose=0)
    model.build(data.task)
    head = [w.copy() for w in model.model_.get_layer("head").get_weights()]
    model.train(data, callbacks=[keras.callbacks.LearningRateScheduler(lambda epoch, rate: 0.0)])
    assert model.history_["learning_rate"] == [0.0, 0.0]
    for before, after in zip(head, model.model_.get_layer("head").get_weights()):
        np.testing.assert_array_equal(before, after)  # trained at rate 0: unchanged


def test_flip_averaged_is_the_mean_over_the_mirror_image():
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))
    x = arrays(4)[0]
    averaged = flip_averaged(model).predict(x, verbose=0)
    expected = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(averaged, expected, atol=1e-6)


def test_recipe_arguments_are_checked():
    regression = Task("regression", ["score"], 1, "float")
    with pytest.raises(ValueError, match="label_smoothing=0.1 is for classes"):
        tfxfer.TransferModel(tiny_cnn(), label_smoothing=0.1, verbose=0).build(regression)
    with pytest.raises(ValueError, match="pass one of them"):
        tfxfer.TransferModel(tiny_cnn(), regime="fine-tune", layer_decay=0.8,
                             block_rates=(1e-6, 1e-4)).build(MULTICLASS)
    with pytest.raises(ValueError, match="layer_decay=0.8 does nothing with regime='feature-extraction'"):
        tfxfer.TransferModel(tiny_cnn(), layer_decay=0.8).build(MULTICLASS)
    with pytest.raises(ValueError, match=r"block_rates must be a pair \(low, high\)"):
        tfxfer.TransferModel(tiny_cnn(), regime="fine-tune", block_rates=(1e-3, 1e-5)).build(MULTICLASS)
