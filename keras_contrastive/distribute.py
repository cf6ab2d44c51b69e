"""Everything `tf.distribute` that the package needs, in one place.

Contrastive quantities couple samples: a loss or metric over a global batch
is not the mean of per-replica values. The helpers here let replica code see
the global batch while keeping its own rows, so summing per-replica results
gives exactly the single-device value.
"""

import tensorflow as tf


def num_replicas():
    """The number of replicas of the current strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def gather_global_batch(*tensors):
    """Gathers tensors from every replica along axis 0.

    In a replica context of a multi-replica strategy each tensor is
    all-gathered (replica 0's rows first); `all_gather` is differentiable,
    its gradient all-reduces and slices, so gradients reach the replica that
    produced each row. Local batches may differ in size (a final partial
    batch): this replica's offset is the sum of the sizes before it.
    Elsewhere the tensors come back unchanged with offset 0.

    Returns:
        `(gathered_tensors, offset)`: a list of the gathered tensors, and the
        row at which this replica's own rows start.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return list(tensors), 0
    # `identity` places each tensor on this replica's device: under
    # MultiWorkerMirroredStrategy a tensor straight from the input pipeline
    # (the labels) has no device, and collectives refuse it.
    tensors = [tf.identity(tensor) for tensor in tensors]
    local_size = tf.identity(tf.shape(tensors[0])[:1])
    sizes = context.all_gather(local_size, axis=0)
    offset = tf.reduce_sum(sizes[: context.replica_id_in_sync_group])
    gathered = [_all_gather(context, tensor) for tensor in tensors]
    return gathered, offset


def _all_gather(context, tensor):
    """`all_gather` along axis 0, keeping the static shape of the other axes."""
    gathered = context.all_gather(tensor, axis=0)
    gathered.set_shape([None] + tensor.shape[1:])
    return gathered


def in_multi_worker_mode():
    """Whether the current strategy spans several workers (collective ops)."""
    strategy = tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return False
    cluster = resolver.cluster_spec().as_dict()
    return sum(len(cluster.get(job, ())) for job in ("chief", "worker")) > 1


def step_logs(logs):
    """Makes a train step's logs reducible by Keras under every strategy.

    Across several workers Keras reduces each log with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalars that
    metrics return (Keras 3.15); a length-1 vector per replica reduces to the
    same scalar.
    """
    if not in_multi_worker_mode():
        return logs
    return {key: tf.reshape(value, (1,)) for key, value in logs.items()}


def worker_id(strategy):
    """`(task_type, task_id)` of this worker under a multi-worker strategy,
    or None elsewhere."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return None
    if resolver.task_type is None:
        return None
    return resolver.task_type, resolver.task_id


def is_chief(strategy):
    """Whether this process writes shared outputs: always without workers;
    the "chief" task, or worker 0 when the cluster has no chief."""
    worker = worker_id(strategy)
    if worker is None:
        return True
    task_type, task_id = worker
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


def worker_name(strategy):
    """A name for this worker's own files: "chief" or e.g. "worker1"."""
    worker = worker_id(strategy)
    if worker is None or is_chief(strategy):
        return "chief"
    return f"{worker[0]}{worker[1]}"
