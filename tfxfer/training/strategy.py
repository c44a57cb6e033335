"""Where to build and train (a TPU, several GPUs, or the default strategy) and in what precision."""

import contextlib

import keras
import tensorflow as tf


def pick_strategy(strategy=None):
    """The distribution strategy to build in: the given one, else a TPU, else several GPUs, else the default.

    Args:
        strategy: A strategy to use as it is.

    Returns:
        `TPUStrategy` when a TPU answers `TPUClusterResolver` (Colab, Cloud TPU VMs), `MirroredStrategy` when more
        than one GPU is visible, otherwise the default strategy.

    Example:
        >>> pick_strategy(tf.distribute.OneDeviceStrategy("/cpu:0")).extended.worker_devices
        ('/job:localhost/replica:0/task:0/device:CPU:0',)
        >>> pick_strategy().num_replicas_in_sync  # doctest: +SKIP
        1
    """
    if strategy is not None:
        return strategy
    # Colab's TPU runtime answers the resolver's defaults; a Cloud TPU VM answers tpu="local".
    for options in ({}, {"tpu": "local"}):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(**options)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError):
            continue
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


#: The Keras dtype policies a model can be built in.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


def pick_precision(strategy=None):
    """The dtype policy that pays on the strategy's devices: `mixed_bfloat16` on TPUs, `mixed_float16` on GPUs,
    `float32` on CPUs (where half precision is slower, not faster).

    Example:
        >>> pick_precision(tf.distribute.OneDeviceStrategy("/cpu:0"))
        'float32'
    """
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: the devices TensorFlow places on
        devices = [device.name for device in tf.config.list_logical_devices("GPU")]
    return "mixed_float16" if any("GPU" in device.upper() for device in devices) else "float32"


@contextlib.contextmanager
def dtype_policy(policy):
    """Builds layers under a Keras dtype policy (`float32`, `mixed_float16`, `mixed_bfloat16`, or `auto`:
    `pick_precision()`), then restores the global one.

    Example:
        >>> with dtype_policy("mixed_bfloat16"):
        ...     keras.layers.Dense(2).compute_dtype
        'bfloat16'
    """
    policy = pick_precision() if policy == "auto" else policy
    if policy not in PRECISIONS:
        raise ValueError(f"precision must be 'auto' or one of {PRECISIONS}; got {policy!r}.")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
