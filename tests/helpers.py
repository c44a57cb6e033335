"""What tests share besides fixtures: tiny models and data they build, one real optimizer step, free ports."""

import hashlib
import io
import json
import pathlib
import signal
import socket
import subprocess
import sys
import time
import zlib

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

#: The tests folder, for subprocess scripts that import this module.
TESTS = pathlib.Path(__file__).resolve().parent

# One flat colour per class, far apart, so a decoded image tells its class.
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]


def tiny_cnn(input_shape=(16, 16, 3), seed=0):
    """A small convolutional extractor with BatchNorm and a residual connection, in named stages."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = layers.Conv2D(4, 3, padding="same", name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    y = layers.Conv2D(4, 3, padding="same", name="block_1_conv")(x)
    y = layers.BatchNormalization(name="block_1_bn")(y)
    x = layers.Add(name="block_1_add")([x, y])
    x = layers.Conv2D(8, 3, strides=2, padding="same", name="block_2_conv")(x)
    x = layers.BatchNormalization(name="block_2_bn")(x)
    x = layers.Conv2D(8, 1, name="block_3_conv", kernel_regularizer=keras.regularizers.L2(1e-3))(x)
    x = layers.GlobalAveragePooling2D(name="top_pool")(x)
    return keras.Model(inputs, x, name="tiny_cnn")


def write_image(path, colour=(200, 30, 30), size=(12, 10), mode="RGB"):
    """Writes a flat-colour image, its last pixel marked by its path, so that no two files are the same image (the
    loaders keep copies of one image in one split); the format follows the suffix (`.png`, `.jpg`, `.gif`...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[0], size[1], 3), dtype=np.uint8) + np.asarray(colour, dtype=np.uint8)
    array[-1, -1] = np.frombuffer(zlib.crc32(str(path).encode()).to_bytes(4, "little")[:3], np.uint8)
    Image.fromarray(array).convert(mode).save(path)
    return path


def class_folders(root, counts, suffix=".png", size=(12, 10)):
    """Writes `root/<class>/<class>_<i><suffix>` for `counts = {class: n}`, class k in `COLOURS[k]`.

    Returns:
        The list of written paths.
    """
    paths = []
    for k, (name, count) in enumerate(counts.items()):
        for i in range(count):
            paths.append(write_image(root / name / f"{name}_{i:03d}{suffix}", COLOURS[k], size))
    return paths


def noise_folders(root, per_class=12, classes=("ants", "bees", "wasps"), seed=0):
    """Class folders of random-noise PNGs, each class with its own mean colour so that it can be learned."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(60 + 60 * index, 40, (20, 20, 3)), 0, 255).astype("uint8")
            tf.io.write_file(str(folder / f"{i}.png"), tf.io.encode_png(pixels))
    return root


def jpeg_bytes(size=(64, 64), seed=0):
    """A JPEG of noise (so that its entropy-coded data is long enough to cut)."""
    array = np.random.default_rng(seed).integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def free_port():
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def completed_trials(project):
    """`{trial id: modification time of its trial.json}` of the completed trials in a search's project folder.

    Keras Tuner rewrites trial.json in place, so a file read while it is being written (empty or cut short) is a
    trial still in progress."""
    done = {}
    for path in project.glob("trial_*/trial.json"):
        try:
            trial = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if trial["status"] == "COMPLETED":
            done[trial["trial_id"]] = path.stat().st_mtime_ns
    return done


def kill_after_trials(script, project, trials, timeout=240):
    """Runs a search script as a process, SIGKILLs it once `trials` trials have completed, and returns
    `completed_trials(project)` as the kill left them."""
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while len(completed_trials(project)) < trials and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return completed_trials(project)


def checksums(folder):
    """`{relative path: sha256}` of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(pathlib.Path(folder).rglob("*")) if p.is_file()}


def is_whole_version(folder):
    """Whether an export version folder holds a whole SavedModel and its metadata."""
    folder = pathlib.Path(folder)
    return all((folder / name).exists() for name in ("saved_model.pb", "fingerprint.pb", "variables/variables.index",
                                                      "assets.extra/tfxfer.json")) and any(
        (folder / "variables").glob("variables.data-*"))


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


def save_tiny_text_model(path):
    """A Reusable SavedModel taking strings: hashed word embeddings, summed and scaled by 1/sqrt(words)."""
    embeddings = tf.Variable(tf.random.stateless_normal([64, 8], seed=[0, 1]), name="embeddings")

    @tf.function
    def call(inputs, training=False):
        ids = tf.strings.to_hash_bucket_fast(tf.strings.split(tf.strings.lower(inputs)), 64)
        words = tf.cast(tf.maximum(ids.row_lengths(), 1), tf.float32)[:, None]
        return tf.reduce_sum(tf.gather(embeddings, ids), axis=1) / tf.sqrt(words)

    for training in (False, True):
        call.get_concrete_function(tf.TensorSpec([None], tf.string), training)
    root = tf.train.Checkpoint()
    root.__call__ = call
    root.variables = root.trainable_variables = [embeddings]
    root.regularization_losses = []
    tf.saved_model.save(root, str(path))
    return path


IN_ONE_PROCESS = """
import contextlib, io, json, sys
from tfxfer.cli import main
said = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()) as stdout, contextlib.redirect_stderr(io.StringIO()) as stderr:
        try:
            code = main(argv)
        except SystemExit as usage:  # argparse's own refusals
            code = usage.code
    said.append([code, stdout.getvalue(), stderr.getvalue()])
print(json.dumps([said, "tensorflow" in sys.modules]))
"""


def in_one_process(*argvs, env=None):
    """Runs command lines one after the other in one new process, as `tfxfer.cli.main(argv)` each: TensorFlow's
    import (about 6 s here) is paid once. Returns `(results, whether TensorFlow was imported)`, each result with
    `returncode`, `stdout` and `stderr`."""
    result = subprocess.run([sys.executable, "-c", IN_ONE_PROCESS, json.dumps([list(map(str, argv)) for argv in argvs])],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    said, tensorflow = json.loads(result.stdout.strip().splitlines()[-1])
    return [subprocess.CompletedProcess(argv, *outcome) for argv, outcome in zip(argvs, said)], tensorflow
