"""Ordered blocks of an extractor: grouping by scope names and true cuts of a Keras graph.

A block is a contiguous run of an extractor's layers (Keras models) or variables (TF Hub SavedModels), input side
first. Blocks are the unit of freezing: `freeze(k)` freezes the first k of them.

Names give the structure. Pretrained models name their stages with a running number (`block_3_expand/kernel`,
`encoder/layer_2/...`, `conv4_block1_1_conv`, `block2a_expand_conv`), so the default key of a name is the first
integer in it, and a new block starts wherever that key changes along the input-to-output order. Names with no
number (`embeddings/...`, `stem_conv`, `top_conv`) form blocks of their own between the numbered ones. A
`block_pattern` regular expression overrides the default key: its first group is the key, and a name that does not
match belongs to the block before it.
"""

import dataclasses
import re

from tfxfer import _compat

_FIRST_NUMBER = re.compile(r"(\d+)")


@dataclasses.dataclass
class Block:
    """One freezable block of an extractor.

    Attributes:
        name: A readable name: the first scope or layer name in the block.
        weights: All Keras variables of the block, BatchNorm moving statistics included.
        learnable: The subset of `weights` that an optimizer updates while the block is unfrozen.
        layers: The Keras layers of the block (empty for TF Hub SavedModels, which have no layers).
        output_shape: Shape of the block's output where it is a true cut of a Keras graph, else None.
    """

    name: str
    weights: list
    learnable: list
    layers: list = dataclasses.field(default_factory=list)
    output_shape: tuple | None = None

    @property
    def num_params(self):
        """Number of scalars in all weights of the block."""
        return sum(parameter_count(w.shape) for w in self.weights)


def parameter_count(shape):
    """The number of scalars in a tensor of `shape`."""
    n = 1
    for d in shape:
        n *= int(d)
    return n


def name_key(name, block_pattern=None):
    """The grouping key of a scope or layer name.

    Args:
        name: A variable scope (`block_3_expand/kernel`) or a layer name.
        block_pattern: Optional regular expression; its first group is the key.

    Returns:
        The key: by default the first integer in the name, or None when the name holds no number. With a
        `block_pattern`, the matched group, or None when the name does not match.

    Example:
        >>> name_key("encoder/layer_2/attention/kernel"), name_key("embeddings/word_embeddings")
        (2, None)
    """
    if block_pattern is not None:
        match = re.search(block_pattern, name)
        return match.group(1) if match else None
    match = _FIRST_NUMBER.search(name)
    return int(match.group(1)) if match else None


def name_keys(names, block_pattern=None):
    """The key of each name in order; with a `block_pattern`, a name that does not match takes its predecessor's.

    Example:
        >>> name_keys(["stem", "block_1_conv", "block_1_add", "pool"], r"^(stem|block_1)")
        ['stem', 'block_1', 'block_1', 'block_1']
    """
    keys = []
    for name in names:
        key = name_key(name, block_pattern)
        if key is None and block_pattern is not None and keys:
            key = keys[-1]
        keys.append(key)
    return keys


def block_label(name):
    """A short label for a block from its first name: up to the first number, or the first scope.

    Example:
        >>> block_label("encoder/layer_2/attention"), block_label("block_3_expand"), block_label("stem_conv")
        ('encoder/layer_2', 'block_3', 'stem_conv')
    """
    match = _FIRST_NUMBER.search(name)
    return name[: match.end()] if match else name.split("/")[0]


def group_by_names(names, block_pattern=None):
    """Groups an ordered list of names into runs with the same key.

    Args:
        names: Names in input-to-output order.
        block_pattern: See `name_key`.

    Returns:
        A list of lists of indices into `names`, one list per group, in order.

    Example:
        >>> group_by_names(["Conv1/kernel", "bn_Conv1/gamma", "expanded_conv/kernel", "block_1_expand/kernel"])
        [[0, 1], [2], [3]]
    """
    groups = []
    keys = name_keys(names, block_pattern)
    for index, key in enumerate(keys):
        if not groups or key != keys[index - 1]:
            groups.append([])
        groups[-1].append(index)
    return groups


def true_cuts(model, side_inputs=False):
    """Finds the positions in a functional Keras model where one tensor carries everything forward.

    A cut after operation i means: every path from the model's input to its output passes through the single tensor
    that crosses from operations [0..i] to operations (i..n]. An activation computed there is all that the rest of
    the model needs, so it can be cached.

    Transformers take a padding mask beside the token ids, and every layer reads it: between two layers the hidden
    states and that model input cross. With `side_inputs`, model inputs that cross do not count, so a cut is where
    exactly one computed tensor crosses; the rest of the model then needs it and the model inputs still in use.

    Args:
        model: A functional `keras.Model` with one output, and one input unless `side_inputs`.
        side_inputs: Let model inputs cross a cut.

    Returns:
        `(operations, cuts)`: the model's non-input operations in a topological order, and the sorted list of
        indices i such that a true cut follows `operations[i]` (the last index is always a cut).
    """
    operations = [op for op in model.operations if op.__class__.__name__ != "InputLayer"]
    last_use = {}
    produced_at = {}
    for i, op in enumerate(operations):
        for node in _compat.inbound_nodes(op):
            for tensor in node.output_tensors:
                produced_at[id(tensor)] = i
            for tensor in node.input_tensors:
                last_use[id(tensor)] = max(last_use.get(id(tensor), -1), i)
    for tensor in model.outputs:
        last_use[id(tensor)] = len(operations)
    for tensor in model.inputs:
        produced_at[id(tensor)] = -1
    cuts = []
    for i in range(len(operations)):
        crossing = [t for t, p in produced_at.items() if p <= i and last_use.get(t, -1) > i
                    and not (side_inputs and p < 0)]
        if len(crossing) == 1 and produced_at[crossing[0]] >= 0:
            cuts.append(i)
    return operations, cuts
