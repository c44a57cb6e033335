"""Each private name of Keras, TensorFlow and Keras Tuner that tfxfer relies on is still there and still works as
tfxfer uses it; where an upgrade removes one, the error names it and the versions tfxfer was tested with."""

import grpc
import keras
import keras_tuner as kt
import pytest
import tensorflow as tf
from concurrent import futures

from helpers import tiny_cnn
from tfxfer import _compat
from tfxfer.extractors.blocks import true_cuts


@pytest.fixture(scope="module")
def model():
    return tiny_cnn()


def test_graph_nodes_of_a_functional_model(model):
    layer = model.get_layer("block_2_conv")
    assert len(_compat.inbound_nodes(layer)) == 1 and len(_compat.outbound_nodes(layer)) == 1
    assert _compat.node_output(layer).shape == (None, 8, 8, 8)
    operations, cuts = true_cuts(model)
    assert len(cuts) >= 4 and operations[-1].name == "top_pool"


def test_the_part_of_a_graph_after_a_cut_runs_on_the_same_layers(model):
    cut = _compat.node_output(model.get_layer("block_2_bn"))
    inputs = keras.Input(cut.shape[1:])
    rest = keras.Model(inputs, _compat.run_graph_from(cut, model.outputs[0], inputs))
    assert [layer.name for layer in rest.layers[1:]] == ["block_3_conv", "top_pool"]
    assert rest.get_layer("block_3_conv") is model.get_layer("block_3_conv")


def test_learnable_variables_ignore_the_trainable_flag(model):
    batchnorm = model.get_layer("stem_bn")
    batchnorm.trainable = False
    try:
        assert [v.name for v in _compat.learnable_variables(batchnorm)] == ["gamma", "beta"]
    finally:
        batchnorm.trainable = True
    assert _compat.learnable_variables(keras.ops) == []


def test_a_variable_tracked_by_a_layer_is_one_of_its_weights():
    layer = keras.layers.Layer()
    variable = keras.Variable(tf.zeros([2]), name="restored")
    _compat.track_variable(layer, variable)
    assert layer.weights == [variable]


def test_sublayers_of_a_model(model):
    assert "block_3_conv" in [layer.name for layer in _compat.sublayers(model)]


def test_the_gradient_registry_holds_the_custom_gradients_of_traced_functions():
    @tf.custom_gradient
    def double(x):
        return 2 * x, lambda dy: 2 * dy

    before = {name for name in _compat.gradient_registry() if name.startswith("CustomGradient-")}
    tf.function(lambda x: double(x)).get_concrete_function(tf.TensorSpec([], tf.float32))
    after = {name for name in _compat.gradient_registry() if name.startswith("CustomGradient-")}
    assert after - before


def test_a_captured_handle_reads_the_variable_in_a_wrapped_function():
    variable = tf.Variable([1.0, 2.0])

    def read():
        return tf.raw_ops.ReadVariableOp(resource=_compat.capture(variable.handle), dtype=tf.float32)

    assert tf.compat.v1.wrap_function(read, []).__call__().numpy().tolist() == [1.0, 2.0]


def test_chief_and_worker_roles_follow_keras_tuners_variables(monkeypatch):
    assert not _compat.is_chief() and not _compat.is_worker()
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8470")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    assert _compat.is_chief() and not _compat.is_worker()
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    assert _compat.is_worker() and not _compat.is_chief()


def test_oracle_internals_and_its_service(tmp_path):
    assert issubclass(_compat.tuner_callback_class(), keras.callbacks.Callback)
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=1)
    oracle._set_project_dir(str(tmp_path), "p")
    assert _compat.retry_queue(oracle) == [] and _compat.project_dir(oracle).endswith("p")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    _compat.add_oracle_service(server, oracle)
    server.stop(0)


def test_keras_tuner_clears_no_notebook_cell_outside_one(capfd):
    """Before every trial but the first, `tfxfer tune` wrote IPython's escape codes to stdout, into pipes and log
    files (two hostile testers' find): Keras Tuner took a process that can import IPython for a notebook."""
    from keras_tuner.src import utils

    _compat.tuner_knows_a_notebook()
    utils.try_clear()
    assert utils.IS_NOTEBOOK is False and capfd.readouterr().out == "\n"


def test_a_missing_internal_names_itself_and_the_tested_versions():
    with pytest.raises(_compat.CompatError, match=r"needs object\._inbound_nodes, a private name of keras .*\(tested with keras 3\.15\)"):
        _compat.inbound_nodes(object())


def test_a_compiled_model_is_built_from_a_batch_spec_before_fit_traces_its_step(model):
    import numpy as np

    from tfxfer.training.inputs import batch_spec

    inputs = keras.Input((16, 16, 3))
    classifier = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(model(inputs)))
    classifier.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    assert not classifier.optimizer.built
    spec = batch_spec({"x": np.zeros((4, 16, 16, 3), "float32"), "y": np.zeros(4, "int64")})
    _compat.build_for_fit(classifier, spec)
    # Every variable the first traced step would otherwise make: Adam's moments, the metric's counters.
    assert classifier.optimizer.built and len(classifier.optimizer.variables) > len(classifier.trainable_variables)
    assert all(metric.variables for metric in classifier.metrics)
    _compat.build_for_fit(classifier, None)  # a spec Keras must find itself: nothing is done


def test_a_litert_file_reads_into_its_schema_objects():
    flatbuffer = tf.lite.TFLiteConverter.from_keras_model(
        keras.Sequential([keras.Input([3]), keras.layers.Dense(2)])).convert()
    model = _compat.litert_model_object(flatbuffer)
    assert len(model.subgraphs) == 1 and model.signatureDefs[0].signatureKey == b"serving_default"


def test_conditional_hyperparameters_serialise_without_printing(capsys):
    """Keras Tuner 1.4.8 printed a conditional hyperparameter's parent value each time it serialised one, as a
    distributed search does for every trial: bare numbers among the results (a hostile tester's find)."""
    hp = kt.HyperParameters()
    hp.Choice("frozen_blocks", [3, 4])
    with hp.conditional_scope("frozen_blocks", [3]):
        hp.Float("fine_tune_learning_rate", 1e-6, 1e-4)
    _compat.quiet_condition_protos()
    assert kt.HyperParameters.from_proto(hp.to_proto()).values == hp.values
    assert capsys.readouterr().out == ""


def test_the_trial_table_leaves_out_hidden_hyperparameters_and_ends_long_values_with_their_end(capsys):
    """The search's digest, a fixed value of every trial, was a row of hex in the table each trial began with, and a
    candidate of a search across extractors showed only the start of its path."""
    oracle = kt.oracles.RandomSearchOracle(objective=kt.Objective("val_accuracy", "max"), max_trials=1)
    hp = kt.HyperParameters()
    hp.Fixed("tfxfer_search", "1e2dbbf8d3af4ad7")
    hp.Choice("frozen_blocks", [3, 4])
    hp.Fixed("candidate", "/home/someone/models/mobilenet_v2_100_224@12")
    _compat.tidy_trial_table(oracle, ["tfxfer_search"])
    oracle._display.show_hyperparameter_table(kt.engine.trial.Trial(hp))
    table = capsys.readouterr().out
    assert "frozen_blocks" in table and "tfxfer_search" not in table and "1e2dbbf8" not in table
    assert "...t_v2_100_224@12|" in table and "/home/someone" not in table


def test_a_hyperband_tuner_builds_a_continued_trial_without_its_checkpoint(tmp_path):
    class Plain(kt.Hyperband):
        pass

    tuner = _compat.fresh_hyperband_rounds(Plain)(lambda hp: hp.Int("units", 1, 4), objective="val_loss",
                                                  max_epochs=3, directory=str(tmp_path), project_name="h")
    hp = kt.HyperParameters()
    hp.values.update({"units": 2, "tuner/trial_id": "0000"})  # no checkpoint of trial 0000 exists
    assert tuner._build_hypermodel(hp) == 2  # Keras Tuner's own would load trial 0000's checkpoint into it


def test_a_reloaded_tuner_prints_no_reloading_line(tmp_path, capsys):
    for _ in range(2):  # the second finds the first's state in its folder
        _compat.quiet_reload_line()
        kt.RandomSearch(lambda hp: hp.Int("units", 1, 4), objective="val_loss", max_trials=1,
                        directory=str(tmp_path), project_name="p").save()
    assert (tmp_path / "p" / "tuner0.json").is_file() and "Reloading" not in capsys.readouterr().out
