"""Where to build and train: a TPU, several GPUs, or the default strategy."""

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
