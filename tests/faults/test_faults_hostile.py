"""Hostile archives and files: members that would leave the folder, decompression bombs (an archive, an image),
code hidden in a Keras config; and the package itself: no pickle of user data, no eval/exec on strings, Keras loading in safe mode.

test_extractors_hub.py covers the basic hostile members (`..`, absolute path, symlink and hardlink out, device) through
`load_extractor`; here are the ones it does not, each checked to write nothing anywhere.
"""

import ast
import io
import struct
import tarfile
from pathlib import Path

import keras
import pytest
import tensorflow as tf

import tfxfer
from helpers import tiny_cnn
from helpers import class_folders
from test_faults_corpus import jpeg_declaring, png_bomb
from tfxfer.data import DataError
from tfxfer.extractors import save_hub_format

PACKAGE = Path(tfxfer.__file__).resolve().parent


@pytest.fixture(scope="module")
def hub_model(tmp_path_factory):
    return save_hub_format(tiny_cnn(), tmp_path_factory.mktemp("hub") / "tiny_hub")


def _member(name, kind=tarfile.REGTYPE, linkname="", size=0):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, size
    return info


def _archive(path, hub_model, *members):
    """A TF Hub archive of the tiny model, then `members` (TarInfo, or (TarInfo, bytes))."""
    with tarfile.open(path, "w:gz") as tar:
        tar.add(hub_model, arcname=".")
        for member in members:
            info, data = member if isinstance(member, tuple) else (member, b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def _tree(folder):
    return sorted(str(path.relative_to(folder)) for path in Path(folder).rglob("*"))


HOSTILE = {
    "FIFO": (_member("pipe", tarfile.FIFOTYPE), "'pipe' is a device, FIFO or other special file"),
    "block device": (_member("disk", tarfile.BLKTYPE), "'disk' is a device, FIFO or other special file"),
    "climbs through a folder": (_member("variables/../../escape"), "'variables/../../escape' leaves the target"),
    "symlink climbing through a sibling": (_member("variables/up", tarfile.SYMTYPE, "../../outside"),
                                           "'variables/up' is a link to '../../outside', outside"),
    "symlink to an absolute path": (_member("passwd", tarfile.SYMTYPE, "/etc/passwd"),
                                    "'passwd' is a link to '/etc/passwd', outside"),
    "hardlink out": (_member("hard", tarfile.LNKTYPE, "../secret"), "'hard' is a link to '../secret', outside"),
    "Windows drive path": (_member("C:/Windows/evil.dll"), "'C:/Windows/evil.dll' has an absolute path"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_member_is_refused_by_name_and_nothing_is_written(hub_model, tmp_path, kind):
    member, message = HOSTILE[kind]
    archive = _archive(tmp_path / "model.tar.gz", hub_model, member)
    before = _tree(tmp_path)
    with pytest.raises(ValueError, match=rf"Refusing to extract .*model\.tar\.gz: member {message}"):
        tfxfer.extract_archive(archive, cache_dir=tmp_path / "cache")
    assert _tree(tmp_path) == before and not (tmp_path.parent / "outside").exists()


def test_decompression_bomb_is_refused_before_a_byte_is_written(hub_model, tmp_path):
    """64 MiB of zeros gzip to 64 KiB; with a 16 MiB limit the member is named and nothing is unpacked."""
    bomb = _member("variables/variables.data-00001-of-00002", size=64 * 1024**2)
    archive = _archive(tmp_path / "model.tar.gz", hub_model, (bomb, bytes(bomb.size)))
    assert archive.stat().st_size < 1024**2
    with pytest.raises(ValueError, match=r"member 'variables/variables\.data-00001-of-00002' takes the unpacked size "
                                         r"past the limit of 16777216 bytes"):
        tfxfer.extract_archive(archive, cache_dir=tmp_path / "cache", max_bytes=16 * 1024**2)
    assert not (tmp_path / "cache").exists()
    assert Path(tfxfer.extract_archive(archive, cache_dir=tmp_path / "cache", max_bytes=128 * 1024**2)).is_dir()


def test_a_cut_archive_leaves_no_partial_folder(hub_model, tmp_path):
    archive = _archive(tmp_path / "model.tar.gz", hub_model)
    archive.write_bytes(archive.read_bytes()[:archive.stat().st_size * 3 // 4])
    with pytest.raises(ValueError, match=r"model\.tar\.gz is cut short or damaged .*download it again"):
        tfxfer.extract_archive(archive, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or _tree(tmp_path / "cache") == []


@pytest.fixture(scope="module")
def exported(hub_model, tmp_path_factory):
    extractor = tfxfer.load_extractor(hub_model)
    inputs = keras.Input((*extractor.image_size, 3))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(extractor(inputs)))
    return tfxfer.export(model, "m", tmp_path_factory.mktemp("exports"), task_type="multiclass",
                         class_names=["a", "b"])


def webp_declaring(width, height):
    """A lossless WebP whose header declares `width` x `height` (a 38-byte file of 13500 x 13500 decoded, 1.4 GB)."""
    payload = b"\x2f" + struct.pack("<I", (width - 1) | (height - 1) << 14) + bytes(16)
    chunk = b"VP8L" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "WebP"])
def test_an_image_bomb_is_refused_unopened_in_training_data_and_by_a_served_model(exported, tmp_path, kind):
    """A PNG of 220 KB decodes to 675 MB (15000 x 15000 RGB); a JPEG header may declare 60000 x 60000; a WebP's
    13500 x 13500 (found by a hostile tester: WebP headers were not read, and it was decoded). None is decoded: the
    loader names the file, and the export's own graph (what TF Serving runs) refuses the request."""
    bomb = {"PNG": png_bomb, "JPEG": lambda: jpeg_declaring(60000, 60000),
            "WebP": lambda: webp_declaring(13500, 13500)}[kind]()
    class_folders(tmp_path / "pets", {"cat": 2, "dog": 2})
    (tmp_path / "pets" / "dog" / "bomb.img").write_bytes(bomb)
    (tmp_path / "pets" / "dog" / "bomb.img").rename(tmp_path / "pets" / "dog" / f"bomb.{kind.lower()}")
    with pytest.raises(DataError, match=rf"dog/bomb\.{kind.lower()}: not a decodable image \({kind} of \d+ x \d+ "
                                        r"pixels, more than MAX_IMAGE_PIXELS"):
        tfxfer.load_images(tmp_path / "pets", image_size=(8, 8), value_range=(0, 1), validation_split=0)
    served = tf.saved_model.load(str(exported)).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="larger than 178956970 pixels"):
        served(image_bytes=tf.constant([bomb]))
    with pytest.raises(ValueError, match=rf"bomb\.{kind.lower()}: {kind} of \d+ x \d+ pixels"):
        tfxfer.load_exported(exported).predict(tmp_path / "pets" / "dog" / f"bomb.{kind.lower()}")


def _lambda_model(canary):
    """A functional model with a Lambda that touches `canary` whenever its Python code runs (as rebuilding it would)."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="block_1_conv")(inputs)
    x = keras.layers.Lambda(lambda t, path=str(canary): (open(path, "a").close(), t)[1], name="block_2_hook")(x)
    x = keras.layers.Conv2D(2, 3, name="block_3_conv")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))


def test_keras_configs_load_in_safe_mode(tmp_path):
    canary = tmp_path / "code_ran"
    config = keras.saving.serialize_keras_object(_lambda_model(canary))
    canary.unlink()  # Building the model ran the Lambda once; from here on, nothing may.
    with pytest.raises(ValueError, match="safe_mode"):
        tfxfer.KerasExtractor(config)
    inputs = keras.Input((8, 8, 3))
    extractor = tfxfer.load_extractor(_lambda_model(canary))
    keras.Model(inputs, keras.layers.Dense(2)(extractor(inputs))).save(tmp_path / "model.keras")
    canary.unlink()
    with pytest.raises((TypeError, ValueError), match="safe_mode=False"):  # Keras wraps the Lambda's refusal
        keras.models.load_model(tmp_path / "model.keras")
    assert not canary.exists(), "loading a .keras file ran the Lambda's Python code"


#: Modules that turn bytes into arbitrary Python objects (and so run code chosen by whoever wrote the bytes).
_UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
_UNSAFE_BUILTINS = {"eval", "exec", "compile", "__import__"}


def _unsafe_uses(path):
    """`(line, what)` for each unsafe use in one module, found on its syntax tree (not fooled by comments)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[0] in _UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _UNSAFE_MODULES:
            found.append((node.lineno, f"from {node.module} import"))
        elif isinstance(node, ast.Call):
            function = node.func
            name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", "")
            if isinstance(function, ast.Name) and name in _UNSAFE_BUILTINS:
                found.append((node.lineno, f"{name}(...)"))
            for keyword in node.keywords:
                value = getattr(keyword.value, "value", None)
                if (keyword.arg, value) in (("allow_pickle", True), ("safe_mode", False)):
                    found.append((node.lineno, f"{name}({keyword.arg}={value})"))
            if name in ("enable_unsafe_deserialization", "load") and getattr(function, "value", None) is not None \
                    and getattr(function.value, "id", "") in ("yaml", "torch"):
                found.append((node.lineno, f"{function.value.id}.{name}(...)"))
            if name == "enable_unsafe_deserialization":
                found.append((node.lineno, "keras.config.enable_unsafe_deserialization()"))
    return found


def test_the_package_never_unpickles_evals_or_loads_unsafely():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20
    found = {str(path.relative_to(PACKAGE)): uses for path in modules if (uses := _unsafe_uses(path))}
    assert found == {}


def test_the_unsafe_use_scanner_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import pickle\nfrom marshal import loads\nimport numpy as np\n"
                      "x = eval('1 + 1')\n# eval(in a comment) is fine\nnp.load('f.npy', allow_pickle=True)\n"
                      "keras.models.load_model('m.keras', safe_mode=False)\nimport re\nre.compile('x')\n")
    assert [line for line, _ in _unsafe_uses(sample)] == [1, 2, 4, 6, 7]
