"""Shared pieces of the benchmarks: asset paths, the machine's description, and the TF tutorial recipe."""

import os
import platform
import time
from pathlib import Path

ASSETS = Path(os.environ.get("TFXFER_ASSETS", Path(__file__).resolve().parents[2] / "shared" / "assets"))
HYMENOPTERA = ASSETS / "data" / "hymenoptera" / "hymenoptera_data"
HUB_MOBILENET_V2 = ASSETS / "models" / "hub" / "mobilenet_v2_100_224_feature_vector"
KERAS_MOBILENET_V2 = (ASSETS / "models" / "keras" / "mobilenet_v2_1.0_224_no_top" /
                      "mobilenet_v2_1.0_224_tfslim_no_top.weights.h5")
SMS_CSV = ASSETS / "data" / "sms_spam" / "sms_spam.csv"


def machine():
    """One line naming the machine the figures come from."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {'GPU: ' + str(len(gpus)) if gpus else 'no GPU'}, "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}")


def sms_subset(rows, seed=0):
    """A stratified sample of `rows` rows of SMS spam, written to a CSV under /tmp; returns its path."""
    import pandas as pd

    frame = pd.read_csv(SMS_CSV)
    subset = frame.groupby("label").sample(frac=rows / len(frame), random_state=seed)
    path = Path("/tmp") / f"tfxfer_bench_sms_{rows}.csv"
    subset.sample(frac=1.0, random_state=seed).to_csv(path, index=False)
    return path


def require_assets():
    if not HYMENOPTERA.is_dir():
        raise SystemExit(f"The benchmark needs the shared assets at {ASSETS} (set TFXFER_ASSETS).")


def tutorial_recipe(seed=0, epochs=10, fine_tune_epochs=10, fine_tune_at=100, verbose=0):
    """The TF transfer-learning tutorial, in plain Keras, on hymenoptera with the MobileNetV2 weights of the assets.

    MobileNetV2 frozen under augmentation (flip, rotation 0.2), global average pooling, dropout 0.2 and one logit;
    Adam 1e-4 for `epochs`; then the layers from `fine_tune_at` on unfrozen and RMSprop 1e-5 for
    `fine_tune_epochs` more (https://www.tensorflow.org/tutorials/images/transfer_learning).

    Returns:
        A dict: val accuracy after the frozen phase and after fine-tuning, and wall seconds of the whole run.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    load = dict(image_size=(224, 224), batch_size=32, seed=seed, label_mode="int")
    train = keras.utils.image_dataset_from_directory(HYMENOPTERA / "train", shuffle=True, **load)
    val = keras.utils.image_dataset_from_directory(HYMENOPTERA / "val", shuffle=False, **load)
    train, val = train.prefetch(tf.data.AUTOTUNE), val.prefetch(tf.data.AUTOTUNE)
    base = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False, weights=None)
    base.load_weights(KERAS_MOBILENET_V2)
    base.trainable = False
    augmentation = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.2)])
    inputs = keras.Input((224, 224, 3))
    x = keras.applications.mobilenet_v2.preprocess_input(augmentation(inputs))
    x = base(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1)(keras.layers.Dropout(0.2)(x))
    model = keras.Model(inputs, outputs)
    metric = keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss, metrics=[metric])
    frozen = model.fit(train, validation_data=val, epochs=epochs, verbose=verbose)
    base.trainable = True
    for layer in base.layers[:fine_tune_at]:
        layer.trainable = False
    model.compile(optimizer=keras.optimizers.RMSprop(1e-5), loss=loss, metrics=[metric])
    tuned = model.fit(train, validation_data=val, epochs=epochs + fine_tune_epochs, initial_epoch=len(frozen.epoch),
                      verbose=verbose)
    return {"val_accuracy_frozen": frozen.history["val_accuracy"][-1],
            "val_accuracy_fine_tuned": tuned.history["val_accuracy"][-1],
            "seconds": time.perf_counter() - started}
