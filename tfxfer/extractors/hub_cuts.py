"""A TF Hub SavedModel cut at its block boundaries: prefix and suffix functions over its restored variables.

A Reusable SavedModel's restored `__call__` (traced with `training=False`) is a concrete function whose graph holds
the whole network, its variables entering as captured resource handles. `GraphCuts` reads that graph and finds, for
each boundary between blocks k-1 and k, a tensor that every path from the input to the output passes through, with
every operation that reads a variable of blocks `< k` before it and every operation that reads one of blocks `>= k`
after it (the rule `true_cuts` applies to Keras graphs; blocks come from the variables' scopes). It is the last such
tensor, so that the operations without weights that end block k-1 (a residual add, an activation) stay in the prefix.

The prefix (input to cut), the suffix (cut to output) and every cut at once (for a probe: one pass) are each the
operations they need, and no others, imported from the graph's `GraphDef` into a `tf.compat.v1.wrap_function` graph
whose variable handles are captured from the restored variables, so they read and train the same weights. Inputs that do not lead to the output through the cut (a BERT encoder's `input_mask`, which every
layer and the pooler read) are side inputs: the prefix returns them beside the cut tensor and the suffix takes them.
The graph is the inference one, so BatchNorm in a suffix runs in inference mode; a suffix always follows frozen
blocks, where tfxfer keeps BatchNorm in inference mode anyway.
"""

import collections

import keras
import tensorflow as tf

from tfxfer import _compat

#: Operation types that run a function of their own: a cut cannot pass inside them.
_FUNCTION_OPS = {"PartitionedCall", "StatefulPartitionedCall", "If", "StatelessIf", "While", "StatelessWhile", "Case",
                 "StatelessCase"}


def inference_function(restored):
    """The restored `__call__` concrete function traced with `training=False` (or without `training`), else None.

    Example:
        >>> inference_function(tf.saved_model.load(hub_folder)).structured_input_signature[0][0].shape
        TensorShape([None, 16, 16, 3])
    """
    call = getattr(restored, "__call__", None)
    if not isinstance(call, tf.types.experimental.PolymorphicFunction):
        return None
    for function in call.concrete_functions:
        args, kwargs = function.structured_input_signature
        training = args[1] if len(args) > 1 else kwargs.get("training", False)
        if training is False:
            return function
    return None


class GraphCuts:
    """The block boundaries of a restored function's graph where it can be cut, and functions pruned at them.

    Args:
        function: The inference `ConcreteFunction` of the restored `__call__`.
        variable_blocks: `{id(variable.handle): (variable, block index)}` for every restored variable.
        n_blocks: Number of blocks.
        output: Which output to cut towards when the function returns a dict (its key), else None.

    Attributes:
        cuts: `{k: name of the cut tensor}` for each boundary `k` in `1..n_blocks-1` where the graph can be cut.
        reasons: `{k: why not}` for each boundary where it cannot.
        side_inputs: `{k: [names of the inputs the suffix reads besides the cut tensor]}`.

    Example:
        >>> cuts = tfxfer.load_extractor(hub_folder).graph_cuts
        >>> sorted(cuts.cuts), cuts.cut_shape(2)
        ([1, 2, 3], TensorShape([None, 16, 16, 4]))
    """

    def __init__(self, function, variable_blocks, n_blocks, output=None):
        self._graph = function.graph
        self._specs = tf.nest.flatten(function.structured_input_signature[0][0])
        self._inputs = list(function.inputs[: len(self._specs)])
        outputs = tf.nest.pack_sequence_as(function.structured_outputs, function.outputs)
        self._output = outputs[output] if isinstance(outputs, dict) else tf.nest.flatten(outputs)[0]
        # The function's output identities wait on every stateful op (control inputs) that a pruned part must skip.
        while self._output.op.type == "Identity" and self._output.op.control_inputs:
            self._output = self._output.op.inputs[0]
        handles = {id(internal): id(external) for external, internal in self._graph.captures}
        self._variables = {tensor.op.name: variable_blocks[handles[id(tensor)]][0] for tensor in function.inputs
                           if id(tensor) in handles and handles[id(tensor)] in variable_blocks}
        self._blocks_of = {tensor.op.name: variable_blocks[handles[id(tensor)]][1] for tensor in function.inputs
                           if id(tensor) in handles and handles[id(tensor)] in variable_blocks}
        self.cuts, self.reasons, self.side_inputs = {}, {}, {}
        self._graph_def = self._graph.as_graph_def()
        self._functions = {}
        self._find(n_blocks)

    def _find(self, n_blocks):
        by_name = {op.name: op for op in self._graph.get_operations()}
        primary = max(self._inputs, key=lambda tensor: len(_reach([tensor.op], _consumers)))
        downstream = _reach([primary.op], _consumers)
        path = downstream & _reach([self._output.op], _producers)
        order = [name for name in _topological(by_name) if name in path]
        position = {name: i for i, name in enumerate(order)}
        blocks = [self._blocks_read(by_name[name], downstream) for name in order]
        # An operation is a cut when no edge of the input-to-output paths jumps over it.
        jump, reach = [0] * len(order), 0
        for i, name in enumerate(order):
            jump[i] = reach
            ends = [position[c.name] for t in by_name[name].outputs for c in t.consumers() if c.name in position]
            reach = max([reach, *ends])
        before = _running(blocks, max, -1)
        after = _running(blocks[::-1], min, n_blocks)[::-1]
        inputs = {tensor.op.name for tensor in self._inputs}
        for k in range(1, n_blocks):
            found = None
            for i in range(1, len(order) - 1):
                op = by_name[order[i]]
                used = [t for t in op.outputs if any(c.name in position for c in t.consumers())]
                if jump[i] <= i and len(used) == 1 and before[i] < k <= after[i + 1]:
                    found = used[0]
            if found is None:
                self.reasons[k] = self._why_not(k, order, by_name, blocks)
                continue
            suffix = [by_name[name] for name in order[position[found.op.name] + 1:]]
            sides = sorted({name for op in suffix for name in _sources(op, downstream) & inputs})
            ranks = {by_name[name].outputs[0].shape.rank for name in sides}
            if found.shape.rank is None or found.shape[-1] is None or ranks - {found.shape.rank - 1}:
                self.reasons[k] = (f"the tensor between block {k - 1} and block {k} ({found.shape}) has no known "
                                   "number of channels, or inputs the later blocks read cannot sit beside it")
                continue
            self.cuts[k], self.side_inputs[k] = found.name, sides

    def _blocks_read(self, op, downstream):
        """The blocks whose variables `op` reads through inputs that do not come from the primary input."""
        return {self._blocks_of[name] for name in _sources(op, downstream) if name in self._blocks_of}

    def _why_not(self, k, order, by_name, blocks):
        for name, read in zip(order, blocks):
            op = by_name[name]
            if op.type in _FUNCTION_OPS and read and min(read) < k <= max(read):
                return (f"the {op.type} operation {name!r} runs a nested function or control flow that holds blocks "
                        f"{min(read)} to {max(read)}, so the graph cannot be cut inside it")
        return (f"no single tensor carries every path from block {k - 1} to block {k} (a connection skips past the "
                "boundary, or operations of the two blocks interleave)")

    def _pruned(self, feeds, fetches):
        """A concrete function from the tensors named `feeds` to those named in `fetches` (a nest), over the
        restored variables; made once per pair.

        Only the operations the fetches need, up to the feeds, are imported. Control inputs are dropped: in an
        inference graph they only order reads of variables that nothing writes.
        """
        key = (tuple(feeds), repr(fetches))
        if key not in self._functions:
            stops = {name.split(":")[0] for name in feeds}
            keep = _reach([self._graph.get_tensor_by_name(name).op for name in tf.nest.flatten(fetches)],
                          lambda op: [] if op.name in stops else _producers(op))
            keep -= stops
            graph_def = tf.compat.v1.GraphDef(versions=self._graph_def.versions, library=self._graph_def.library)
            for node in self._graph_def.node:
                if node.name in keep:
                    copy = graph_def.node.add()
                    copy.CopyFrom(node)
                    del copy.input[:]
                    copy.input.extend(name for name in node.input if not name.startswith("^"))
            captures = {internal.name: external for external, internal in self._graph.captures
                        if internal.op.name in keep}
            specs = [tf.TensorSpec(self._graph.get_tensor_by_name(name).shape, self._graph.get_tensor_by_name(
                name).dtype) for name in feeds]

            used = {name if ":" in name else f"{name}:0" for node in graph_def.node for name in node.input}
            flat = tf.nest.flatten(fetches)

            def imported(*inputs):
                fed = dict(zip(feeds, inputs))
                bound = {name: _compat.capture(external) for name, external in captures.items()}
                bound.update((name, tensor) for name, tensor in fed.items() if name in used)
                outputs = iter(tf.graph_util.import_graph_def(graph_def, input_map=bound, name="hub",
                                                              return_elements=[n for n in flat if n not in fed]))
                return tf.nest.pack_sequence_as(fetches, [fed[n] if n in fed else next(outputs) for n in flat])

            pruned = tf.compat.v1.wrap_function(imported, specs)
            # A call then tells gradient tapes that it reads these variables (as a tf.function's call does), so
            # that Keras' train step, which watches only the variables it sees read, gets their gradients.
            pruned.graph.variables = [self._variables[name] for name in keep if name in self._variables]
            self._functions[key] = pruned
        return self._functions[key]

    def input_names(self):
        """The names of the function's inputs, in the order the pruned functions take them."""
        return [tensor.op.name for tensor in self._inputs]

    def _cut_names(self, k):
        return [self.cuts[k], *(f"{name}:0" for name in self.side_inputs[k])]

    def prefix(self, cuts, whole=False):
        """A concrete function from the inputs to `[cut tensor, *side inputs]` for each of `cuts` (a list), and the
        whole output last when `whole`: one pass of the graph gives them all."""
        fetches = [self._cut_names(k) for k in cuts]
        return self._pruned([t.name for t in self._inputs], [*fetches, self._output.name] if whole else fetches)

    def suffix(self, k):
        """A concrete function from `(cut tensor, *side inputs)` to the output."""
        return self._pruned(self._cut_names(k), self._output.name)

    def cut_shape(self, k):
        """The static shape of the cut tensor after `k` blocks (None where the graph leaves a size open)."""
        return self._graph.get_tensor_by_name(self.cuts[k]).shape

    def input_dtype(self, name):
        """The dtype of the input named `name`."""
        return self._graph.get_tensor_by_name(f"{name}:0").dtype

    def output_shape(self):
        """The static shape of the output."""
        return self._output.shape


def pack_sides(cut, *sides):
    """The cut tensor with the side inputs appended as channels (integers such as a mask are exact in float32).

    Example:
        >>> pack_sides(tf.zeros((1, 128, 384)), tf.ones((1, 128), tf.int32)).shape
        TensorShape([1, 128, 385])
    """
    if not sides:
        return cut
    return tf.concat([cut, *(tf.cast(side, cut.dtype)[..., None] for side in sides)], axis=-1)


class HubSuffix(keras.layers.Layer):
    """The blocks of a TF Hub SavedModel after a cut, as a Keras layer over the extractor's own variables.

    Args:
        function: The pruned concrete function from `(cut tensor, *side inputs)` to the output.
        weights: The Keras variables of the blocks after the cut; the layer's trainable weights are those of them
            that are trainable.
        width: Channels of the cut tensor; the channels after them are the side inputs.
        side_dtypes: The dtypes of the side inputs.
        regularization_losses: The SavedModel's loss functions, added while any of `weights` trains (as the whole
            extractor does).
        output_shape: The static shape of the output.
        **kwargs: Keras layer arguments.

    Example:
        >>> hub = tfxfer.load_extractor(hub_folder).freeze(2)
        >>> suffix = hub.suffix(2)  # a HubSuffix
        >>> suffix(hub.prefix(2)(np.zeros((1, 16, 16, 3), "float32"))).shape, len(suffix.trainable_weights)
        (TensorShape([1, 8]), 6)
    """

    def __init__(self, function, weights, width, side_dtypes, regularization_losses, output_shape, **kwargs):
        super().__init__(**kwargs)
        object.__setattr__(self, "_function", function)  # untracked: a pruned function is not for export
        self._width, self._side_dtypes, self._output_shape = width, list(side_dtypes), tuple(output_shape)
        self._regularization_losses = regularization_losses
        for weight in weights:
            _compat.track_variable(self, weight)
        self.built = True

    def call(self, packed, training=None):
        if self._side_dtypes:
            sides = [tf.cast(packed[..., self._width + i], dtype) for i, dtype in enumerate(self._side_dtypes)]
            packed = packed[..., : self._width]
        else:
            sides = []
        outputs = self._function(packed, *sides)
        if self.trainable_weights:
            for loss in self._regularization_losses:
                self.add_loss(loss())
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self._output_shape[1:])


def _consumers(op):
    return [consumer for tensor in op.outputs for consumer in tensor.consumers()]


def _producers(op):
    return [tensor.op for tensor in op.inputs]


def _reach(starts, step):
    """Names of the operations reachable from `starts` (included) by `step`."""
    seen, stack = set(), list(starts)
    while stack:
        op = stack.pop()
        if op.name not in seen:
            seen.add(op.name)
            stack.extend(step(op))
    return seen


def _sources(op, downstream):
    """Names of the operations without inputs that feed `op` along inputs that are not in `downstream`."""
    found, seen = set(), set()
    stack = [t.op for t in op.inputs if t.op.name not in downstream]
    while stack:
        current = stack.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        if not current.inputs:
            found.add(current.name)
        stack.extend(t.op for t in current.inputs)
    return found


def _topological(by_name):
    """Operation names in an order where every data input comes first."""
    pending = {name: len(op.inputs) for name, op in by_name.items()}
    consumers = collections.defaultdict(list)
    for name, op in by_name.items():
        for tensor in op.inputs:
            consumers[tensor.op.name].append(name)
    ready = collections.deque(name for name, count in pending.items() if count == 0)
    order = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for consumer in consumers[name]:
            pending[consumer] -= 1
            if pending[consumer] == 0:
                ready.append(consumer)
    return order


def _running(sets, pick, empty):
    """For each position, `pick` (max or min) over the union of `sets` up to and including it."""
    result, current = [], empty
    for values in sets:
        current = pick([current, *values])
        result.append(current)
    return result
