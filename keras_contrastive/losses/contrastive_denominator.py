"""The contrastive log-denominator, with a hand-written, XLA-compiled gradient.

In the common case (no labels, in-batch negatives) InfoNCE and the hard
contrastive loss spend all their `N x N` work on one quantity per anchor `i`
(a row of `Z`, the normalised views):

    lse_i = log sum_{j kept by i} exp(s_ij / tau),   s = Z C^T,   C = [Z; E]

over the anchor's positives (the other views of its sample) and its kept
negatives (`E`: extra negatives): all of them for InfoNCE, those with
`s_ij >= t_i` for the hard loss, `t_i` being the anchor's `rank`-th largest
negative similarity (ties at `t_i` kept, as in the paper's interval). The
positives' part of the losses is `O(N x dim)`.

Automatic differentiation of `lse` costs three matrix products (`Z C^T`,
`W C` and `W^T Z`) and several `N x N` temporaries. Here the gradient uses
the symmetry of the in-batch block, `s_ij = s_ji`: with
`W_ij = u_i exp(s_ij / tau - lse_i)` over the entries anchor `i` keeps
(upstream `u`),

    dL/dZ = (W_ij + W_ji) C / tau   over the in-batch columns,

and `W_ji = u_j exp(s_ij / tau - lse_j)` (where anchor `j` keeps `i`:
`s_ij >= t_j`) is read off the same entry `s_ij`, so one fused pass builds
`W + W^T` without a transpose and the backward pass needs one product with
`C` (and `W_E^T Z` for the extras) instead of two. `d tau` comes from those
products too, without another pass over the matrix.

The thresholds come from an exact counting selection on the order keys of
the similarities' bits, its candidates searched in value space (compiled
with XLA; 7-18 passes of two comparisons a key at 8,192 views, over
blocks of rows held in cache on a CPU, over the matrix elsewhere), or,
for tensors on the host CPU outside XLA where it is the faster (timed
once per process), from NumPy's vectorised `partition` on all cores (a
linear-time selection, unlike a `top_k` that returns and sorts half a
row, and several times faster than TensorFlow's `NthElement`); an XLA
computation cannot call out to NumPy.

The passes over the matrix other than the selection are compiled with
XLA, also when the caller is not: the similarities (`Z C^T`, with each
anchor's own entry set to `-inf` in place, so no later pass needs a mask
for it), the logsumexp (one pass), and the gradient weights, where `W_ij`
and `W_ji` share one exponential. Both one-pass forms shift by the logits'
bound `1 / tau`; a TensorFlow conditional falls back to exact
two-exponential forms for tiny `tau`. The backward product `W C` stays
TensorFlow's, faster than XLA's on CPU (XLA's is the faster for `Z C^T`).

The dense form keeps the similarities for the backward pass; the blocked
form keeps only `lse` and the thresholds and recomputes `block_size` rows at
a time, so its memory grows as `block_size x candidates`. For InfoNCE the
blocked form goes by bands (`_Bands`, each loop one XLA computation): each
block meets the half of the anchors that follow it (wrapped), so every
in-batch pair is computed once and counts for both anchors, and recomputing
it costs what the symmetry saves; a `tau` too small for the shift by
`1 / tau` takes row blocks.
"""

import concurrent.futures
import functools
import math
import os
import time

import numpy as np
import tensorflow as tf

try:  # Private TensorFlow APIs: no public one says whether ops being built
    # will be compiled by XLA or written into a SavedModel. Without them the
    # kernels take the paths that run everywhere (see `_unless_unknown`).
    from tensorflow.python.ops import control_flow_util
    from tensorflow.python.saved_model import save_context
except ImportError:  # pragma: no cover - a TensorFlow that moved them
    control_flow_util = save_context = None


def log_denominators(anchors, extras, tau, views, rank=None, block_size=None):
    """`log sum_{j kept by i} exp(s_ij / tau)` for every anchor `i`.

    Args:
        anchors: `(A, dim)` float32 unit vectors, sample-major (row
            `b * views + v` is view `v` of sample `b`); they are also the
            first `A` candidates.
        extras: `(E, dim)` float32 unit vectors, the further candidates, all
            negatives (`E` may be 0).
        tau: The temperature, a positive scalar (a tensor for a learned
            temperature: its gradient is returned).
        views: Views per sample, a Python int.
        rank: None to keep every negative, or the number of negatives each
            anchor keeps (a Python int or an int32 scalar, at least 1): its
            `rank`-th largest negative similarity is its threshold.
        block_size: None for one `A x C` matrix, or the anchors per block of
            the memory-bounded form.

    Returns:
        `(A,)` float32 log-denominators.
    """
    tau = tf.convert_to_tensor(tau, tf.float32)
    if block_size is None:
        return _dense_log_denominators(anchors, extras, tau, views, rank)
    return _blocked_log_denominators(anchors, extras, tau, views, rank, block_size)


def _similarities(rows, first_row, transposed_candidates):
    """`rows C^T`, with each row's own entry (never in a denominator) set to
    `-inf`, so that no later pass needs a mask for it.

    Inside XLA a scatter sets them, which XLA makes in the product's buffer
    (rows past the anchors, padding dropped from every result, get theirs
    at most at the last column). Outside XLA the product is TensorFlow's
    (oneDNN on CPU: 78-86 ms against XLA's 95 ms at 8,192 x 8,192) and
    `set_diag` writes into its buffer.
    """
    products = tf.matmul(rows, transposed_candidates)
    num_rows, num_columns = tf.shape(products)[0], tf.shape(products)[1]
    if _compiled_by_xla():
        row_indices = tf.range(num_rows)
        own_columns = tf.minimum(first_row + row_indices, num_columns - 1)
        return tf.tensor_scatter_nd_update(
            products, tf.stack([row_indices, own_columns], axis=1), tf.fill([num_rows], -math.inf)
        )
    length = tf.minimum(num_rows, num_columns - first_row)
    return tf.linalg.set_diag(products, tf.fill([length], -math.inf), k=first_row)


def _same_sample(shape, first_row, views, num_anchors):
    """Whether rows `first_row...` and the candidates are views of one
    sample (padding rows are nobody's positive)."""
    rows = first_row + tf.range(shape[0])
    columns = tf.range(shape[1])
    return tf.logical_and(
        (rows // views)[:, None] == (columns // views)[None, :],
        tf.logical_and((rows < num_anchors)[:, None], (columns < num_anchors)[None, :]),
    )


def _kept(similarities, first_row, views, num_anchors, thresholds):
    """Which candidates enter each row's denominator (None: all of them, the
    own entry being `-inf`): its positives and its negatives at or above its
    threshold."""
    if thresholds is None:
        return None
    same_sample = _same_sample(tf.shape(similarities), first_row, views, num_anchors)
    return tf.logical_or(same_sample, similarities >= thresholds[:, None])


# The one-pass forms shift the logits by their bound 1 / tau; they are used
# when every row's lse is at least 1 / tau - 60 (its shifted sum at least
# e^-60), so what float32 flushes (below e^-87) is under e^-27 of a row's
# total.
_MAX_SHIFT = 60.0


def _negatives_only(similarities, first_row, views, num_anchors):
    same_sample = _same_sample(tf.shape(similarities), first_row, views, num_anchors)
    return tf.where(same_sample, -math.inf, similarities)


def _masked_logits(similarities, first_row, thresholds, tau, views, num_anchors):
    kept = _kept(similarities, first_row, views, num_anchors, thresholds)
    logits = similarities / tau
    return logits if kept is None else tf.where(kept, logits, -math.inf)


def _shifted_exponentials(similarities, tau):
    """`exp(s / tau - 1 / tau)`: logits shifted by their bound `1 / tau`."""
    return tf.exp(similarities / tau - 1.0 / tau)


@tf.function(jit_compile=True)
def _bounded_lse(similarities, tau):
    """One-pass logsumexp of every candidate, shifted by `1 / tau`, which
    bounds every logit of unit vectors (exact when `_shift_is_exact`)."""
    return 1.0 / tau + tf.math.log(tf.reduce_sum(_shifted_exponentials(similarities, tau), axis=1))


@tf.function(jit_compile=True)
def _row_maximum_lse(similarities, first_row, thresholds, tau, views, num_anchors):
    """The usual logsumexp, shifted by each row's maximum (a second pass)."""
    masked = _masked_logits(similarities, first_row, thresholds, tau, views, num_anchors)
    peak = tf.reduce_max(masked, axis=1, keepdims=True)
    return tf.squeeze(peak, 1) + tf.math.log(tf.reduce_sum(tf.exp(masked - peak), axis=1))


def _kept_lse(bounded_lse, similarities, first_row, thresholds, tau, views, num_anchors):
    """Logsumexp of each row's kept logits (every row keeps one):
    `bounded_lse`, their one-pass sum shifted by `1 / tau`, unless some
    row's entries all lie far below `1 / tau` (tiny `tau`); then
    `_row_maximum_lse`.

    The branch is a TensorFlow conditional around XLA computations, so no
    copy of the matrix is made for it.
    """
    return tf.cond(
        _shift_is_exact([bounded_lse], tau),
        lambda: bounded_lse,
        lambda: _row_maximum_lse(similarities, first_row, thresholds, tau, views, num_anchors),
    )


def _rows_forward(rows, first_row, transposed_candidates, tau, views, num_anchors, rank):
    """`(similarities, thresholds or None, lse)` of some anchor rows."""
    similarities = _similarities(rows, first_row, transposed_candidates)
    if rank is None:
        lse = _bounded_lse(similarities, tau)
        return similarities, None, _kept_lse(lse, similarities, first_row, None, tau, views, num_anchors)
    thresholds, lse = _thresholds_and_kept_lse(
        similarities, first_row, tau, views, num_anchors, rank
    )
    return similarities, thresholds, lse


def kth_largest(values, k):
    """The `k`-th largest entry of each row of a float32 matrix, exactly.

    Args:
        values: `(rows, columns)` float32.
        k: An int32 scalar, or one rank per row, each in `[1, columns]`.

    Returns:
        `(rows,)` float32.

    `partitioned_kth_largest` (NumPy, through a host callback) for one `k`
    when `_selects_on_host(values)`; otherwise `counting_kth_largest`, which
    runs on any device, under XLA and in a SavedModel.
    """
    k = tf.convert_to_tensor(k, tf.int32)
    if k.shape.rank != 0 or not _selects_on_host(values):
        return counting_kth_largest(values, k)
    return _host_kth_largest(values, k)


def _thresholds_and_kept_lse(similarities, first_row, tau, views, num_anchors, rank):
    """Each row's threshold, its `rank`-th largest negative similarity
    (`kth_largest` of the similarities with the positives at `-inf`), and
    `_kept_lse`.

    The counting selection, on every device, also sums each row's kept
    negatives' exponentials while the row's block is in cache (the
    positives' are gathered), so the logsumexp reads the matrix no more.
    A pass of its own, under XLA, wrote out the kept mask and the masked
    exponentials for a reduction, and the gradient, which needs them
    unmasked, took the exponentials again. Outside XLA NumPy's partition
    selected faster than the counting passes on some hosts, but not with
    the logsumexp's pass added (`benchmarks/README.md`).
    """
    k = tf.minimum(tf.convert_to_tensor(rank, tf.int32), tf.shape(similarities)[1])
    thresholds, negative_sums = _counting_thresholds_and_kept_sums(
        similarities, k, first_row, views, num_anchors, tau
    )
    positive_sums = _positive_sums(similarities, first_row, views, num_anchors, tau)
    lse = 1.0 / tau + tf.math.log(negative_sums + positive_sums)
    return thresholds, _kept_lse(lse, similarities, first_row, thresholds, tau, views, num_anchors)


@tf.function(jit_compile=True)
def _positive_sums(similarities, first_row, views, num_anchors, tau):
    """Each row's sum of `_shifted_exponentials` over its sample's views (its
    own entry, `-inf`, adds 0; padding rows have none)."""
    rows = first_row + tf.range(tf.shape(similarities)[0])
    sample_views = (rows // views * views)[:, None] + tf.range(views)[None, :]
    is_anchor = (rows < num_anchors)[:, None]
    columns = tf.where(is_anchor, sample_views, 0)
    positives = tf.gather(similarities, columns, batch_dims=1)
    exponentials = tf.where(is_anchor, _shifted_exponentials(positives, tau), 0.0)
    return tf.reduce_sum(exponentials, axis=1)


def _host_kth_largest(values, k):
    selected = tf.numpy_function(partitioned_kth_largest, [values, k], tf.float32, stateful=False)
    return tf.ensure_shape(selected, values.shape[:1])


def _selects_on_host(values):
    """Whether NumPy selects: for tensors on the host CPU, outside XLA, and
    outside a SavedModel being written (a host callback can be neither
    compiled nor saved, and on an accelerator it would copy the matrix to
    the host every step), on a host where NumPy is the faster."""
    if _compiled_by_xla() or _in_save_context() or not _on_host_cpu(values):
        return False
    return _numpy_selects_faster()


def _on_host_cpu(values):
    """Whether `values` is (or, no device being chosen, will be) on the host CPU."""
    if values.device:
        return tf.DeviceSpec.from_string(values.device).device_type == "CPU"
    # No device chosen: the placer takes an accelerator when there is one.
    return not any(tf.config.list_logical_devices(kind) for kind in ("GPU", "TPU"))


def _unless_unknown(private_check):
    """`private_check()`, or True when the private TensorFlow API behind it
    is gone: then the kernels assume XLA and a SavedModel, and take the
    counting selection, which runs everywhere (slower only where NumPy's
    partition is the faster)."""
    try:
        return bool(private_check())
    except (AttributeError, TypeError):
        return True


def _compiled_by_xla():
    """Whether the ops being built will be compiled by XLA (`tf.function(
    jit_compile=True)` sets it)."""
    return _unless_unknown(
        lambda: control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
    )


def _in_save_context():
    """Whether `tf.saved_model.save` is tracing the ops being built."""
    return _unless_unknown(lambda: save_context.in_save_context())


# The matrix on which the two selections are timed against each other.
_CALIBRATION_SHAPE = (1024, 8192)


@functools.cache
def _numpy_selects_faster():
    """Whether NumPy's partition selects faster than `counting_kth_largest` on
    this host: timed once per process (best of five each, on a 1,024 x 8,192
    matrix, `k` half a row).

    Both are exact, so the choice changes only the speed. NumPy's vectorised
    partition is the faster on most x86 CPUs (48 ms at 8,192 x 8,190 with
    AVX2 against 64-77 ms for the radix selection that the counting one
    replaced, `benchmarks/README.md`); on AMD Zen 4 its AVX-512 path runs
    in microcode (219-304 ms), and without NumPy's SIMD sort (most CPUs
    other than x86) it is a scalar introselect.
    """
    values = np.random.default_rng(0).normal(size=_CALIBRATION_SHAPE).astype(np.float32)
    k = _CALIBRATION_SHAPE[1] // 2
    with tf.init_scope():  # eager, also while a function is being traced
        tensor = tf.constant(values)
        counting_seconds = _best_seconds(lambda: counting_kth_largest(tensor, k).numpy())
    return _best_seconds(lambda: partitioned_kth_largest(values, k)) < counting_seconds


def _best_seconds(run, repeats=5):
    run()  # compiles, starts the threads
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return min(timings)


# Bytes of rows one selection task copies and partitions: they stay in cache.
_SELECTION_TASK_BYTES = 2**21


@functools.cache
def _selection_threads():
    return concurrent.futures.ThreadPoolExecutor(os.cpu_count())


def partitioned_kth_largest(values, k):
    """`kth_largest` of a NumPy matrix by `numpy.partition`, on all cores.

    NumPy 2's partition is a vectorised quickselect on x86 with AVX2 or
    AVX-512 (a scalar introselect elsewhere), several times faster here
    than TensorFlow's `NthElement` (an introselect); it releases the GIL,
    so row chunks run in parallel on a thread pool.
    """
    rows, columns = values.shape
    position = columns - int(k)
    rows_per_task = max(1, _SELECTION_TASK_BYTES // max(4 * columns, 1))
    selected = np.empty(rows, np.float32)

    def select(start):
        chunk = values[start : start + rows_per_task]
        chunk_selected = _partitioned(chunk, position)
        # Threads started by TensorFlow's may compare denormals as zero (they
        # inherit its denormals-are-zero mode), which can only change a
        # result that is zero or denormal: those rows are redone on integer
        # order keys.
        inexact = np.abs(chunk_selected) < np.finfo(np.float32).tiny
        if inexact.any():
            chunk_selected[inexact] = _partitioned_keys(chunk[inexact], position)
        selected[start : start + rows_per_task] = chunk_selected

    list(_selection_threads().map(select, range(0, rows, rows_per_task)))
    return selected


def _partitioned(rows, position):
    """Each row's entry at `position` in ascending order (on a copy: the
    partition reorders it)."""
    reordered = rows.copy()
    reordered.partition(position, axis=1)
    return reordered[:, position]


def _partitioned_keys(rows, position):
    """`_partitioned` on int32 keys ordered as the floats (`-0.0` just below
    `0.0`), whose comparisons no floating-point mode changes."""
    bits = rows.view(np.int32)
    keys = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    keys.partition(position, axis=1)
    selected = keys[:, position]
    return np.where(selected < 0, selected ^ 0x7FFFFFFF, selected).view(np.float32)


def _order_keys(values):
    """uint32 keys ordered as the float32 values (`-0.0` just below `0.0`)."""
    bits = tf.bitcast(values, tf.uint32)
    sign = tf.constant(0x80000000, tf.uint32)
    return tf.where(bits >= sign, tf.bitwise.invert(bits), tf.bitwise.bitwise_or(bits, sign))


def _values_of_keys(keys):
    sign = tf.constant(0x80000000, tf.uint32)
    bits = tf.where(keys < sign, tf.bitwise.invert(keys), tf.bitwise.bitwise_xor(keys, sign))
    return tf.bitcast(bits, tf.float32)


# The counting selection narrows each row's bracket of keys `[low, high]`
# (at least `rank` keys `>= low`, fewer than `rank` keys `> high`) by two
# candidate keys a pass, both counted in the pass (one comparison a key
# each, the two counts packed in one int32): a pass over a block of rows
# held in cache (on a CPU) or over the matrix (elsewhere) is then bound by
# its comparisons or by reading the keys. The candidates are found in
# value space, where the similarities spread evenly (near zero the keys of
# float32 bits crowd, so halving the keys, as a radix selection does,
# spends most of its 32 passes there): one interpolated between the
# bracket's ends from their counts, the other their midpoint, so that an
# interpolation that converges from one side cannot stall. While an end is
# not finite, and after `_VALUE_PASSES` passes (denormals), they are the
# keys' midpoint and the midpoint of its upper half, so that every row
# ends within 32 more, and a first bracket of all keys is finite after one
# pass where the rank's value lies in [0, 2), as similarities' do (the
# keys' thirds made the first finite bracket far wider: 27 passes instead
# of 12 for the 16th largest of random unit vectors, in a NumPy model). A
# row is done when its rank falls on the bracket's largest or smallest
# key, which one last pass reads off. At 8,192 views a block of 128 rows
# took 7-12 passes for the median negative of random unit vectors (one
# candidate a pass: 12-20), 10-14 for their 16th largest, 10-14 and 12-18
# for clustered vectors.
_VALUE_PASSES = 40
# A pass sums the comparisons of `_SUMMED_SLICES` slices of each chunk of
# `_COUNTED_CHUNK` columns elementwise, then reduces what is left: XLA's
# CPU compiler fuses elementwise work but writes out a reduction's input,
# which so shrinks 64-fold (to lanes of 8 int32, measured the fastest). A
# chunk's two counts (at most 512 each) share an int32, in 16-bit fields.
_COUNTED_CHUNK = 512
_SUMMED_SLICES = 64
# Bytes of keys in one block of rows on a CPU: every pass over a block then
# reads it from cache instead of memory.
_CACHED_BLOCK_BYTES = 2**22


@tf.function(jit_compile=True)
def counting_kth_largest(values, k):
    """`kth_largest` from counting passes over the values' order keys,
    compiled with XLA (see `_searched_selected_keys`). On a CPU the rows go
    in blocks small enough to stay in cache for all the passes; elsewhere
    in one block.
    """
    return _counting_selection(values, k, lambda block, first: _order_keys(block))[0]


@tf.function(jit_compile=True)
def _counting_thresholds_and_kept_sums(similarities, k, first_row, views, num_anchors, tau):
    """`counting_kth_largest` of `_negatives_only(similarities, ...)`, and
    each row's sum of `_shifted_exponentials` over its negatives at or
    above it (as `_kept` compares)."""

    def negative_keys(block, first):
        negatives = _negatives_only(block, first_row + first, views, num_anchors)
        return _order_keys(negatives)

    def kept_sums(keys, selected_keys):
        # Summed over slices elementwise first, as the counts (the padding's
        # keys, 0, are NaN: never kept).
        sliced = _sliced_keys(keys)
        thresholds = _values_of_keys(selected_keys)[:, None, None]
        total = 0.0
        for part in range(sliced.shape[2]):
            negatives = _values_of_keys(sliced[:, :, part])
            exponentials = _shifted_exponentials(negatives, tau)
            total += tf.where(negatives >= thresholds, exponentials, 0.0)
        return tf.reduce_sum(total, axis=[1, 2])

    return _counting_selection(similarities, k, negative_keys, kept_sums)


def _counting_selection(values, k, block_keys, block_sums=None):
    """`(counting_kth_largest, sums)` of the keys `block_keys(block,
    first_row)` gives for each block of rows of `values`; the sums are
    `block_sums(keys, selected_keys)`, taken while the block is in cache
    (zeros without it)."""
    rows, columns = tf.shape(values)[0], tf.shape(values)[1]
    ranks = tf.broadcast_to(k, [rows])  # k: () or (rows,)
    block_rows = tf.minimum(rows, _selection_block_rows(values, columns))
    num_blocks = (rows + block_rows - 1) // tf.maximum(block_rows, 1)

    def select_block(index, selected, sums):
        # The last block ends at the last row (overlapping its predecessor).
        first = tf.minimum(index * block_rows, rows - block_rows)
        block = tf.slice(values, [first, 0], [block_rows, _dimension(values, 1)])
        block_ranks = tf.slice(ranks, [first], [block_rows])
        keys = block_keys(block, first)
        selected_keys = _searched_selected_keys(keys, block_ranks)
        positions = (first + tf.range(block_rows))[:, None]
        selected = tf.tensor_scatter_nd_update(selected, positions, selected_keys)
        if block_sums is not None:
            sums = tf.tensor_scatter_nd_update(sums, positions, block_sums(keys, selected_keys))
        return index + 1, selected, sums

    initial = [0, tf.zeros([rows], tf.uint32), tf.zeros([rows], tf.float32)]
    _, selected, sums = tf.while_loop(lambda index, *_: index < num_blocks, select_block, initial)
    return _values_of_keys(selected), sums


def _selection_block_rows(values, columns):
    if _on_host_cpu(values):
        return tf.maximum(1, _CACHED_BLOCK_BYTES // (4 * tf.maximum(columns, 1)))
    return tf.shape(values)[0]


def _searched_selected_keys(keys, ranks):
    """The key of each row's `ranks`-th largest key, by narrowing brackets
    (the comment above `_VALUE_PASSES`)."""
    rows, columns = tf.shape(keys)[0], tf.shape(keys)[1]
    sliced = _sliced_keys(keys)

    def unfinished(bracket):
        low, high, count_low, count_above = bracket
        rank_inside, size = ranks - count_above, count_low - count_above
        return (low < high) & (rank_inside > 1) & (rank_inside < size)

    def narrow(passes, bracket):
        low, high, count_low, count_above = bracket
        rank_inside, size = ranks - count_above, count_low - count_above
        smaller, larger = _candidate_keys(passes, low, high, rank_inside, size)
        smaller_count, larger_count = _counts_at_least(sliced, smaller, larger)
        active = unfinished(bracket)
        # The bracket's new ends: the larger candidate if it counted at least
        # `ranks` keys, else the smaller one, else neither (and alike from
        # above: the smaller candidate first).
        larger_raises = active & (larger_count >= ranks)
        smaller_raises = active & (smaller_count >= ranks)
        smaller_lowers = active & (smaller_count < ranks)
        larger_lowers = active & (larger_count < ranks)
        return passes + 1, (
            tf.where(larger_raises, larger, tf.where(smaller_raises, smaller, low)),
            tf.where(smaller_lowers, smaller - 1, tf.where(larger_lowers, larger - 1, high)),
            tf.where(
                larger_raises, larger_count, tf.where(smaller_raises, smaller_count, count_low)
            ),
            tf.where(
                smaller_lowers, smaller_count, tf.where(larger_lowers, larger_count, count_above)
            ),
        )

    # Every key is >= 0; none is > the largest uint32.
    bracket = (
        tf.zeros([rows], tf.uint32),
        tf.fill([rows], tf.constant(0xFFFFFFFF, tf.uint32)),
        tf.fill([rows], columns),
        tf.zeros([rows], tf.int32),
    )
    _, bracket = tf.while_loop(
        lambda passes, bracket: tf.reduce_any(unfinished(bracket)), narrow, [0, bracket]
    )
    low, high, _, count_above = bracket
    largest, smallest = _extremes_inside(sliced, columns, low, high)
    rank_inside = ranks - count_above
    return tf.where(low == high, low, tf.where(rank_inside == 1, largest, smallest))


def _sliced_keys(keys):
    """The keys padded with 0 to whole chunks, as `(rows, chunks, slices,
    lanes)` (see `_SUMMED_SLICES`)."""
    rows, columns = tf.shape(keys)[0], tf.shape(keys)[1]
    padded = tf.pad(keys, [[0, 0], [0, (-columns) % _COUNTED_CHUNK]])
    slices = _summed_slices(keys.shape[1])
    return tf.reshape(padded, [rows, -1, slices, _COUNTED_CHUNK // slices])


def _counts_at_least(sliced, smaller, larger):
    """Each row's counts of keys at or above its two candidates (each at
    least 1, so the padding is never counted)."""
    smaller, larger = smaller[:, None, None], larger[:, None, None]
    one, field = tf.constant(1, tf.int32), tf.constant(1 << 16, tf.int32)
    zero = tf.constant(0, tf.int32)
    hits = sum(
        tf.where(sliced[:, :, part] >= smaller, one, zero)
        + tf.where(sliced[:, :, part] >= larger, field, zero)
        for part in range(sliced.shape[2])
    )
    chunk_hits = tf.reduce_sum(hits, axis=2)
    smaller_counts = tf.reduce_sum(tf.bitwise.bitwise_and(chunk_hits, 0xFFFF), axis=1)
    return smaller_counts, tf.reduce_sum(tf.bitwise.right_shift(chunk_hits, 16), axis=1)


def _extremes_inside(sliced, columns, low, high):
    """The largest and the smallest of each row's keys in `[low, high]`
    (the padding left out), also reduced slices first."""
    slices, lanes = sliced.shape[2], sliced.shape[3]
    column = tf.reshape(tf.range(tf.shape(sliced)[1] * slices * lanes), [1, -1, slices, lanes])
    low, high = low[:, None, None], high[:, None, None]
    largest, smallest = [], []
    for part in range(slices):
        keys = sliced[:, :, part]
        inside = (keys >= low) & (keys <= high) & (column[:, :, part] < columns)
        largest.append(tf.where(inside, keys, tf.constant(0, tf.uint32)))
        smallest.append(tf.where(inside, keys, tf.constant(0xFFFFFFFF, tf.uint32)))
    largest = tf.reduce_max(tf.reduce_max(functools.reduce(tf.maximum, largest), axis=2), axis=1)
    smallest = tf.reduce_min(tf.reduce_min(functools.reduce(tf.minimum, smallest), axis=2), axis=1)
    return largest, smallest


def _summed_slices(columns):
    """`_SUMMED_SLICES`, or 1 for rows known to be narrower than a chunk:
    there the selection takes about a millisecond, and the slices would add
    0.3 s to each compilation."""
    return 1 if columns is not None and columns < _COUNTED_CHUNK else _SUMMED_SLICES


def _candidate_keys(passes, low, high, rank_inside, size):
    """Two keys in each bracket `(low, high]` to count next, the smaller
    first: interpolated and halfway in value space, or halfway and three
    quarters of the way in key space (the comment above `_VALUE_PASSES`)."""
    low_value, high_value = _values_of_keys(low), _values_of_keys(high)
    # rank_inside of the size keys in the bracket are at or above the answer.
    above = (tf.cast(rank_inside, tf.float32) - 0.5) / tf.cast(size, tf.float32)
    interpolated = high_value - (high_value - low_value) * above
    halfway = 0.5 * low_value + 0.5 * high_value
    by_value = tf.math.is_finite(low_value) & tf.math.is_finite(high_value)
    by_value &= passes < _VALUE_PASSES
    first, second = [
        tf.where(by_value, tf.minimum(tf.maximum(_order_keys(value), low + 1), high), key)
        for value, key in (
            (interpolated, low + (high - low) // 2 + 1),
            (halfway, low + (high - low) // 4 * 3 + 1),
        )
    ]
    return tf.minimum(first, second), tf.maximum(first, second)


def _block_gradients(rows, first_row, candidates, similarities, row_state, column_state, tau, views):
    """Gradients of `sum_i upstream_i lse_i` through some rows' entries.

    `similarities` are the rows' `_similarities`; `row_state` holds the
    rows' `(lse, upstream, thresholds or None)`, `column_state` every
    anchor's. Returns the rows' full gradient (as anchors and, through the
    symmetric term, as candidates of every anchor), the extras' gradient
    from these rows, and a share of `d tau` (the shares of all rows sum to
    it).
    """
    num_anchors = tf.shape(column_state[0])[0]
    arguments = (similarities, first_row, row_state, column_state, tau, views)
    shared_is_exact = _shift_is_exact([row_state[0], column_state[0]], tau)
    in_batch_weights, extra_weights = tf.cond(
        shared_is_exact,
        lambda: _gradient_weights(*arguments, shared_exponential=True),
        lambda: _gradient_weights(*arguments, shared_exponential=False),
    )
    in_batch_part = tf.matmul(in_batch_weights, candidates[:num_anchors])
    extra_part = tf.matmul(extra_weights, candidates[num_anchors:])
    row_grad = (in_batch_part + extra_part) / tau
    extra_grad = tf.matmul(extra_weights, rows, transpose_a=True) / tau
    # d tau = -sum_ij W_ij s_ij / tau^2, where sum_j W_ij s_ij = z_i . (W C)_i
    # and, over all rows, the in-batch block of W + W^T counts each W_ij s_ij
    # twice (s is symmetric).
    weighted = 0.5 * in_batch_part + extra_part
    tau_grad = -tf.reduce_sum(rows * weighted) / tau**2
    return row_grad, extra_grad, tau_grad


def _shift_is_exact(log_denominators, tau):
    """Whether every log-denominator is at least `1 / tau - _MAX_SHIFT`: the
    condition under which shifting the logits by `1 / tau` loses nothing."""
    bound = 1.0 / tau - _MAX_SHIFT
    return tf.reduce_all([tf.reduce_all(lse >= bound) for lse in log_denominators])


@tf.function(jit_compile=True)
def _gradient_weights(
    similarities, first_row, row_state, column_state, tau, views, shared_exponential
):
    """`W + W^T` over the in-batch columns and `W` over the extras, in one
    fused pass over the rows' similarities.

    With `shared_exponential`, `W_ij = u_i exp(1/tau - lse_i) e_ij` and
    `W_ji = u_j exp(1/tau - lse_j) e_ij` share `e_ij = exp(s_ij/tau - 1/tau)`
    (exact when `_shift_is_exact`); otherwise each has its own exponential.
    """
    row_lse, row_upstream, row_thresholds = row_state
    column_lse, column_upstream, column_thresholds = column_state
    num_anchors = tf.shape(column_lse)[0]
    logits = similarities / tau
    if shared_exponential:
        exponentials = tf.exp(logits - 1.0 / tau)
        row_factors = row_upstream * tf.exp(1.0 / tau - row_lse)
        column_factors = column_upstream * tf.exp(1.0 / tau - column_lse)
        weights = row_factors[:, None] * exponentials
        transposed = column_factors[None, :] * exponentials[:, :num_anchors]
    else:
        weights = row_upstream[:, None] * tf.exp(logits - row_lse[:, None])
        in_batch_logits = logits[:, :num_anchors]
        transposed = column_upstream[None, :] * tf.exp(in_batch_logits - column_lse[None, :])
    kept = _kept(similarities, first_row, views, num_anchors, row_thresholds)
    if kept is not None:
        weights = tf.where(kept, weights, 0.0)
    # W_ji, read off s_ij: kept when anchor j keeps candidate i.
    in_batch = similarities[:, :num_anchors]
    if column_thresholds is not None:
        same_sample = _same_sample(tf.shape(in_batch), first_row, views, num_anchors)
        above = in_batch >= column_thresholds[None, :]
        transposed = tf.where(tf.logical_or(same_sample, above), transposed, 0.0)
    return weights[:, :num_anchors] + transposed, weights[:, num_anchors:]


def _dimension(tensor, axis):
    """The size of `tensor` along `axis`: a Python int where it is static.

    A constant of the XLA computations it is passed to (the hard loss's
    selection, given the anchors' count as a tensor: 100 against 70 ms at
    8,192 views on CPU), and a slice size (given -1 for a slice that starts
    at a traced offset, XLA pads the operand to twice its size in each
    dimension)."""
    size = tensor.shape[axis]
    return tf.shape(tensor)[axis] if size is None else size


def blocked_loop(num_blocks, step, initial):
    """`step(index, *state)` for every block, one block at a time (parallel
    iterations would multiply the memory)."""
    return tf.while_loop(
        lambda index, *_: index < num_blocks, step, [0, *initial], parallel_iterations=1
    )[1:]


def block_array(num_blocks, element_shape):
    """A float32 TensorArray with one entry per block, for `blocked_loop`;
    sizes in `element_shape` that are tensors (traced unknown) are left
    open."""
    static_shape = [size if isinstance(size, int) else None for size in element_shape]
    return tf.TensorArray(tf.float32, size=num_blocks, element_shape=static_shape)


def _blocked_forward(padded, transposed_candidates, tau, views, num_anchors, rank, block_size):
    """`(lse, thresholds or None)` of the padded anchors, block by block."""
    num_blocks = tf.shape(padded)[0] // block_size

    def step(index, lse, thresholds):
        first_row = index * block_size
        rows = tf.slice(padded, [first_row, 0], [block_size, _dimension(padded, 1)])
        _, block_thresholds, block_lse = _rows_forward(
            rows, first_row, transposed_candidates, tau, views, num_anchors, rank
        )
        if block_thresholds is not None:
            thresholds = thresholds.write(index, block_thresholds)
        return index + 1, lse.write(index, block_lse), thresholds

    blocks = [block_array(num_blocks, [block_size]) for _ in range(2)]
    lse, thresholds = blocked_loop(num_blocks, step, blocks)
    flat_thresholds = None if rank is None else tf.reshape(thresholds.stack(), [-1])
    return tf.reshape(lse.stack(), [-1]), flat_thresholds


def _blocked_backward(padded, extras, candidates, row_state, column_state, tau, views, block_size):
    """The gradients of the padded anchors, the extras and `tau`, block by
    block; `row_state` is padded like the anchors."""
    transposed_candidates = tf.transpose(candidates)
    num_blocks = tf.shape(padded)[0] // block_size

    def step(index, row_grads, extra_grad, tau_grad):
        first_row = index * block_size
        rows = tf.slice(padded, [first_row, 0], [block_size, _dimension(padded, 1)])
        block_state = [
            None if state is None else tf.slice(state, [first_row], [block_size])
            for state in row_state
        ]
        similarities = _similarities(rows, first_row, transposed_candidates)
        block_row_grad, block_extra_grad, block_tau_grad = _block_gradients(
            rows, first_row, candidates, similarities, block_state, column_state, tau, views
        )
        return (
            index + 1,
            row_grads.write(index, block_row_grad),
            extra_grad + tf.ensure_shape(block_extra_grad, extras.shape),
            tau_grad + block_tau_grad,
        )

    initial = [
        block_array(num_blocks, [block_size, padded.shape[1]]),
        tf.zeros_like(extras),
        tf.zeros_like(tau),
    ]
    row_grads, extra_grad, tau_grad = blocked_loop(num_blocks, step, initial)
    return tf.reshape(row_grads.stack(), tf.shape(padded)), extra_grad, tau_grad


def _detached(*tensors):
    """The inputs without gradient tracking: the custom gradient is the only
    one, and a recording tape would make the block loops keep every
    iteration's intermediates."""
    return [tf.stop_gradient(tensor) for tensor in tensors]


def _dense_log_denominators(anchors, extras, tau, views, rank):
    @tf.custom_gradient
    def run(anchors, extras, tau):
        anchors, extras, tau = _detached(anchors, extras, tau)
        num_anchors = _dimension(anchors, 0)
        candidates = tf.concat([anchors, extras], axis=0)
        similarities, thresholds, lse = _rows_forward(
            anchors, 0, tf.transpose(candidates), tau, views, num_anchors, rank
        )

        def gradient(upstream):
            state = (lse, upstream, thresholds)
            return _block_gradients(
                anchors, 0, candidates, similarities, state, state, tau, views
            )

        return lse, gradient

    return run(anchors, extras, tau)


def _blocked_log_denominators(anchors, extras, tau, views, rank, block_size):
    @tf.custom_gradient
    def run(anchors, extras, tau):
        anchors, extras, tau = _detached(anchors, extras, tau)
        num_anchors = _dimension(anchors, 0)
        padding = -num_anchors % block_size
        padded = tf.pad(anchors, [[0, padding], [0, 0]])
        candidates = tf.concat([anchors, extras], axis=0)

        def rows_forward():
            return _blocked_forward(
                padded, tf.transpose(candidates), tau, views, num_anchors, rank, block_size
            )

        banded = rank is None
        if banded:
            banded_lse = _banded_forward(anchors, extras, tau, block_size)
            use_bands = _shift_is_exact([banded_lse], tau)
            lse = tf.cond(
                use_bands,
                lambda: tf.pad(banded_lse, [[0, padding]]),
                lambda: rows_forward()[0],
            )
            thresholds = None
        else:
            lse, thresholds = rows_forward()

        def gradient(upstream):
            def rows_backward():
                row_state = (lse, tf.pad(upstream, [[0, padding]]), thresholds)
                column_state = [
                    None if state is None else state[:num_anchors] for state in row_state
                ]
                row_grad, extra_grad, tau_grad = _blocked_backward(
                    padded, extras, candidates, row_state, column_state, tau, views, block_size
                )
                return row_grad[:num_anchors], extra_grad, tau_grad

            if banded:
                return tf.cond(
                    use_bands,
                    lambda: _banded_backward(
                        anchors, extras, tau, lse[:num_anchors], upstream, block_size
                    ),
                    rows_backward,
                )
            return rows_backward()

        return lse[:num_anchors], gradient

    return run(anchors, extras, tau)


class _Bands:
    """The banded form of InfoNCE's blocked path: each pair once.

    Block `b` of `block_size` anchors (rows `r = b * block_size...`) meets
    the `width = block_size + A // 2` anchors from its first row on
    (wrapped past the last anchor) and the extras. Anchor `i` keeps the
    pairs `(i, j)` with `j = i + d (mod A)`, `1 <= d <= A // 2` (for even
    `A`, `d = A / 2` only when `i < A / 2`), so every in-batch pair is
    computed once and its term added to the sums (or gradients) of both
    anchors: half of the row-block form's products and exponentials.

    Per-anchor results are built on an unwrapped frame of positions (the
    block's first row plus the column): each block adds its window
    (`(channels, width)`, the column sums or `Z^T W`) to the `width`
    positions pending from its first row on, after which its own
    `block_size` positions are finished and get its own part (`(block_size,
    channels)`, the row sums or `W C`); `fold` maps the frame back to the
    anchors.

    Each loop is one XLA computation, also when the caller is not compiled
    by XLA (the log-denominators' forward and backward at 8,192 views on
    CPU: 242-250 ms, against 272-278 ms with separately compiled steps).
    Two things once made such a loop slower than row blocks: a slice fused
    into the weights pass (no longer vectorised: 4.7 vs 0.5 ms a block), and
    products given a transposed operand by XLA folding a transpose into
    them (`transpose(W C)`: 8.5 vs 4.0 ms). So the window's factors are
    carried from block to block, the rows' transpose is sliced from the
    transposed frame, and the own part stays in row layout.
    """

    def __init__(self, anchors, extras, block_size):
        self.block_size = block_size
        self.num_anchors = tf.shape(anchors)[0]
        self.channels = _dimension(anchors, 1)
        self.width = block_size + self.num_anchors // 2
        self.num_blocks = (self.num_anchors + block_size - 1) // block_size
        self.frame_length = self.num_blocks * block_size + self.width
        self.anchors = self.in_frame(anchors)
        self.transposed_anchors = tf.transpose(self.anchors)
        self.extras = extras

    def in_frame(self, per_anchor):
        """Per-anchor values at every position of the frame."""
        copies = (self.frame_length + self.num_anchors - 1) // self.num_anchors
        trailing = [1] * (per_anchor.shape.rank - 1)
        return tf.tile(per_anchor, [copies, *trailing])[: self.frame_length]

    def block(self, index):
        """`(first_row, rows)`: a block's first row and its anchors."""
        first_row = index * self.block_size
        rows = tf.slice(self.anchors, [first_row, 0], [self.block_size, self.channels])
        return first_row, rows

    def transposed_rows(self, first_row):
        """The block's anchors, transposed (a slice of the transposed frame:
        XLA would fold a transpose into the product that takes it, and a
        product with a transposed operand runs slower on CPU)."""
        return tf.slice(self.transposed_anchors, [0, first_row], [self.channels, self.block_size])

    def candidates(self, first_row):
        """The block's candidates, `(width + extras, channels)`: the
        window's anchors, then the extras."""
        band = tf.slice(self.anchors, [first_row, 0], [self.width, self.channels])
        return band if self.extras.shape[0] == 0 else tf.concat([band, self.extras], axis=0)

    def transposed_candidates(self, first_row):
        """`candidates`, transposed (from the transposed frame: no
        transpose a block)."""
        band = tf.slice(self.transposed_anchors, [0, first_row], [self.channels, self.width])
        if self.extras.shape[0] == 0:
            return band
        return tf.concat([band, tf.transpose(self.extras)], axis=1)

    def run(self, step, channels, state):
        """Every block through `step(first_row, rows, *state)`, which
        returns the block's `(channels, width)` window, its `(block_size,
        channels)` own part (added to the window's first positions), and
        the next `state` (a list). Returns the per-anchor totals `(anchors,
        channels)` and the final state."""

        def loop_step(index, finished, pending, *state):
            window, own_part, state = step(*self.block(index), *state)
            done, pending = _advance(pending, window, own_part)
            return [index + 1, finished.write(index, done), pending, *state]

        initial = [
            block_array(self.num_blocks, [self.block_size, channels]),
            tf.zeros([channels, self.width]),
            *state,
        ]
        finished, pending, *state = blocked_loop(self.num_blocks, loop_step, initial)
        return self.fold(finished.stack(), pending), state

    def fold(self, finished, pending):
        """The frame's totals (the finished blocks' `(blocks, block_size,
        channels)`, then the pending `(channels, width)`), summed onto
        their anchors: `(anchors, channels)`."""
        channels = tf.shape(pending)[0]
        finished = tf.reshape(finished, [-1, channels])
        frame = tf.concat([finished, tf.transpose(pending)], axis=0)
        copies = (self.frame_length + self.num_anchors - 1) // self.num_anchors
        frame = tf.pad(frame, [[0, copies * self.num_anchors - self.frame_length], [0, 0]])
        per_copy = tf.reshape(frame, [copies, self.num_anchors, channels])
        return tf.reduce_sum(per_copy, axis=0)


def _advance(pending, window, own_part):
    """Adds a block's window to the pending positions; returns the block's
    finished positions with its own part added, `(block_size, channels)`,
    and the next block's pending ones."""
    block_size = tf.shape(own_part)[0]
    width = tf.shape(pending)[1]
    total = pending + window[:, :width]
    finished = tf.transpose(total[:, :block_size]) + own_part
    return finished, tf.pad(total[:, block_size:], [[0, 0], [0, block_size]])


def _band_exponentials(rows, transposed_candidates, first_row, num_anchors, tau):
    """`exp(s_ij / tau - 1 / tau)` over the pairs the band keeps (see
    `_Bands`), zero elsewhere (padding rows included)."""
    half = num_anchors // 2
    width = tf.shape(rows)[0] + half
    row = tf.range(tf.shape(rows)[0])[:, None]
    column = tf.range(tf.shape(transposed_candidates)[1])[None, :]
    offset = column - row
    anchor = first_row + row
    opposite_twice = (2 * half == num_anchors) & (offset == half) & (anchor >= half)
    in_band = (offset >= 1) & (offset <= half) & tf.logical_not(opposite_twice)
    kept = (anchor < num_anchors) & ((column >= width) | in_band)
    logits = tf.matmul(rows, transposed_candidates) / tau
    return tf.where(kept, tf.exp(logits - 1.0 / tau), 0.0)


def _band_sums(rows, transposed_candidates, first_row, num_anchors, tau):
    """The block's shifted sums over its candidates' columns `(1, width +
    extras)` and its rows `(block_size, 1)`: each kept pair's exponential
    counts for both of its anchors."""
    arguments = (rows, transposed_candidates, first_row, num_anchors, tau)
    exponentials = _band_exponentials(*arguments)
    column_sums = tf.reduce_sum(exponentials, axis=0, keepdims=True)
    return column_sums, tf.reduce_sum(exponentials, axis=1, keepdims=True)


def _band_weights(rows, transposed_candidates, first_row, num_anchors, window_factors, tau):
    """`W_ij + W_ji` over the block's kept pairs (`W_ij` alone for the
    extras), `W_ij = f_i e_ij` with `f = u exp(1/tau - lse)`; the window's
    factors come first in `window_factors`, zeros for the extras after."""
    arguments = (rows, transposed_candidates, first_row, num_anchors, tau)
    exponentials = _band_exponentials(*arguments)
    row_factors = window_factors[: tf.shape(rows)[0]]
    return (row_factors[:, None] + window_factors[None, :]) * exponentials


@tf.function(jit_compile=True)
def _banded_forward(anchors, extras, tau, block_size):
    """InfoNCE's `lse` by bands (`_Bands`), or values `_shift_is_exact`
    rejects."""
    bands = _Bands(anchors, extras, block_size)

    def step(first_row, rows):
        transposed_candidates = bands.transposed_candidates(first_row)
        column_sums, row_sums = _band_sums(
            rows, transposed_candidates, first_row, bands.num_anchors, tau
        )
        return column_sums, row_sums, []

    totals, _ = bands.run(step, 1, [])
    return 1.0 / tau + tf.math.log(totals[:, 0])


@tf.function(jit_compile=True)
def _banded_backward(anchors, extras, tau, lse, upstream, block_size):
    """The gradients of `sum_i u_i lse_i` by bands: per block, `(W + W^T) C`
    for its rows and `Z^T (W + W^T)` for its window's anchors and the
    extras, two products of half the row-block form's size."""
    bands = _Bands(anchors, extras, block_size)
    factors = bands.in_frame(upstream * tf.exp(1.0 / tau - lse))
    padding = [[0, tf.shape(extras)[0]]]

    # Carried from block to block: sliced inside the weights pass, the
    # slice would be fused into it and keep it from being vectorised.
    def factors_from(first_row):
        return tf.pad(tf.slice(factors, [first_row], [bands.width]), padding)

    def step(first_row, rows, extra_grad, weighted_sum, window_factors):
        weights = _band_weights(
            rows,
            bands.transposed_candidates(first_row),
            first_row,
            bands.num_anchors,
            window_factors,
            tau,
        )
        row_part = tf.matmul(weights, bands.candidates(first_row))
        column_part = tf.matmul(bands.transposed_rows(first_row), weights)
        extra_part = tf.ensure_shape(tf.transpose(column_part[:, bands.width :]), extras.shape)
        # sum_ij (W_ij + W_ji) s_ij over the kept pairs.
        state = [
            extra_grad + extra_part,
            weighted_sum + tf.reduce_sum(rows * row_part),
            tf.ensure_shape(factors_from(first_row + bands.block_size), window_factors.shape),
        ]
        return column_part, row_part, state

    state = [tf.zeros_like(extras), tf.zeros_like(tau), factors_from(0)]
    totals, (extra_grad, weighted_sum, _) = bands.run(step, bands.channels, state)
    return totals / tau, extra_grad / tau, -weighted_sum / tau**2
