"""Plots and run reports: the right pictures at the right pixel size, from real fits, searches and exports."""

import os
import re
import struct
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

import tfxfer
from helpers import tiny_cnn
from helpers import noise_folders
from tfxfer import reports

pytestmark = pytest.mark.xdist_group("reports")  # one worker builds the module fixtures once

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) read from a PNG file's IHDR header."""
    header = open(path, "rb").read(24)
    assert header[:8] == PNG_SIGNATURE and header[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def expected_size(figure):
    width, height = figure.get_size_inches() * reports.plots.DPI
    return round(width), round(height)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = noise_folders(tmp_path_factory.mktemp("reports") / "images", per_class=10)
    (root / "ants" / "notes.txt").write_text("not an image")
    (root / "bees" / "broken.png").write_bytes(b"not a png at all")
    return root


@pytest.fixture(scope="module")
def data(folder):
    with pytest.warns(UserWarning, match="2 files or rows left out"):
        return tfxfer.load_images(folder, image_size=(16, 16), value_range=(0, 1), batch_size=8,
                                  validation_split=0.2, test_split=0.2, seed=3, on_bad="skip")


@pytest.fixture(scope="module")
def fine_tuned(data):
    return tfxfer.TransferModel(tiny_cnn(), regime="fine-tune", warmup_epochs=2, epochs=2, patience=None,
                                learning_rate=1e-2, fine_tune_learning_rate=1e-3, seed=0, verbose=0).fit(data)


@pytest.fixture(scope="module")
def search_table(data, tmp_path_factory):
    search = tfxfer.TransferSearch(tiny_cnn(), max_trials=3, epochs=1, patience=None, verbose=0,
                                   space=tfxfer.SearchSpace(frozen_blocks=[2, 4], warmup_epochs=1),
                                   directory=tmp_path_factory.mktemp("search"), project_name="noise")
    return search.search(data)


def vertical_lines(ax):
    return [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]


def test_history_plots_every_curve_and_marks_where_fine_tuning_began(fine_tuned, tmp_path):
    assert fine_tuned.fine_tune_epoch_ == 2
    path = tmp_path / "plots" / "history.png"
    figure = reports.plot_history(fine_tuned, path)
    assert isinstance(figure, Figure)
    assert png_size(path) == expected_size(figure) == (920, 380)
    loss, accuracy = figure.axes
    assert (loss.get_ylabel(), accuracy.get_ylabel()) == ("loss", "accuracy")
    for ax, name in ((loss, "loss"), (accuracy, "accuracy")):
        train, validation = ax.get_lines()[:2]
        np.testing.assert_allclose(train.get_ydata(), fine_tuned.history_[name])
        np.testing.assert_allclose(validation.get_ydata(), fine_tuned.history_[f"val_{name}"])
        (switch,) = vertical_lines(ax)
        assert switch.get_xdata()[0] == 2.5  # between warm-up epoch 2 and fine-tuning epoch 3
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == ["train", "validation", "fine-tuning from epoch 3 (learning rate 0.001)"]


def test_history_of_feature_extraction_has_no_switch(data):
    fitted = tfxfer.TransferModel(tiny_cnn(), epochs=2, patience=None, seed=0, verbose=0).fit(data)
    figure = reports.plot_history(fitted)
    assert all(not vertical_lines(ax) for ax in figure.axes)
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["train", "validation"]


def test_history_of_an_unfitted_model_is_refused():
    with pytest.raises(ValueError, match="call fit first"):
        reports.plot_history(tfxfer.TransferModel(tiny_cnn()))


def test_figures_show_inline_in_jupyter_without_pyplot(fine_tuned):
    data, _ = DisplayFormatter().format(reports.plot_history(fine_tuned))
    assert data["image/png"].startswith(PNG_SIGNATURE)


def test_plotting_leaves_the_matplotlib_backend_and_pyplot_alone():
    # A notebook's backend (here svg, chosen as a user would) must survive importing tfxfer and plotting. Keras
    # imports pyplot itself; what matters is that pyplot holds no figure of ours (nothing leaks, nothing shows twice).
    code = textwrap.dedent("""
        import matplotlib
        import pandas as pd
        from tfxfer import reports
        table = pd.DataFrame({"frozen_blocks": [1, 2], "learning_rate": [1e-3, 1e-2], "score": [0.5, 0.7]})
        reports.plot_search(table, "/dev/null")
        assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
        import matplotlib.pyplot
        assert matplotlib.pyplot.get_fignums() == []
    """)
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "MPLBACKEND": "svg"})


def test_search_plot_shows_every_scored_trial_on_a_log_colour_scale(search_table, tmp_path):
    path = tmp_path / "search.png"
    figure = reports.plot_search(search_table, path)
    assert png_size(path) == expected_size(figure) == (700, 440)
    ax = figure.axes[0]
    trials = [c for c in ax.collections if c.get_array() is not None]
    assert sum(len(c.get_offsets()) for c in trials) == len(search_table)
    assert all(isinstance(c.norm, LogNorm) for c in trials)
    plotted = np.sort(np.concatenate([c.get_array() for c in trials]))
    np.testing.assert_allclose(plotted, np.sort(search_table.learning_rate))
    assert ax.get_ylabel() == "val_accuracy"
    assert f"best val_accuracy {search_table.score[0]:.4g}" in ax.get_title()


def test_search_plot_counts_trials_without_a_score(search_table):
    running = search_table.iloc[:1].assign(status="RUNNING", score=np.nan)
    figure = reports.plot_search(pd.concat([search_table, running], ignore_index=True))
    assert "1 without a score" in figure.axes[0].get_title()
    with pytest.raises(ValueError, match="no trial has a score yet"):
        reports.plot_search(running)
    with pytest.raises(ValueError, match=r"missing \['score'\]"):
        reports.plot_search(search_table.drop(columns="score"))


def test_confusion_matrix_counts_the_predictions(fine_tuned, data, tmp_path):
    path = tmp_path / "confusion.png"
    figure = reports.plot_confusion(fine_tuned, data, "test", path)
    assert png_size(path) == expected_size(figure)
    predicted = fine_tuned.predict(data.unbatched("test").batch(8)).argmax(axis=1)
    truth = data.examples("test")[1]
    expected = pd.crosstab(truth, predicted).reindex(index=range(3), columns=range(3), fill_value=0).to_numpy()
    ax = figure.axes[0]
    shown = np.array([int(text.get_text()) for text in ax.texts]).reshape(3, 3)
    np.testing.assert_array_equal(shown, expected)
    assert [label.get_text() for label in ax.get_yticklabels()] == ["ants", "bees", "wasps"]
    assert f"accuracy {(predicted == truth).mean():.3f} ({len(truth)} examples)" in ax.get_title()


def test_a_model_that_answers_one_class_is_named(data):
    """A skewed set's model that always answered 'ham' scored 0.947 and `tfxfer train` said nothing (a hostile
    tester's find)."""
    from tfxfer.reports.evaluation import one_class_note

    fitted = tfxfer.TransferModel(tfxfer.load_extractor(tiny_cnn(seed=3)), epochs=1, verbose=0).fit(data)
    output = fitted.model_.get_layer("head").get_layer("output")
    output.set_weights([np.zeros_like(output.get_weights()[0]), np.array([0.0, 3.0, 0.0], "float32")])
    share = np.mean(data.examples("validation")[1] == 1)
    assert one_class_note(fitted, data) == (
        f"the model predicts 'bees' for every validation example ({share:.0%} of them are 'bees'): it has learned the "
        "commonest class only; train longer (epochs=), at another learning_rate=, or with more examples of the other "
        "classes.")
    assert one_class_note(fitted, data, accuracy=share) is not None
    assert one_class_note(fitted, data, accuracy=share + 0.6 / data.sizes["validation"]) is None  # no pass: not one
    output.set_weights([np.eye(*output.get_weights()[0].shape, dtype="float32"), np.zeros(3, "float32")])
    predicted = fitted.predict(data.unbatched("validation").batch(8)).argmax(axis=1)
    assert (one_class_note(fitted, data) is None) == (len(set(predicted)) > 1)


def test_confusion_decodes_the_data_as_the_model_takes_it(fine_tuned, data):
    """Data loaded in [0, 255] for a model that takes [0, 1]: the matrix counted the predictions on pixels 255 times
    too bright (found by a notebook-style tester; the report showed loss 1.10 where it was 7.38)."""
    bright = data.for_extractor(SimpleNamespace(input_kind="image", image_size=(16, 16), value_range=(0.0, 255.0)))
    shown = [[text.get_text() for text in reports.plot_confusion(fine_tuned, loaded, "test").axes[0].texts]
             for loaded in (data, bright)]
    assert shown[0] == shown[1]


def test_confusion_takes_arrays_and_names_empty_splits(fine_tuned, data, tmp_path):
    images = np.stack([image.numpy() for image, _ in data.unbatched("validation")])
    labels = data.examples("validation")[1]
    figure = reports.plot_confusion(fine_tuned, (images, labels), "validation")
    assert sum(int(text.get_text()) for text in figure.axes[0].texts) == len(labels)
    without_test = tfxfer.load_images(noise_folders(tmp_path / "images", per_class=4), image_size=(16, 16),
                                      value_range=(0, 1), batch_size=8, seed=3)
    with pytest.raises(ValueError, match=r"The test split is empty; pass split= one of \['train', 'validation'\]"):
        reports.plot_confusion(fine_tuned, without_test, "test")
    with pytest.raises(TypeError, match="DataSplits"):
        reports.plot_confusion(fine_tuned, images, "test")


def table_of(folder, label):
    """A DataFrame of the noise images, labelled by `label(class name, index within the class)`."""
    rows = [{"path": str(path), "label": label(path.parent.name, int(path.stem))}
            for path in sorted(folder.glob("*/*.png")) if path.stem.isdigit()]
    return pd.DataFrame(rows)


def test_multilabel_runs_get_per_label_scores(folder, tmp_path):
    names = {"ants": "dark", "bees": "dark|light", "wasps": "light"}
    data = tfxfer.load_images(table_of(folder, lambda name, _: names[name]), task="multilabel", image_size=(16, 16),
                              value_range=(0, 1), batch_size=8, validation_split=0.25, seed=3)
    fitted = tfxfer.TransferModel(tiny_cnn(), epochs=2, patience=None, seed=0, verbose=0).fit(data)
    path = tmp_path / "labels.png"
    figure = reports.plot_confusion(fitted, data, path=path)
    assert png_size(path) == expected_size(figure)
    ax = figure.axes[0]
    assert len(ax.patches) == 3 * 2  # precision, recall and F1 for each label
    assert all(0.0 <= bar.get_width() <= 1.0 for bar in ax.patches)
    truth = data.examples("validation")[1].sum(axis=0).astype(int)
    assert [label.get_text() for label in ax.get_yticklabels()] == [f"dark ({truth[0]})", f"light ({truth[1]})"]


def test_regression_runs_get_predicted_against_true(folder, tmp_path):
    data = tfxfer.load_images(table_of(folder, lambda name, index: ["ants", "bees", "wasps"].index(name) + index / 10),
                              task="regression", image_size=(16, 16), value_range=(0, 1), batch_size=8,
                              validation_split=0.25, seed=3)
    fitted = tfxfer.TransferModel(tiny_cnn(), epochs=2, patience=None, seed=0, verbose=0).fit(data)
    path = tmp_path / "regression.png"
    figure = reports.plot_confusion(fitted, data, path=path)
    assert png_size(path) == expected_size(figure)
    ax = figure.axes[0]
    points = next(c for c in ax.collections if len(c.get_offsets()) == data.sizes["validation"])
    np.testing.assert_allclose(points.get_offsets()[:, 0], data.examples("validation")[1].ravel(), rtol=1e-6)
    np.testing.assert_allclose(points.get_offsets()[:, 1],
                               fitted.predict(data.unbatched("validation").batch(8)).ravel(), rtol=1e-5)
    assert re.search(r"MAE [0-9.]+, R² -?[0-9.]+", ax.get_title())


def test_report_covers_data_blocks_regime_metrics_plots_and_serving(fine_tuned, data, search_table, tmp_path):
    export_path = tfxfer.export(fine_tuned, "noise", root=tmp_path / "saved_models", data_summary=data)
    probed = tfxfer.probe(data, [fine_tuned.extractor_], scores=("linear",))
    path = reports.write_report(fine_tuned, data, tmp_path / "run", export_path=export_path,
                                search_table=search_table, probe_table=probed)
    assert path == tmp_path / "run" / "report.md"
    text = path.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == ["Data", "Extractor and blocks", "Regime", "Metrics", "Plots", "Probe", "Search",
                        "Export and serving"]
    # Every picture the report links is a PNG beside it, at its figure's size.
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert sorted(links) == ["confusion.png", "history.png", "probe.png", "search.png"]
    for link in links:
        assert png_size(path.parent / link)[0] > 300
    # Counts per class and split, and each skipped file with its reason.
    counts = {split: data.counts[split]["bees"] for split in ("train", "validation", "test")}
    assert f"| bees | {counts['train']} | {counts['validation']} | {counts['test']} |" in text
    assert re.search(r"`[^`]*notes\.txt`: unsupported extension", text)
    assert re.search(r"`[^`]*broken\.png`: not a decodable image", text)
    # One row per block, the regime's phases, and metrics of the model as returned.
    assert len(re.findall(r"^\| \d+ \| (stem|block_\d|top)", text, flags=re.M)) == fine_tuned.extractor_.n_blocks
    assert "| fine-tuning began at epoch | 3 |" in text
    # The head as given and as built: an image extractor's "auto" head is linear, without BatchNorm.
    assert re.search(r"^\| head \| Head\(hidden_units='auto'.*\(default\): hidden layers none, BatchNorm off \|$",
                     text, flags=re.M)
    # The probe's cuts, best first.
    best = probed.iloc[0]
    assert f"| {best.extractor} | {best.cut} | {best.block} | {best.dim} | {best.linear:.4g} |" in text
    test_accuracy = fine_tuned.evaluate(data.unbatched("test").batch(8))["accuracy"]
    assert re.search(rf"^\| test \| {data.sizes['test']} \| {test_accuracy:.4g} \|", text, flags=re.M)
    # How to serve the export: TF Serving's docker image and a REST call sending the image as b64.
    model_folder = export_path.parent.resolve()
    assert f"source={model_folder},target=/models/noise -e MODEL_NAME=noise -t tensorflow/serving" in text
    assert '{"instances": [{"b64": ' in text and "http://localhost:8501/v1/models/noise:predict" in text
    assert f"saved_model_cli show --dir {export_path} --tag_set serve --signature_def serving_default" in text


def test_report_says_what_a_flip_averaged_or_litert_export_serves(fine_tuned, data, tmp_path):
    """The report of a `--tta` export said nothing of the flip averaging, and that of a LiteRT export told how to
    serve a SavedModel with TF Serving (a review's finds)."""
    flipped = tfxfer.export(fine_tuned, "flipped", root=tmp_path / "exports", data_summary=data,
                            test_time_augmentation=True)
    text = reports.write_report(fine_tuned, data, tmp_path / "tta", export_path=flipped).read_text()
    served = fine_tuned.evaluate(data.unbatched("validation").batch(data.batch_size), test_time_augmentation=True)
    assert re.search(rf"^\| validation, flip-averaged \| {data.sizes['validation']} \| {served['accuracy']:.4g} \|",
                     text, flags=re.M), text
    assert "\n- Its outputs are the mean of each image's and its mirror image's (test-time augmentation): the " \
        "flip-averaged metrics above.\n" in text, text
    lite = tfxfer.export(fine_tuned, "lite", root=tmp_path / "exports", data_summary=data, format="litert")
    text = reports.write_report(fine_tuned, data, tmp_path / "lite", export_path=lite).read_text()
    assert "## Export and serving" not in text and "tensorflow/serving" not in text and "flip-averaged" not in text
    assert f"Exported to `{lite / 'model.tflite'}` (LiteRT, float32, not quantized; " in text and "; verified on " \
        in text and "The metrics above are the Keras model's; the verification compares the file with it." in text
    assert f"tfxfer predict {lite / 'model.tflite'} photo.jpg" in text


def test_report_without_export_or_search_and_of_arrays(fine_tuned, data, tmp_path):
    text = reports.write_report(fine_tuned, data, tmp_path).read_text()
    assert "## Search" not in text and "## Export" not in text
    with pytest.raises(TypeError, match="write_report needs the DataSplits"):
        reports.write_report(fine_tuned, (np.zeros((1, 16, 16, 3)), np.zeros(1)), tmp_path)
    # A second report into the same folder replaced the first, and a user's report.md, silently (a tester's find).
    (tmp_path / "report.md").write_text("my notes")
    with pytest.raises(FileExistsError, match=r"already holds a report \(confusion.png, history.png, report.md\): "
                                              "write this one to another folder, or pass overwrite=True"):
        reports.write_report(fine_tuned, data, tmp_path)
    assert (tmp_path / "report.md").read_text() == "my notes"
    assert reports.write_report(fine_tuned, data, tmp_path, overwrite=True).read_text().startswith("# ")
    # Data of other classes made a report of "2 classes" beside a 3-class model, and the same in an export's data
    # summary; an unfitted model, an AttributeError (a tester's finds).
    two = tfxfer.load_images(noise_folders(tmp_path / "two", per_class=4, classes=("ants", "bees")),
                             image_size=(16, 16), value_range=(0, 1), validation_split=0.25)
    message = r"the data pose multiclass of \['ants', 'bees'\], but the model was trained for multiclass of \['ants', "
    for call in (lambda: reports.write_report(fine_tuned, two, tmp_path / "other"),
                 lambda: tfxfer.plot_confusion(fine_tuned, two),
                 lambda: tfxfer.export(fine_tuned, "m", root=tmp_path / "exports", data_summary=two)):
        with pytest.raises(ValueError, match=message):
            call()
    assert not (tmp_path / "other").exists() and not (tmp_path / "exports").exists()
    with pytest.raises(RuntimeError, match=r"not fitted: call fit\(data\) first"):
        reports.write_report(tfxfer.TransferModel(tiny_cnn()), data, tmp_path / "unfitted")


def test_markdown_table_escapes_cells():
    table = pd.DataFrame({"name": ["a|b", None], "value": [0.123456, float("nan")]})
    assert reports.markdown_table(table).splitlines() == ["| name | value |", "|---|---|", "| a\\|b | 0.1235 |",
                                                          "|  |  |"]
