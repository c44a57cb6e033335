"""Every private name of Keras, TensorFlow, Keras Tuner and ai-edge-litert that tfxfer uses, in one place.

The rest of tfxfer calls these functions and never touches a private name itself, so an upgrade that removes one
breaks here, with a message that names the internal, the version in use and the versions tfxfer was tested with
(`tests/test_compat.py` calls each one). The upper bounds in `setup.cfg` keep an untested major version away.

| internal | why tfxfer needs it |
|---|---|
| `Operation._inbound_nodes`, `_outbound_nodes` | walk a functional graph to find true cuts; forget a search's models |
| `keras.src.ops.function.Function._run_through_graph` | rebuild the part of a model after a cut, over its layers |
| `Layer._trainable_variables`, `Layer._layers` | a layer's learnable variables whatever its `trainable` flag |
| `Layer._track_variable` | make a restored SavedModel's variables a Keras layer's weights |
| `Layer._flatten_layers` | find the regularizers of a model written in TF Hub's format |
| `ops._gradient_registry` | forget the gradient functions a released trial's train steps registered |
| `FuncGraph.capture` | bind a TF Hub graph, cut at a block boundary, to the restored variables |
| `keras_tuner.src.distribute.utils` | whether this process is the chief or a worker of a distributed search |
| `keras_tuner.src.engine.tuner_utils.TunerCallback` | find the trial a callback reports to |
| `keras_tuner.src.protos`, `OracleServicer` | answer late workers on a restarted chief of an ended search |
| `Oracle._retry_queue`, `Oracle._project_dir` | give a trial to another worker; its files |
| `keras_tuner.src.engine.base_tuner`, `conditions` | drop the stray prints of Keras Tuner 1.4.8 |
| `Tuner._build_hypermodel` | train a trial that a later Hyperband round continues afresh |
| `Oracle._display`, `Display.col_width` | count a resumed search's time; tidy the trial table |
| `keras_tuner.src.utils.IS_NOTEBOOK` | keep Keras Tuner from clearing "a notebook cell" with escape codes on stdout |
| `Trainer._symbolic_build` | build a compiled model's metrics, loss and optimizer before its first traced step |
| `ai_edge_litert.tools.flatbuffer_utils` | read a LiteRT file into its schema's objects, to write it again smaller |
"""

import builtins
import datetime
import importlib
import types

import keras
import keras_tuner

#: The versions every internal here was tested with.
TESTED = {"keras": "3.15", "keras-tuner": "1.4.8", "tensorflow": "2.21", "ai-edge-litert": "2.3"}


class CompatError(ImportError):
    """A private name that tfxfer relies on is missing from the installed Keras, TensorFlow, Keras Tuner or
    ai-edge-litert."""


def _missing(what, package, version):
    return CompatError(
        f"tfxfer needs {what}, a private name of {package} that the installed {package} {version} lacks (tested with "
        f"{package} {TESTED[package]}). Install a tested version (pip install '{package}=={TESTED[package]}.*' or as "
        "setup.cfg bounds it), or report it to tfxfer."
    )


def _attribute(obj, name, package, version):
    try:
        return getattr(obj, name)
    except AttributeError:
        raise _missing(f"{type(obj).__name__}.{name}", package, version) from None


def _module(path, package, version):
    try:
        return importlib.import_module(path)
    except ImportError:
        raise _missing(f"the module {path}", package, version) from None


def _keras(obj, name):
    return _attribute(obj, name, "keras", keras.__version__)


def _tuner(obj, name):
    return _attribute(obj, name, "keras-tuner", keras_tuner.__version__)


# Keras graphs and layers.

def inbound_nodes(operation):
    """The graph nodes where a Keras operation was called (its outputs in each functional model)."""
    return _keras(operation, "_inbound_nodes")


def outbound_nodes(operation):
    """The graph nodes that consume a Keras operation's outputs."""
    return _keras(operation, "_outbound_nodes")


def node_output(operation, index=0):
    """The first output tensor of an operation's `index`-th call."""
    return inbound_nodes(operation)[index].output_tensors[0]


def build_for_fit(model, batch_spec):
    """Builds a compiled model's metric, loss and optimizer variables from `batch_spec` (`(inputs, labels)` tensor
    specs of a training batch) before `fit` traces its train step; nothing where the spec is None.

    Without a distribution strategy, Keras makes them inside the first traced step, and a `tf.function` that creates
    variables is traced twice: seconds each for a MobileNetV2. A model Keras cannot build from specs alone is left
    to build in its first step, as before.
    """
    if batch_spec is not None:
        build = _keras(model, "_symbolic_build")
        try:
            build(data_batch=batch_spec)
        except (ValueError, TypeError, RuntimeError):
            pass  # only the saving is lost: fit builds what is left in its first traced step


def run_graph_from(inputs, outputs, new_inputs):
    """Runs the part of a functional graph from the tensor `inputs` to `outputs` on `new_inputs`, reusing its layers.

    Calling the original layers on a new input builds a graph over shared layers, so the result shares their weights.
    """
    function = _module("keras.src.ops.function", "keras", keras.__version__).Function
    graph = function(inputs=inputs, outputs=outputs)
    return _keras(graph, "_run_through_graph")(new_inputs, operation_fn=lambda op: op)


def learnable_variables(operation):
    """Variables a layer trains when it is trainable, whatever its flag is now (BatchNorm statistics excluded).

    Operations that are not layers (`keras.ops` calls in a functional graph) have none.
    """
    if not isinstance(operation, keras.layers.Layer):
        return []
    variables = list(_keras(operation, "_trainable_variables"))
    for sublayer in _keras(operation, "_layers"):
        variables.extend(learnable_variables(sublayer))
    return variables


def track_variable(layer, variable):
    """Makes `variable` one of `layer`'s weights (in `layer.weights`, optimizers, checkpoints)."""
    _keras(layer, "_track_variable")(variable)


def sublayers(model):
    """Every layer inside `model`, recursively, without the model itself."""
    return list(_keras(model, "_flatten_layers")(include_self=False))


# TensorFlow.

def gradient_registry():
    """TensorFlow's global table of gradient functions by op type name."""
    import tensorflow as tf
    from tensorflow.python.framework import ops

    registry = _attribute(ops, "_gradient_registry", "tensorflow", tf.__version__)
    return _attribute(registry, "_registry", "tensorflow", tf.__version__)


def capture(tensor):
    """`tensor` (an eager resource handle) captured into the function graph being built, as a placeholder input.

    A plain `tf.identity` captures it too, but a nested call of the function then runs about twice as slowly
    (the identity on the handle keeps TensorFlow from inlining the variable reads).
    """
    import tensorflow as tf

    graph = tf.compat.v1.get_default_graph()
    return _attribute(graph, "capture", "tensorflow", tf.__version__)(tensor)


# Keras Tuner.

def _distribute_utils():
    return _module("keras_tuner.src.distribute.utils", "keras-tuner", keras_tuner.__version__)


def is_chief():
    """Whether this process is the chief of a distributed search (`KERASTUNER_TUNER_ID=chief`)."""
    return _distribute_utils().is_chief_oracle()


def is_worker():
    """Whether this process is a worker of a distributed search (it asks a chief for trials)."""
    utils = _distribute_utils()
    return utils.has_chief_oracle() and not utils.is_chief_oracle()


def tuner_callback_class():
    """The callback class through which Keras Tuner's tuner hears of a trial's epochs."""
    return _module("keras_tuner.src.engine.tuner_utils", "keras-tuner", keras_tuner.__version__).TunerCallback


def add_oracle_service(server, oracle):
    """Serves `oracle` on a gRPC `server` as the chief of a distributed search does."""
    version = keras_tuner.__version__
    protos = _module("keras_tuner.src.protos", "keras-tuner", version)
    servicer = _module("keras_tuner.src.distribute.oracle_chief", "keras-tuner", version).OracleServicer
    protos.get_service_grpc().add_OracleServicer_to_server(servicer(oracle), server)


def quiet_condition_protos():
    """Silences the debugging `print` that Keras Tuner 1.4.8 left in `Parent.to_proto`: a distributed search
    serialises each trial's conditional hyperparameters, and chief and workers wrote a bare value (a freeze depth)
    to stdout many times a trial, into the results they print."""
    conditions = _module("keras_tuner.src.engine.conditions", "keras-tuner", keras_tuner.__version__)
    _tuner(conditions.Parent, "to_proto")
    conditions.print = lambda *args, **kwargs: None  # the module's only print; its other output goes on


def quiet_reload_line():
    """Silences the line "Reloading Tuner from <file>" that Keras Tuner 1.4.8 prints where a tuner finds its
    folder's state: a resumed search says so in tfxfer's words, and an export that retrains a search's best trial
    has nothing to say of it. Keras Tuner's other output goes on."""
    base_tuner = _module("keras_tuner.src.engine.base_tuner", "keras-tuner", keras_tuner.__version__)

    def print_but_reloading(*args, **kwargs):
        if not (args and str(args[0]).startswith("Reloading Tuner from")):
            builtins.print(*args, **kwargs)

    base_tuner.print = print_but_reloading


def tuner_knows_a_notebook():
    """Tells Keras Tuner whether it runs in a notebook. Keras Tuner 1.4.8 takes any process that can import IPython
    for one (`get_ipython()` is None outside), and before every trial but the first writes the escape codes of
    IPython's `clear_output` to stdout, into a terminal, a pipe or a log file."""
    utils = _module("keras_tuner.src.utils", "keras-tuner", keras_tuner.__version__)
    try:
        import IPython
        shell = IPython.get_ipython()
    except ImportError:
        shell = None
    _tuner(utils, "IS_NOTEBOOK")
    # In a notebook Keras Tuner's own check said so too, and imported IPython's display.
    utils.IS_NOTEBOOK = shell is not None and "Terminal" not in type(shell).__name__


def resume_display(oracle, seconds, trial_ids):
    """Keras Tuner's display after a reload: "Total elapsed time" counts `seconds` (the search's earlier runs) and
    this run's time, and the trials `trial_ids` given back to their workers have a start.

    Keras Tuner 1.4.8 keeps the first run's start, so a search resumed the next morning said a day had elapsed; and
    it saves a trial before noting its start, so a restarted chief's display knew no start for the trials out, and
    the end of each raised KeyError to its worker, which died.
    """
    display, now = _tuner(oracle, "_display"), datetime.datetime.now()
    display.search_start = now - datetime.timedelta(seconds=seconds)
    numbers = {trial_id: position + 1 for position, trial_id in enumerate(oracle.trials)}
    for trial_id in trial_ids:
        display.trial_start.setdefault(trial_id, now)
        display.trial_number.setdefault(trial_id, numbers[trial_id])


def tidy_trial_table(oracle, hidden):
    """Keras Tuner's table of a trial's hyperparameters (printed as each trial begins) leaves out `hidden`, fixed
    values that are tfxfer's bookkeeping (the search's digest was a row of hex), and shows a long value by its end:
    Keras Tuner kept the start, and every candidate of a search across extractors read `/home/me/models/...`."""
    display = _tuner(oracle, "_display")
    show, width = _tuner(display, "show_hyperparameter_table"), _tuner(display, "col_width")
    shorten = display.format_value

    def show_chosen(trial):  # the table reads nothing of the trial but its values
        values = {name: value for name, value in trial.hyperparameters.values.items() if name not in hidden}
        show(types.SimpleNamespace(hyperparameters=types.SimpleNamespace(values=values)))

    def by_its_end(value):
        return f"...{value[3 - width:]}" if isinstance(value, str) and len(value) > width else shorten(value)

    display.show_hyperparameter_table, display.format_value = show_chosen, by_its_end


def fresh_hyperband_rounds(tuner_class):
    """Makes a subclass of Keras Tuner's Hyperband tuner build the trials that a later round continues as any other
    trial: Keras Tuner loads the round before's checkpoint into them, and the checkpoint of a tfxfer trial (its
    phases on cached activations) is not the whole model's, so every one of them failed (RecursionError). They train
    from the pretrained extractor for their larger budget of epochs instead."""
    tuner_class._build_hypermodel = _tuner(keras_tuner.Tuner, "_build_hypermodel")
    return tuner_class


def retry_queue(oracle):
    """The oracle's list of trial ids to run again."""
    return _tuner(oracle, "_retry_queue")


def project_dir(oracle):
    """The folder of the oracle's trials."""
    return _tuner(oracle, "_project_dir")


# LiteRT.

def litert_model_object(flatbuffer):
    """A LiteRT flatbuffer as its schema's objects (a `ModelT`, which `Pack`s into a builder), read by ai-edge-litert's
    flatbuffer tools (which also resolve buffers stored past the flatbuffer). Needs ai-edge-litert installed."""
    import ai_edge_litert

    version = ai_edge_litert.__version__
    tools = _module("ai_edge_litert.tools.flatbuffer_utils", "ai-edge-litert", version)
    return _attribute(tools, "read_model_from_bytearray", "ai-edge-litert", version)(bytearray(flatbuffer))


# Keras optimizers.

def optimizer_variable_index(optimizer, variable):
    """The position of `variable` (a Keras variable, its `tf.Variable`, or one replica's copy) among the variables
    `optimizer` was built for; Keras' own `update_step`s find their slots the same way."""
    return _keras(optimizer, "_get_variable_index")(variable)
