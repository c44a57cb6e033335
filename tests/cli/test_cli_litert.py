"""`tfxfer distill` and `--format litert` exports, and `tfxfer predict` on the .tflite file, as real subprocesses on
tiny data."""

import json
import os

import pytest

import tfxfer as library
from helpers import noise_folders, save_tiny_text_model
from test_cli import records, refused_before_tensorflow, tfxfer


@pytest.mark.slow
def test_distill_exports_an_int8_tflite_student_that_predict_runs(tiny_hub_model, tmp_path):
    images = noise_folders(tmp_path / "images", per_class=6)
    data = library.load_images(images, extractor=library.load_extractor(tiny_hub_model), seed=0)
    fitted = library.TransferModel(tiny_hub_model, epochs=1, patience=None, verbose=0).fit(data)
    teacher = library.export(fitted, "teacher", root=tmp_path / "exports")  # what `tfxfer train --export` writes
    # As a user runs it: without TF_CPP_MIN_LOG_LEVEL, the converter logs every step it takes.
    user = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    unlabelled = noise_folders(tmp_path / "unlabelled", per_class=1, seed=9)
    (unlabelled / "notes.jpg").write_text("not an image")
    result = tfxfer("distill", images, "--teacher", teacher, "--extractor", tiny_hub_model, "--epochs", "2",
                    "--temperature", "3", "--export", "student", "--root", tmp_path / "lite", "--format", "litert",
                    "--quantize", "int8", "--calibration-size", "8", "--unlabeled", unlabelled, "--on-bad", "skip",
                    env=user)
    assert result.returncode == 0, result.stderr[-3000:]
    # Nothing on stderr but the unlabelled image left out, named (it printed a count alone: a hostile tester's find).
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "1 unlabelled image(s) left out or not read:" and len(lines) == 2, result.stderr[-3000:]
    assert lines[1].startswith(f"  {unlabelled / 'notes.jpg'}: not a decodable image"), lines
    assert "model.tflite" in result.stdout and "verified on" in result.stdout and "top-1 agreement" in result.stdout
    version = tmp_path / "lite" / "student" / "1"
    metadata = json.loads((version / "assets.extra" / "tfxfer.json").read_text())
    assert metadata["litert"]["quantize"] == "int8" and metadata["litert"]["calibration"]["examples"] == 8
    picture = sorted((images / "bees").iterdir())[0]
    rows = records(tfxfer("predict", version / "model.tflite", picture, "--json"))
    assert len(rows) == 1 and rows[0]["class"] in {"ants", "bees", "wasps"} and 0 <= rows[0]["score"] <= 1
    # The student exported under the teacher's name would be served as the teacher's next version.
    result = tfxfer("distill", images, "--teacher", teacher, "--extractor", tiny_hub_model, "--export", "teacher",
                    "--root", tmp_path / "exports")
    assert result.returncode != 0 and "is the teacher's model folder" in result.stderr, result.stderr[-3000:]
    assert sorted(os.listdir(os.path.dirname(teacher))) == ["1"]


def test_litert_flags_without_the_format_are_usage_errors(tiny_hub_model, tmp_path):
    """Each is refused before TensorFlow loads (--output-type, --format tflite and a LiteRT teacher took its 6 s)."""
    # A name whose versions are SavedModels is refused before the training, not after it.
    (tmp_path / "exports" / "served" / "1").mkdir(parents=True)
    (tmp_path / "exports" / "served" / "1" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "data").mkdir()
    (tmp_path / "exports" / "lite" / "1").mkdir(parents=True)
    (tmp_path / "exports" / "lite" / "1" / "model.tflite").write_bytes(b"")
    hub, data, exports = tiny_hub_model, tmp_path / "data", tmp_path / "exports"
    refused_before_tensorflow([
        (["train", tmp_path, "--extractor", hub, "--export", "x", "--quantize", "int8"], 2,
         "--quantize applies to LiteRT exports: pass --format litert with it"),
        (["distill", tmp_path, "--teacher", tmp_path, "--extractor", hub, "--teacher-weight", "2"], 2,
         "expected a number from 0 to 1"),
        (["train", data, "--extractor", hub, "--export", "served", "--root", exports, "--format", "litert"], 2,
         "--export served:", "holds savedmodel exports"),
        # `--format tflite`, the alias the README gives, was refused beside litert versions: "holds litert exports".
        (["train", tmp_path / "nowhere", "--extractor", hub, "--export", "lite", "--root", exports, "--format",
          "tflite"], 1, "nowhere' does not exist"),
        # Export flags without --export trained and were ignored; --output-type uint8 without int8 failed after
        # training.
        (["train", data, "--extractor", hub, "--format", "litert", "--quantize", "int8"], 2,
         "--format litert and --quantize apply to an export: pass --export NAME, or leave them out"),
        (["train", data, "--extractor", hub, "--root", tmp_path / "r"], 2,
         "--root applies to an export: pass --export NAME, or leave it out"),
        (["train", data, "--extractor", hub, "--export", "y", "--format", "litert", "--output-type", "uint8"], 2,
         "--output-type uint8 is for full-integer exports; pass --quantize int8 with it"),
        (["distill", data, "--teacher", exports / "lite", "--extractor", hub], 2,
         "lite is a LiteRT export; the teacher runs as a SavedModel"),
        # Given as its saved_model.pb, the teacher's name took the student as its next version (a tester's find).
        (["distill", data, "--teacher", exports / "served" / "1" / "saved_model.pb", "--extractor", hub, "--export",
          "served", "--root", exports], 2, "is the teacher's model folder"),
        # Ignored, silently, where nothing calibrates (a tester's find).
        (["train", data, "--extractor", hub, "--export", "y", "--format", "litert", "--quantize", "float16",
          "--calibration-size", "5"], 2, "--calibration-size applies to --quantize int8, which calibrates on "
         "examples; leave it out with --quantize float16"),
        # It said "is not an export: it holds neither saved_model.pb nor version folders", after TensorFlow loaded.
        (["predict", tmp_path / "nowhere", data], 1, "the export", "nowhere does not exist")])


def test_a_text_model_litert_cannot_hold_is_refused_before_any_training(tmp_path):
    """It failed only after training, in the converter's words and log lines (a hostile tester's find)."""
    texts = tmp_path / "texts.csv"
    texts.write_text("text,label\n" + "".join(f"bees make honey {i},bees\nants dig {i},ants\n" for i in range(6)))
    user = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = tfxfer("train", texts, "--extractor", save_tiny_text_model(tmp_path / "text_model"), "--export", "t",
                    "--root", tmp_path / "lite", "--format", "litert", env=user)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    assert result.stderr.strip().splitlines() == [
        "tfxfer train: error: LiteRT's built-in ops cannot express tf.DenseBincount, tf.StringLower, tf.StringSplitV2, "
        "tf.StringToHashBucketFast (used by the model); pass "
        "--select-tf-ops to include them as TensorFlow ops (the app then needs LiteRT's Flex delegate), or export a "
        "SavedModel."], result.stderr[-3000:]
    assert not (tmp_path / "lite").exists()
    # int8 calibrates in the interpreter, which has no string ops: it failed after training, in TFLite's words.
    result = tfxfer("train", texts, "--extractor", tmp_path / "text_model", "--export", "t", "--root",
                    tmp_path / "lite", "--format", "litert", "--select-tf-ops", "--quantize", "int8", env=user)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        "tfxfer train: error: --quantize int8 calibrates in LiteRT's interpreter, which cannot run the string ops of "
        "a text model"), result.stderr[-3000:]
    assert not (tmp_path / "lite").exists()
    # With --select-tf-ops it exports; --quiet hid that the file could not be verified, and the converter's list of
    # select ops filled stderr (a hostile tester's finds).
    result = tfxfer("train", texts, "--extractor", tmp_path / "text_model", "--export", "t", "--root",
                    tmp_path / "lite", "--format", "litert", "--select-tf-ops", "--epochs", "1", "--quiet", env=user)
    assert result.returncode == 0 and result.stdout.strip() == str(tmp_path / "lite" / "t" / "1"), result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    (line,) = lines
    assert line.startswith(f"{tmp_path / 'lite' / 't' / '1'}/model.tflite: ") and "; not verified: the file holds " \
        "select TF ops" in line, result.stderr


def test_distill_refuses_a_text_teacher_before_anything_loads(tiny_hub_model, tmp_path):
    """It asked for --select-tf-ops first, then refused the teacher in Python's words (a hostile tester's find)."""
    texts = tmp_path / "texts.csv"
    texts.write_text("text,label\n" + "".join(f"bees make honey {i},bees\nants dig {i},ants\n" for i in range(6)))
    model = save_tiny_text_model(tmp_path / "text_model")
    data = library.load_text(texts, extractor=library.load_extractor(model), validation_split=0)
    fitted = library.TransferModel(model, epochs=1, patience=None, verbose=0).fit(data)
    teacher = library.export(fitted, "teacher", root=tmp_path / "exports")
    refused_before_tensorflow([
        (["distill", texts, "--teacher", teacher.parent, "--extractor", tiny_hub_model, "--export", "s", "--root",
          tmp_path / "lite", "--format", "litert"], 2,
         f"--teacher {teacher.parent} is the export of a text model; tfxfer distill teaches image students: pass the "
         "export of an image model")])
