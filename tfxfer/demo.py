"""`tfxfer demo`: transfer learning end to end, offline, on the digits that scikit-learn ships.

A small CNN is pretrained on digits 0-4 (the source task), saved in TF Hub's Reusable SavedModel format and loaded
back through `tfxfer.load_extractor`, the same path a tfhub.dev model takes. Then it is transferred to digits 5-9
with only a few labelled examples per class (the target task): trained from scratch, by deep feature extraction,
by mid-layer feature extraction and by full fine-tuning. Every figure printed is measured in the run.
"""

import os
import tempfile
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfxfer.data.task import Task
from tfxfer.extractors import load_extractor, save_hub_format
from tfxfer.search.probing import probe
from tfxfer.training import Head, TransferModel

IMAGE_SIZE = (16, 16)
TARGET_CLASSES = [str(d) for d in range(5, 10)]


def digits(classes):
    """scikit-learn's 8x8 digits of the given classes, as 16x16 RGB images in [0, 1], and labels 0..len-1."""
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = np.isin(data.target, classes)
    images = data.images[keep, :, :, None].astype("float32") / 16.0
    images = tf.image.resize(np.repeat(images, 3, axis=-1), IMAGE_SIZE).numpy()
    labels = np.searchsorted(classes, data.target[keep])
    return images, labels


def convnet(seed):
    """The demo's extractor architecture: a stem and three numbered blocks, each a true cut."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((*IMAGE_SIZE, 3))
    x = layers.Conv2D(16, 3, padding="same", name="stem_conv")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for index, filters in enumerate((32, 64, 64), start=1):
        x = layers.Conv2D(filters, 3, padding="same", name=f"block_{index}_conv")(x)
        x = layers.BatchNormalization(momentum=0.9, name=f"block_{index}_bn")(x)
        x = layers.ReLU(name=f"block_{index}_relu")(x)
        if index < 3:
            x = layers.MaxPooling2D(name=f"block_{index}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="block_3_gap")(x)
    return keras.Model(inputs, x, name="digits_convnet")


def pretrain(folder, epochs, seed, verbose):
    """Trains the convnet on digits 0-4 and saves it, without its head, in TF Hub's format."""
    x, y = digits(np.arange(5))
    features = convnet(seed)
    task = Task("multiclass", [str(d) for d in range(5)])
    model = keras.Model(features.input, Head(dropout=0.0)(features.output, task))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    accuracy = model.evaluate(x, y, verbose=0)[1]
    if verbose:
        print(f"pretrained on digits 0-4 ({len(x)} images, {epochs} epochs): train accuracy {accuracy:.3f}")
    return save_hub_format(features, folder)


def target_split(per_class, seed):
    """A few labelled digits 5-9 per class for training; all the others for testing."""
    x, y = digits(np.arange(5, 10))
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(5)])
    test = np.setdiff1d(np.arange(len(y)), train)
    return (x[train], y[train]), (x[test], y[test])


def run_demo(*, per_class=5, pretrain_epochs=8, epochs=40, seed=0, export_root="saved_models", export_name="demo",
             verbose=True):
    """Runs the demo and returns its table.

    Args:
        per_class: Labelled examples per target class.
        pretrain_epochs: Epochs of pretraining on the source task.
        epochs: Epochs of training on the target task (for fine-tuning: its second phase).
        seed: Seeds the data split and every model.
        export_root: Where the best model is exported (`<root>/<export_name>/<version>`); None to skip.
        export_name: The export's model name.
        verbose: Print progress and the table.

    Returns:
        `(table, export_path)`: a DataFrame with one row per regime (`regime`, `frozen_blocks`,
        `trainable_params`, `seconds`, `test_accuracy`) and the path of the export (None when skipped).

    Example:
        >>> table, path = run_demo(per_class=10, export_root=None, verbose=False)  # doctest: +SKIP
    """
    task = Task("multiclass", TARGET_CLASSES)
    train, test = target_split(per_class, seed)
    rows, fitted = [], {}
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        path = pretrain(os.path.join(folder, "digits_extractor"), pretrain_epochs, seed, verbose)
        if verbose:
            print(f"saved in TF Hub format and loaded back with tfxfer.load_extractor "
                  f"({time.perf_counter() - started:.1f} s); target: digits 5-9, {per_class} labelled per class, "
                  f"{len(test[1])} test images")
        extractor = load_extractor(path)
        n_blocks = extractor.n_blocks
        # Which depth's features fit digits 5-9: the probe of every block boundary, on the same labelled few.
        probed = probe({"train": train, "validation": test}, [extractor], task=task)
        runs = [
            ("scratch", None, dict(extractor=load_extractor(convnet(seed + 1)), regime="fine-tune", warmup_epochs=0,
                                   fine_tune_learning_rate=3e-3)),
            ("feature-extraction", n_blocks, dict(extractor=path, regime="feature-extraction", learning_rate=1e-2)),
            ("mid-layer", n_blocks // 2, dict(extractor=path, regime="mid-layer", freeze_blocks=n_blocks // 2,
                                              learning_rate=3e-3)),
            ("fine-tune", 0, dict(extractor=path, regime="fine-tune", warmup_epochs=10, learning_rate=1e-2,
                                  fine_tune_learning_rate=1e-3)),
        ]
        for name, frozen, options in runs:
            model = TransferModel(**options, epochs=epochs, patience=None, seed=seed, verbose=0).fit(train, task=task)
            accuracy = model.evaluate(test)["accuracy"]
            fitted[name] = model
            rows.append({"regime": name, "frozen_blocks": model.frozen_blocks_, "trainable_params":
                         model.trainable_params_, "seconds": round(model.fit_seconds_, 1),
                         "test_accuracy": round(accuracy, 3)})
            if verbose:
                print(f"  {name:<19} test accuracy {accuracy:.3f} ({model.fit_seconds_:.1f} s)")
        table = pd.DataFrame(rows)
        table.attrs["probe"] = probed
        best_row = table.loc[table.test_accuracy.idxmax()]
        best = best_row.regime
        export_path = None
        if export_root is not None:
            from tfxfer.serving import export

            summary = (f"scikit-learn digits 5-9 as 16x16 RGB: {len(train[1])} training images ({per_class} per class), "
                       f"{len(test[1])} test images")
            export_path = export(fitted[best], export_name, root=export_root, data_summary=summary,
                                 metrics={"test_accuracy": float(best_row.test_accuracy), "regime": best})
    if verbose:
        print()
        print(table.to_string(index=False))
        print(f"\nbest: {best}" + (f", exported to {export_path}" if export_path else ""))
        scratch, transfers = table.iloc[0], table.iloc[1:]  # the runs list scratch first
        transfer = transfers.loc[transfers.test_accuracy.idxmax()]
        print(f"best transfer regime ({transfer.regime}) vs scratch: {transfer.test_accuracy:.3f} vs "
              f"{scratch.test_accuracy:.3f} test accuracy with {per_class} labelled examples per class")
        print(_probe_verdict(probed, n_blocks, int(transfer.frozen_blocks), transfer.regime))
    return table, export_path


def _probe_verdict(probed, n_blocks, winner_frozen, winner):
    """The probe's table by depth, its pick, and whether the regime that won agrees with it."""
    by_depth = probed.sort_values("cut")[["cut", "block", "linear", "knn", "logme"]].round(3)
    best = int(probed.iloc[0].cut)
    if best == n_blocks:
        pick, agrees = "every block frozen (deep feature extraction)", winner_frozen == n_blocks
    else:
        pick, agrees = f"blocks after block {best} trained (mid-layer with {best} frozen)", winner_frozen < n_blocks
    return (f"\nprobe of every block boundary (linear probe and k-NN accuracy on the test images, LogME):\n"
            f"{by_depth.to_string(index=False)}\n"
            f"the features are most linearly separable after block {best} of {n_blocks}: the probe's pick is {pick}; "
            f"the best transfer regime ({winner}, {winner_frozen} frozen) {'agrees' if agrees else 'disagrees'}")

