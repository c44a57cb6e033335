"""A restored SavedModel's interface: the function an extractor calls and what it takes, the image size its name
states, and a digest of the graphs it runs (for caches, which must not serve another computation's activations)."""

import hashlib
import re

import tensorflow as tf

from tfxfer.extractors.sources import is_handle

#: Image sizes that TF Hub handles carry in their names (`mobilenet_v2_100_224`, `inception_v3_299`...).
_NAMED_SIZES = {96, 128, 160, 192, 224, 240, 256, 260, 299, 300, 331, 380, 384, 456, 480, 512, 528, 600}


def endpoint(obj, source):
    """The restored function to call, whether it takes `training`, and the spec of its input."""
    call = getattr(obj, "__call__", None)
    if isinstance(call, tf.types.experimental.PolymorphicFunction) and call.concrete_functions:
        args, kwargs = call.concrete_functions[0].structured_input_signature
        # The Reusable SavedModel format makes `training` optional: a model traced without it takes none.
        takes_training = len(args) > 1 or "training" in kwargs
        return call, takes_training, args[0]
    serve = getattr(obj, "serve", None)
    if isinstance(serve, tf.types.experimental.PolymorphicFunction) and serve.concrete_functions:
        return serve, False, serve.concrete_functions[0].structured_input_signature[0][0]
    if "serving_default" in getattr(obj, "signatures", {}):
        signature = obj.signatures["serving_default"]
        inputs = signature.structured_input_signature[1]
        if len(inputs) != 1:
            raise ValueError(f"The SavedModel {source!r} is called through its serving_default signature, which takes "
                             f"{len(inputs)} inputs ({', '.join(sorted(inputs))}); an extractor takes one (a batch of "
                             "images or of strings): export a function of that one input.")
        (name, spec), = inputs.items()
        return (lambda x: signature(**{name: x})), False, spec
    raise ValueError(
        f"The SavedModel {source!r} has nothing to call: no __call__, no `serve` endpoint and no serving_default "
        "signature. Export it as a TF Hub Reusable SavedModel (a tf.Module with a tf.function __call__) or with "
        "keras' model.export()."
    )


def check_image_input(spec, source, image_size=None):
    """Raises where tfxfer cannot feed an image model's input `[batch, height, width, channels]`: it feeds float
    RGB batches of any size, at the model's own image size where it states one."""
    batch, height, width, channels = spec.shape
    problem = None
    if channels not in (3, None):
        problem = (f"images of {channels} channel{'s' * (channels != 1)}" + (" (channels first, NCHW?)" if height == 3
                                                                           else "") +
                   "; tfxfer feeds RGB images, channels last: export it for [batch, height, width, 3]")
    elif not spec.dtype.is_floating:
        problem = (f"{spec.dtype.name} pixels; tfxfer feeds float pixels: export it for float32 input, casting "
                   "inside")
    elif batch is not None:
        problem = f"a fixed batch of {batch}; tfxfer feeds batches of any size: export it with batch dimension None"
    elif image_size is not None and None not in (height, width) and tuple(image_size) != (height, width):
        problem = (f"images of exactly {height}x{width}; image_size= cannot make them {image_size[0]}x{image_size[1]}: "
                   "leave it out")
    if problem:
        raise ValueError(f"The SavedModel {source!r} takes {problem}.")


def size_from_name(source):
    """The image size a handle's or a folder's own name states (`mobilenet_v2_100_224` gives 224), not a parent
    folder's: a model in `exports_128/` states none.

    Example:
        >>> size_from_name("https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5")
        (224, 224)
        >>> size_from_name("runs_128/my_model") is None
        True
    """
    name = str(source).rstrip("/\\")
    if not is_handle(name):
        name = re.split(r"[/\\]", name)[-1]
    sizes = [int(m) for m in re.findall(r"(?<!\d)(\d{2,3})(?!\d)", name) if int(m) in _NAMED_SIZES]
    return (sizes[-1], sizes[-1]) if sizes else None


#: A restored function's name: the name it was saved under, then `_` and a count of what this process loaded before.
_LOADED_NAME = re.compile(r"^(__inference_.*)_\d+$")


def graph_digest(*functions):
    """A digest of the graphs that restored functions run: each concrete function's, with the functions it calls,
    named as they were saved and in the order of those names. (The graph lists them in an order that changes from
    one process to the next, and names them after how many functions the process loaded before: a search with
    MiniLM's preprocessor could not be resumed, nor a search across extractors given in another order. Testers'
    finds.)"""
    digest = hashlib.sha256()
    for function in functions:
        for concrete in getattr(function, "concrete_functions", None) or [function]:
            graph = concrete.graph.as_graph_def()
            if graph.library.function:  # else as before: clearing an empty list marks an empty library present
                _as_saved(graph)
            digest.update(graph.SerializeToString(deterministic=True))
    return digest.hexdigest()


def _as_saved(graph):
    """Renames the functions of `graph` (a GraphDef) as they were saved, wherever they are named, and orders them."""
    saved = {function.signature.name: _LOADED_NAME.sub(r"\1", function.signature.name)
             for function in graph.library.function}

    def rename(nodes):
        for node in nodes:
            node.op = saved.get(node.op, node.op)
            for value in node.attr.values():
                for called in ([value.func] if value.HasField("func") else []) + list(value.list.func):
                    called.name = saved.get(called.name, called.name)

    rename(graph.node)
    for function in graph.library.function:
        function.signature.name = saved[function.signature.name]
        rename(function.node_def)
    for gradient in graph.library.gradient:
        gradient.function_name = saved.get(gradient.function_name, gradient.function_name)
        gradient.gradient_func = saved.get(gradient.gradient_func, gradient.gradient_func)
    for listed, name in ((graph.library.function, lambda f: f.signature.name),
                         (graph.library.gradient, lambda g: (g.function_name, g.gradient_func))):
        ordered = sorted(listed, key=name)
        del listed[:]
        listed.extend(ordered)
