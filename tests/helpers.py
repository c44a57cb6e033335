"""Helpers for tests: one real optimizer step, and what it changed per block."""

import keras
import numpy as np


def classifier(extractor, num_classes=3):
    """The extractor under a softmax head, compiled with Adam so that one step moves every trainable weight."""
    if extractor.input_kind == "text":
        inputs = keras.Input(shape=(), dtype="string")
    else:
        inputs = keras.Input((*extractor.image_size, 3))
    features = extractor(inputs)
    if len(features.shape) == 4:
        features = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(features))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return model


def step_changes(extractor, x, y, freeze):
    """Freezes `freeze` blocks, takes one optimizer step, and reports per block what changed.

    Returns:
        A list, one entry per block, of `(frozen, changed)` where `changed` maps each weight's path to whether it
        differs (not bit-identical) after the step.
    """
    extractor.freeze(freeze)
    model = classifier(extractor)
    before = [[np.array(w.numpy()) for w in block.weights] for block in extractor.blocks]
    model.train_on_batch(x, y)
    report = []
    for block, old in zip(extractor.blocks, before):
        changed = {w.path: not np.array_equal(w.numpy(), value) for w, value in zip(block.weights, old)}
        report.append((extractor._block_frozen(block), changed))
    return report


def assert_freezing_held(extractor, report, learnable_paths, k):
    """Frozen blocks bit-identical; every unfrozen block moved; BatchNorm statistics unchanged while any is frozen."""
    assert [frozen for frozen, _ in report] == [i < k for i in range(len(report))]
    for index, (frozen, changed) in enumerate(report):
        if frozen:
            assert not any(changed.values()), f"block {index} is frozen but changed: {changed}"
        else:
            moved = [path for path, did in changed.items() if did and path in learnable_paths]
            assert moved, f"block {index} is trainable but no weight moved"
        if k > 0:
            stats = [p for p in changed if "moving_" in p]
            assert not any(changed[p] for p in stats), f"BatchNorm statistics of block {index} changed"
