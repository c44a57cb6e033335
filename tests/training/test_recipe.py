"""The training recipe: rates per block (checked against a hand computation of one step), schedules at chosen
steps, the learning-rate finder on a problem whose good rates are measured, mixed precision and flip TTA. (Rates per
block under a MirroredStrategy: test_training_model.py's two-logical-CPU process, which checks them beside the
regimes.)"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfxfer
from helpers import tiny_cnn
from tfxfer.data.task import Task
from tfxfer.training import Head, OneCycle, block_scales, build_model, with_block_rates
from tfxfer.training.rates import variable_scales
from tfxfer.training.schedules import learning_rate

MULTICLASS = Task("multiclass", ["a", "b", "c"], 3, "sparse", class_weights={0: 1.0, 1: 1.0, 2: 1.0})
ADAM_EPSILON = 1e-7  # Keras' default


def batch(n=12, size=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, size, size, 3), dtype=np.float32), rng.integers(0, 3, n)


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
def test_one_step_gives_each_block_the_update_its_rate_implies(kind):
    extractor = tfxfer.load_extractor(tiny_cnn()).freeze(1)
    model = build_model(extractor, MULTICLASS, Head(dropout=0.0))
    rate, decay = (0.1, None) if kind == "sgd" else (0.01, 0.1 if kind == "adamw" else None)
    base = keras.optimizers.SGD(rate) if kind == "sgd" else keras.optimizers.Adam(rate, weight_decay=decay)
    scales = variable_scales(extractor, block_scales(extractor.n_blocks, 1, layer_decay=0.5))
    optimizer = with_block_rates(base, scales)
    x, y = batch()
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy()(y, model(x, training=False))
    variables = model.trainable_variables
    gradients = tape.gradient(loss, variables)
    before = [v.numpy().copy() for v in variables]
    optimizer.apply(gradients, variables)
    scale_of = {id(v): s for v, s in scales}
    assert sorted(set(scale_of.values())) == [0.125, 0.25, 0.5]  # blocks 1, 2, 3 of 4; the head at 1
    for variable, gradient, old in zip(variables, gradients, before):
        own = rate * scale_of.get(id(variable), 1.0)
        g = gradient.numpy()
        if kind == "sgd":
            expected = old - own * g
        else:  # Adam's first step: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected
            expected = old * (1 - (decay or 0.0) * own) - own * g / (np.abs(g) + ADAM_EPSILON / np.sqrt(1 - 0.999))
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-4, atol=1e-8, err_msg=variable.path)


@pytest.mark.parametrize("form", ["hub", "keras"])
def test_fit_trains_each_block_at_its_rate(form, tiny_hub_model):
    """The hub form at a constant rate; the Keras form under one-cycle, whose first step is at a 25th of it."""
    extractor = tfxfer.load_extractor(tiny_hub_model if form == "hub" else tiny_cnn())
    before = [[w.numpy().copy() for w in block.learnable] for block in extractor.blocks]
    x, y = batch(24)
    schedule = "constant" if form == "hub" else "one-cycle"
    model = tfxfer.TransferModel(extractor, regime="fine-tune", warmup_epochs=0, freeze_blocks=1, epochs=1,
                                 batch_size=24, block_rates=(1e-4, 1e-2), schedule=schedule, patience=None,
                                 cache=False, verbose=0)
    model.fit((x, y), task=MULTICLASS)
    assert model.phases_[-1].learning_rate == 1e-2 and model.phases_[-1].schedule == schedule
    # Three blocks and the head, spaced from 1e-4 to 1e-2.
    expected = np.array([0.0, 1e-4, 1e-4 * 10 ** (2 / 3), 1e-4 * 10 ** (4 / 3)]) / (1 if form == "hub" else 25)
    for index, (block, old) in enumerate(zip(extractor.blocks, before)):
        # Adam's first step moves every weight with a gradient by its rate (up to epsilon).
        step = max(np.abs(w.numpy() - value).max() for w, value in zip(block.learnable, old))
        assert step == pytest.approx(expected[index], rel=0.02, abs=1e-9), (form, index)
    head = model.model_.get_layer("head").trainable_weights
    assert max(np.abs(w.numpy()).max() for w in head) > 0


def test_schedules_follow_their_formulas():
    rate, steps = 1e-3, 200
    cosine = learning_rate("cosine", rate, steps)  # warm-up over 20 steps from rate / 21, cosine over 180
    for step, value in [(0, rate / 21), (10, (rate / 21 + rate) / 2), (20, rate),
                        (20 + 60, rate * (1 + np.cos(np.pi / 3)) / 2), (110, rate / 2), (200, 0.0)]:
        assert float(cosine(step)) == pytest.approx(value, abs=1e-9), step
    # A phase of one step trained at rate 0, silently (found by a hostile tester): it now takes half the rate.
    assert float(learning_rate("cosine", rate, 1)(0)) == pytest.approx(rate / 2)
    cycle = learning_rate("one-cycle", rate, steps)
    assert isinstance(cycle, OneCycle)
    for step, value in [(0, rate / 25), (25, (rate / 25 + rate) / 2), (50, rate), (125, (rate + rate / 1e5) / 2),
                        (200, rate / 1e5)]:
        assert float(cycle(step)) == pytest.approx(value, rel=1e-5), step
    assert learning_rate("constant", rate, steps) == rate
    with pytest.raises(ValueError, match="schedule must be one of"):
        learning_rate("linear", rate, steps)
    with pytest.raises(ValueError, match=r"schedule names phases \['tune'\]"):
        tfxfer.TransferModel(tiny_cnn(), regime="fine-tune", schedule={"tune": "cosine"}).build(MULTICLASS)


def mean_colour_extractor():
    """Features = each image's mean colour: average pooling, then a dense layer fixed at the identity."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D(name="block_1_pool")(inputs)
    x = keras.layers.Dense(3, kernel_initializer=keras.initializers.Identity(), name="block_1_dense")(x)
    return tfxfer.load_extractor(keras.Model(inputs, x))


def test_finder_suggestions_fall_in_the_measured_good_range():
    rng = np.random.default_rng(0)
    colours = rng.random((192, 3)).astype(np.float32)
    x = np.clip(colours[:, None, None, :] + rng.normal(0, 0.05, (192, 8, 8, 3)), 0, 1).astype(np.float32)
    y = (colours @ np.array([2.0, -1.0, 0.5])).astype(np.float32)
    task = Task("regression", ["score"], 1, "float")
    # The good range, measured on the same problem (a linear head on the mean colour, Adam, 4 epochs): 1e-3 barely
    # moves, 10 diverges, 0.1 fits.
    features = x.mean(axis=(1, 2))
    losses = {}
    for rate in (1e-3, 1e-1, 10.0):
        keras.utils.set_random_seed(0)
        head = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        head.compile(keras.optimizers.Adam(rate), "mse")
        losses[rate] = head.fit(features, y, batch_size=32, epochs=4, verbose=0).history["loss"][-1]
    assert losses[0.1] * 5 < min(losses[1e-3], losses[10.0]), losses
    finding = tfxfer.TransferModel(mean_colour_extractor(), head=Head(dropout=0.0), batch_size=32, seed=0,
                                   verbose=0).find_learning_rate((x, y), task=task, steps=100)
    assert 1e-3 < finding.valley < 10.0 and 1e-3 < finding.steepest < 10.0, (losses, finding)
    assert finding.smoothed.shape == finding.rates.shape and np.all(np.diff(finding.rates) > 0)
    assert finding.plot().axes[0].get_xscale() == "log"


@pytest.mark.parametrize("scale, ramp, error, message", [
    (1.0, dict(start=1e3, end=1e8), ValueError, "rose from the first step .* Lower start=; if that does not help, "
                                                "check the labels. The ramp was 20 steps: raise steps= first"),
    (1e30, {}, ValueError, "not finite from the first step .* check the targets' scale"),
    (1.0, dict(start=1e-9, end=1e-8), UserWarning, "hardly fell over the ramp .* Raise end="),
    # still falling at the end: the steepest suggestion sat there, and training at it diverged (a hostile tester's)
    (1.0, dict(start=1e-4, end=0.05), UserWarning, "still falling at end=0.05: .* Raise end="),
])
def test_a_ramp_with_nothing_to_suggest_says_why(scale, ramp, error, message):
    """A loss that only rose, overflowed or never moved gave a 'suggestion' with no word of doubt (found by a
    hostile tester: `tfxfer lr-find --start 1e3` suggested 1e3)."""
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 3)).astype(np.float32)
    y = (scale * x.mean(axis=(1, 2, 3))).astype(np.float32)
    model = tfxfer.TransferModel(mean_colour_extractor(), head=Head(dropout=0.0), seed=0, verbose=0)
    with pytest.raises(error, match=message) if error is ValueError else pytest.warns(error, match=message):
        model.find_learning_rate((x, y), task=Task("regression", ["score"], 1, "float"), steps=20, **ramp)


def test_the_finder_says_that_rates_per_block_apply_in_fit_only(tiny_hub_model):
    """It ramped every block at one rate and gave the same suggestion with layer_decay=0.01 as without, silently
    (a hostile tester's find)."""
    colours = np.random.default_rng(0).random((64, 3)).astype(np.float32)
    x, y = np.broadcast_to(colours[:, None, None, :], (64, 16, 16, 3)).copy(), colours.argmax(axis=1)
    model = tfxfer.TransferModel(tiny_hub_model, regime="mid-layer", freeze_blocks=2, layer_decay=0.5, seed=0,
                                 verbose=0)
    with pytest.warns(UserWarning, match="The finder ramps one rate for every block that trains"):
        model.find_learning_rate((x, y), task=Task("multiclass", ["a", "b", "c"]), steps=40, end=1.0)


def test_steepest_passes_over_the_noise_of_the_ramps_first_steps():
    """The smoothed losses of a hostile tester's 60-step ramp (MobileNet 0.25, batches of 4): a dip of batch noise
    at steps 7 to 11 was suggested as the steepest descent, at 1.7e-06, where nothing trains."""
    from tfxfer.training.lr_finder import steepest

    smoothed = np.array([
        1.275, 0.94, 0.947, 0.943, 1.023, 1.05, 0.975, 0.998, 0.893, 0.859, 0.813, 0.769, 0.842, 0.824, 0.785,
        0.752, 0.766, 0.786, 0.817, 0.834, 0.851, 0.938, 0.917, 0.964, 0.928, 0.903, 0.939, 0.96, 0.944, 0.927,
        0.897, 0.917, 0.903, 0.881, 0.86, 0.834, 0.808, 0.814, 0.806, 0.81, 0.782, 0.76, 0.734, 0.709, 0.686, 0.666,
        0.644, 0.658, 0.637, 0.617, 0.598, 0.659, 0.639, 0.62, 0.602, 1.908, 1.852, 1.799, 1.75, 2.154])
    assert 1e-3 < steepest(np.logspace(-7, 1, 60), smoothed) < 1.0
