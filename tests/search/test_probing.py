"""The probe of every block boundary: scores equal to scikit-learn's on the same pooled features, LogME equal to a
brute-force evidence maximisation, one pass over the data per extractor."""

import numpy as np
import pytest
from scipy import optimize
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import tfxfer
from helpers import noise_folders, tiny_cnn
from tfxfer.search.probing import logme, pooled_features


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = noise_folders(tmp_path_factory.mktemp("probe") / "images", per_class=8)
    return tfxfer.load_images(folder, image_size=(16, 16), value_range=(0, 1), batch_size=8, validation_split=0.25,
                              seed=3)


def test_scores_equal_scikit_learn_on_the_same_pooled_features(data, tiny_hub_model):
    keras_extractor, hub_extractor = tfxfer.load_extractor(tiny_cnn()), tfxfer.load_extractor(tiny_hub_model)
    table = tfxfer.probe(data, [keras_extractor, hub_extractor])
    assert set(table.extractor) == {keras_extractor.source, hub_extractor.source}
    assert sorted(table[table.extractor == keras_extractor.source].cut) == [1, 2, 3, 4]
    assert list(table.linear) == sorted(table.linear, reverse=True) and table.attrs["rank_by"] == "linear"
    features = pooled_features(keras_extractor, data)
    for cut, splits in features.items():
        (train_x, train_y), (val_x, val_y) = splits["train"], splits["validation"]
        row = table[(table.extractor == keras_extractor.source) & (table.cut == cut)].iloc[0]
        linear = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)).fit(train_x, train_y)
        assert row.linear == pytest.approx(linear.score(val_x, val_y))
        unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
        knn = KNeighborsClassifier(10).fit(unit(train_x), train_y)
        assert row.knn == pytest.approx(knn.score(unit(val_x), val_y))
        assert row.logme == pytest.approx(logme(train_x, train_y)) and row.dim == train_x.shape[1]
    # The activations pooled are the extractor's own at each cut (global average pooling of the feature map).
    inputs = np.stack([image.numpy() for image, _ in data.unbatched("train")])
    np.testing.assert_allclose(features[2]["train"][0], keras_extractor.prefix(2)(inputs).numpy().mean(axis=(1, 2)),
                               atol=1e-5)
    held_out = np.stack([image.numpy() for image, _ in data.unbatched("validation")])  # the splits, one pass
    np.testing.assert_allclose(features[2]["validation"][0],
                               keras_extractor.prefix(2)(held_out).numpy().mean(axis=(1, 2)), atol=1e-5)
    # The pass is traced once and kept for the extractor's next probe, which still reads its weights as they are now.
    run = keras_extractor.pooled_cut_outputs([1, 2, 3, 4], data.unbatched("train").batch(8).element_spec[0])
    assert run.experimental_get_tracing_count() == 1
    for weight in keras_extractor.weights:
        weight.assign(weight * 2.0)
    again = pooled_features(keras_extractor, data)
    assert run.experimental_get_tracing_count() == 1
    np.testing.assert_allclose(again[2]["train"][0], keras_extractor.prefix(2)(inputs).numpy().mean(axis=(1, 2)),
                               atol=1e-5)
    assert not np.allclose(again[2]["train"][0], features[2]["train"][0])
    with pytest.raises(ValueError, match="cannot be cut after 9 blocks"):
        pooled_features(keras_extractor, {}, cuts=[9])
    with pytest.raises(ValueError, match="a cut is a whole number of blocks; got '2'"):
        pooled_features(keras_extractor, {}, cuts=["2"])
    # Arrays as NumPy makes them (float64), beside a float32 split: one trace fits both (a tester's find).
    labels = again[2]["train"][1]
    arrays = pooled_features(keras_extractor, {"train": (inputs.astype("float64"), labels),
                                               "validation": (inputs[:3], labels[:3])}, cuts=[2])
    np.testing.assert_allclose(arrays[2]["train"][0], again[2]["train"][0], atol=1e-5)
    twice = pooled_features(keras_extractor, data, cuts=[2, 2])  # each cut once (twice stacked its rows)
    assert list(twice) == [2] and len(twice[2]["train"][0]) == len(twice[2]["train"][1])
    keras_extractor.release_models()  # a search's next trial (nothing marked: nothing to trim, a tester's find)
    assert keras_extractor.pooled_cut_outputs([1, 2, 3, 4], run.input_signature[0]) is not run


def _brute_force_evidence(features, y):
    """max over (alpha, beta) of log N(y; 0, I/beta + F F^T / alpha) / n, by a numerical optimiser."""
    n = len(y)

    def negative(log_precisions):
        alpha, beta = np.exp(log_precisions)
        covariance = np.eye(n) / beta + features @ features.T / alpha
        sign, logdet = np.linalg.slogdet(covariance)
        return 0.5 * (logdet + y @ np.linalg.solve(covariance, y) + n * np.log(2 * np.pi)) / n

    best = min((optimize.minimize(negative, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10,
                                                                                   "maxiter": 4000})
                for start in ([0.0, 0.0], [2.0, -2.0], [-2.0, 2.0])), key=lambda result: result.fun)
    return -best.fun


def test_logme_equals_a_brute_force_evidence_maximisation():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 5))
    labels = (features @ rng.normal(size=5) + 0.5 * rng.normal(size=40) > 0).astype(int)
    indicators = (labels[:, None] == np.array([0, 1])[None, :]).astype(float)
    expected = np.mean([_brute_force_evidence(features, indicators[:, j]) for j in range(2)])
    assert logme(features, labels) == pytest.approx(expected, abs=1e-4)
    targets = features[:, :2] @ np.array([[1.0, 0.5], [-0.3, 2.0]]) + 0.1 * rng.normal(size=(40, 2))
    expected = np.mean([_brute_force_evidence(features[:, :2], targets[:, j]) for j in range(2)])
    assert logme(features[:, :2], targets) == pytest.approx(expected, abs=1e-4)


def test_an_extractor_that_does_not_load_is_named(data, tmp_path):
    broken = tmp_path / "broken_hub"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    with pytest.raises(ValueError, match=f"extractor {broken}: "):
        tfxfer.probe(data, [tiny_cnn(), str(broken)])
    # One extractor twice printed its rows twice; two of one name with other options could not be told apart
    # (hostile testers' finds). Named alike, they are refused before anything loads (the broken one would fail).
    with pytest.raises(ValueError, match=f"extractors name '{broken}' twice; probe each extractor once"):
        tfxfer.probe(data, [str(broken), (str(broken), {})])
    table = tfxfer.probe(data, [(tiny_cnn(), {"train_batchnorm": True})])
    assert set(table.extractor) == {"tiny_cnn(train_batchnorm=True)"}
    # Two Keras models of one name are two models (other weights): probed, their rows told apart (a reviewer's find)
    table = tfxfer.probe(data, [tiny_cnn(seed=1), tiny_cnn(seed=2)])
    assert set(table.extractor) == {"tiny_cnn", "tiny_cnn #2"}
    # One source alone was read as a list of its characters ("extractors name 'e' twice"); none was a KeyError.
    with pytest.raises(ValueError, match=f"extractor {broken}: "):
        tfxfer.probe(data, str(broken))
    with pytest.raises(ValueError, match=r"probe needs at least one extractor in extractors=\[...\]"):
        tfxfer.probe(data, [])


def test_a_multilabel_split_without_a_labels_negatives_is_scored_on_the_others_and_plotted_as_asked(tmp_path):
    """A label that every validation example had made every multi-label score NaN, and --plot then crashed; and
    plots asked for as .svg were PNG bytes (a hostile tester's finds)."""
    import pandas as pd
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score, roc_auc_score

    from tfxfer.data import Task
    from tfxfer.search.probing import knn_score, linear_score

    rng = np.random.default_rng(0)
    task = Task("multilabel", ["a", "b"])
    train_y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 5, np.float32)
    train = (train_y * 2 + rng.normal(size=(20, 2)), train_y)
    val_y = np.array([[1, 1], [0, 1], [1, 1], [0, 1]], np.float32)  # every validation example has 'b'
    validation = (val_y * 2 + rng.normal(size=(4, 2)), val_y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(train[0], train_y[:, 0])
    assert linear_score(train, validation, task) == pytest.approx(
        roc_auc_score(val_y[:, 0], model.predict_proba(validation[0])[:, 1]))  # 'a' alone
    assert not np.isnan(knn_score(train, validation, task))
    assert np.isnan(linear_score(train, (validation[0], np.ones_like(val_y)), task))  # nothing to score
    # Regression: R² over the targets that vary in the split (a constant one scored 0, silently).
    task, targets = Task("regression", ["a", "b"]), np.stack([train_y[:, 0] * 3, rng.normal(size=20)], axis=1)
    held = np.stack([val_y[:, 0] * 3, np.full(4, 2.0)], axis=1)  # 'b' the same in every validation example
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(train[0], targets)
    assert linear_score((train[0], targets), (validation[0], held), task) == pytest.approx(
        r2_score(held[:, 0], ridge.predict(validation[0])[:, 0]))
    assert np.isnan(linear_score((train[0], targets), (validation[0], np.full((4, 2), 2.0)), task))
    table = pd.DataFrame({"extractor": ["x", "x", "y"], "cut": [1, 2, 1], "linear": [0.7, 0.9, np.nan]})
    figure = tfxfer.plot_probe(table, path=tmp_path / "probe.svg")
    assert (tmp_path / "probe.svg").read_text().lstrip().startswith("<?xml") and len(figure.axes) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["probe.svg"]  # no partial file left beside it
