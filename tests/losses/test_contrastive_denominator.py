"""The fused log-denominator: NumPy references for values and gradients, the
exact selection, and equality with the general kernel it replaces."""

import numpy as np
import pytest
import tensorflow as tf

from keras_contrastive import losses
from keras_contrastive.losses import contrastive_denominator
from keras_contrastive.losses import contrastive_utils
from tests.backends import tensorflow_only
from tests.losses import numpy_reference

# The fused kernel is TensorFlow's; on JAX the losses run the masked kernel,
# whose tests run on both backends.
pytestmark = tensorflow_only


def reference(anchors, extras, tau, views, rank, upstream):
    """lse and the gradients of `sum_i u_i lse_i`, in float64, the textbook way
    (`dZ = W C + (W^T Z)[:A]`, no use of symmetry)."""
    anchors, extras = anchors.astype("float64"), extras.astype("float64")
    candidates = np.concatenate([anchors, extras])
    num_anchors = len(anchors)
    similarities = anchors @ candidates.T
    sample = np.arange(num_anchors) // views
    kept = np.ones_like(similarities, dtype=bool)
    for i in range(num_anchors):
        kept[i, i] = False
        positive = np.zeros(len(candidates), bool)
        positive[:num_anchors] = sample == sample[i]
        positive[i] = False
        negative = ~positive
        negative[i] = False
        if rank is not None:
            ordered = np.sort(similarities[i, negative])[::-1]
            threshold = ordered[min(rank, len(ordered)) - 1]
            kept[i] = positive | (negative & (similarities[i] >= threshold))
    logits = np.where(kept, similarities / tau, -np.inf)
    peak = logits.max(axis=1, keepdims=True)
    lse = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
    weights = upstream[:, None] * np.exp(logits - lse[:, None])
    candidate_grad = weights.T @ anchors / tau
    anchor_grad = weights @ candidates / tau + candidate_grad[:num_anchors]
    tau_grad = -(weights * similarities).sum() / tau**2
    return lse, anchor_grad, candidate_grad[num_anchors:], tau_grad


def compute(anchors, extras, tau, views, rank, upstream, block_size, xla=False, known_shapes=True):
    """`reference`'s results from the kernel: eagerly, or traced (under XLA,
    or with the anchors' and extras' shapes unknown when traced)."""

    def run(anchors, extras, tau):
        with tf.GradientTape() as tape:
            tape.watch([anchors, extras, tau])
            lse = contrastive_denominator.log_denominators(
                anchors, extras, tau, views, rank, block_size
            )
            total = tf.reduce_sum(lse * upstream)
        return [lse] + tape.gradient(total, [anchors, extras, tau])

    if xla or not known_shapes:
        signature = None
        if not known_shapes:
            rows = tf.TensorSpec([None, None])
            signature = [rows, rows, tf.TensorSpec([])]
        run = tf.function(run, input_signature=signature, jit_compile=xla)
    tensors = [tf.constant(anchors), tf.constant(extras), tf.constant(tau, tf.float32)]
    return [t.numpy() for t in run(*tensors)]


def unit_rows(rng, count, clustered=False):
    x = rng.normal(size=(count, 8))
    if clustered:  # many near-ties, as in a collapsing encoder
        x = x[:, :1] * 3 + 0.05 * x
    return numpy_reference.normalize(x).astype("float32")


@pytest.mark.parametrize("rank", [None, 1, 4, 1000])
@pytest.mark.parametrize("views, num_extras", [(2, 0), (2, 5), (3, 4)])
# 14 or 21 anchors: InfoNCE's bands for an even and an odd count, blocks
# of one anchor, blocks not dividing the count, one block wider than all.
@pytest.mark.parametrize("block_size", [None, 1, 3, 64])
@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_matches_the_numpy_reference(rng, rank, views, num_extras, block_size, tau):
    anchors = unit_rows(rng, 7 * views)
    extras = unit_rows(rng, num_extras)
    upstream = rng.uniform(0.5, 2.0, size=len(anchors)).astype("float32")
    expected = reference(anchors, extras, tau, views, rank, upstream)
    got = compute(anchors, extras, tau, views, rank, upstream, block_size)
    for name, a, b in zip(["lse", "anchors", "extras", "tau"], expected, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("numpy_selects_faster", [True, False])
@pytest.mark.parametrize("block_size", [None, 3])
@pytest.mark.parametrize("views", [2, 3])
def test_the_loss_counts_on_the_host_whichever_selection_is_faster(
    monkeypatch, rng, numpy_selects_faster, block_size, views
):
    """Outside XLA on the CPU the loss's thresholds come from the counting
    selection (which also sums the kept exponentials) even where NumPy's
    partition alone selects faster: no host callback, values exact."""
    monkeypatch.setattr(contrastive_denominator, "_numpy_selects_faster", lambda: numpy_selects_faster)
    anchors, extras = unit_rows(rng, 7 * views, clustered=True), unit_rows(rng, 5)
    upstream = rng.uniform(0.5, 2.0, size=len(anchors)).astype("float32")

    def forward(anchors, extras):
        return contrastive_denominator.log_denominators(anchors, extras, 0.1, views, 4, block_size)

    ops = selection_ops(forward, tf.TensorSpec(anchors.shape), tf.TensorSpec(extras.shape))
    assert not {"PyFunc", "PyFuncStateless", "EagerPyFunc"} & ops
    expected = reference(anchors, extras, 0.1, views, 4, upstream)
    got = compute(anchors, extras, 0.1, views, 4, upstream, block_size)
    for name, a, b in zip(["lse", "anchors", "extras", "tau"], expected, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=name)


def test_the_host_selection_is_the_faster_one_timed(monkeypatch):
    """The calibration times the counting selection, then NumPy's partition, on
    the same matrix (both exact there), and picks the faster."""
    calls = []

    def timed(run):
        calls.append(run())
        return timings[len(calls) - 1]

    monkeypatch.setattr(contrastive_denominator, "_best_seconds", timed)
    rows, columns = contrastive_denominator._CALIBRATION_SHAPE
    for timings, numpy_faster in [((0.2, 0.1), True), ((0.1, 0.2), False)]:
        calls.clear()
        assert contrastive_denominator._numpy_selects_faster.__wrapped__() is numpy_faster
        counting, partition = calls
        assert counting.shape == partition.shape == (rows,)
        np.testing.assert_array_equal(counting, partition)
    monkeypatch.undo()
    assert contrastive_denominator._numpy_selects_faster.__wrapped__() in (True, False)  # timed


@pytest.mark.parametrize("rank", [None, 5])
@pytest.mark.parametrize("block_size", [None, 4])
def test_under_xla_matches_the_numpy_reference(rng, rank, block_size):
    """Inside XLA the threshold comes from the counting selection, not NumPy."""
    anchors, extras = unit_rows(rng, 18, clustered=True), unit_rows(rng, 6)
    upstream = np.ones(18, "float32")
    expected = reference(anchors, extras, 0.1, 2, rank, upstream)
    got = compute(anchors, extras, 0.1, 2, rank, upstream, block_size, xla=True)
    for name, a, b in zip(["lse", "anchors", "extras", "tau"], expected, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("xla", [False, True])
@pytest.mark.parametrize("rank", [None, 5])
@pytest.mark.parametrize("block_size", [None, 4])
def test_unknown_shapes_match_the_numpy_reference(rng, rank, block_size, xla):
    """Traced with the batch size and the embedding dimension unknown, the
    kernels take the sizes the traced shapes leave open from the tensors
    (elsewhere they are constants of the compiled computations)."""
    anchors, extras = unit_rows(rng, 18, clustered=True), unit_rows(rng, 6)
    upstream = np.linspace(0.5, 2.0, 18).astype("float32")
    expected = reference(anchors, extras, 0.1, 2, rank, upstream)
    got = compute(anchors, extras, 0.1, 2, rank, upstream, block_size, xla, known_shapes=False)
    for name, a, b in zip(["lse", "anchors", "extras", "tau"], expected, got):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("xla", [False, True])
@pytest.mark.parametrize("block_size", [None, 4])
@pytest.mark.parametrize("rank", [None, 5])
def test_far_below_the_bound_falls_back_to_the_row_maximum(rng, block_size, xla, rank):
    """At tau 0.01 with nearly orthogonal embeddings (similarities under
    0.1) the one-pass logsumexp and the gradient's shared exponential,
    shifted by 1 / tau, would underflow (below e^-90), and the blocked path's
    bands, which need that shift, give way to row blocks (inside an XLA
    computation too); so do the hard loss's sums taken in its selection
    (under XLA); the result must stay exact."""
    orthogonal = np.linalg.qr(rng.normal(size=(64, 16)))[0].T
    anchors = numpy_reference.normalize(orthogonal + 0.01 * rng.normal(size=(16, 64)))
    anchors = anchors.astype("float32")
    assert np.abs(anchors @ anchors.T - np.eye(16)).max() < 0.1
    upstream = np.ones(16, "float32")
    expected = reference(anchors, np.zeros((0, 64), "float32"), 0.01, 2, rank, upstream)
    got = compute(anchors, np.zeros((0, 64), "float32"), 0.01, 2, rank, upstream, block_size, xla)
    for name, a, b in zip(["lse", "anchors", "extras", "tau"], expected, got):
        assert np.all(np.isfinite(b)), name
        # Gradients carry 1 / tau = 100, and float32 rounding with it.
        atol = 1e-5 if name == "lse" else 1e-6 / 0.01
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=atol, err_msg=name)


def kth_largest_cases(rng):
    random = rng.normal(size=(6, 40)).astype("float32")
    ties = np.round(random * 2) / 2
    special = np.array(
        [[-np.inf, -0.0, 0.0, 1e-40, -1e-40, np.inf, 3.0, -3.0]] * 3, "float32"
    )
    equal = np.full((2, 9), 0.25, "float32")
    return [random, ties, special, equal, -np.abs(random)]


@pytest.mark.parametrize("xla", [False, True])
def test_kth_largest_is_exact(rng, xla):
    select = contrastive_denominator.kth_largest
    if xla:
        select = tf.function(select, jit_compile=True)
    for values in kth_largest_cases(rng):
        descending = -np.sort(-values, axis=1)
        for k in sorted({1, 2, values.shape[1] // 2, values.shape[1]}):
            got = select(tf.constant(values), tf.constant(k)).numpy()
            np.testing.assert_array_equal(got, descending[:, k - 1], err_msg=f"k={k}")


def test_kth_largest_takes_one_rank_per_row(rng):
    values = rng.normal(size=(5, 12)).astype("float32")
    ranks = np.array([1, 12, 3, 7, 3], "int32")
    expected = -np.sort(-values, axis=1)[np.arange(5), ranks - 1]
    got = contrastive_denominator.kth_largest(tf.constant(values), tf.constant(ranks))
    np.testing.assert_array_equal(got, expected)


def test_counting_selection_equals_the_partition(rng):
    for values in kth_largest_cases(rng):
        for k in [1, 3, values.shape[1]]:
            counting = contrastive_denominator.counting_kth_largest(values, k)
            partition = contrastive_denominator.kth_largest(tf.constant(values), k)
            np.testing.assert_array_equal(counting, partition)


@pytest.mark.parametrize("on_host_cpu", [True, False])
def test_counting_selection_is_exact_across_blocks_and_count_chunks(monkeypatch, rng, on_host_cpu):
    """Rows in several blocks (the last overlapping its predecessor, on a
    CPU) or in one (elsewhere); columns in several counting chunks, the last
    padded (never counted, never the smallest), with whole chunks of equal
    keys counted; NaN, infinities, signed zeros, denormals and values whose
    differences overflow ordered as their bits; one rank per row."""
    columns = 2 * contrastive_denominator._COUNTED_CHUNK + 276
    monkeypatch.setattr(contrastive_denominator, "_CACHED_BLOCK_BYTES", 4 * columns * 3)
    monkeypatch.setattr(contrastive_denominator, "_on_host_cpu", lambda values: on_host_cpu)
    values, ranks = numpy_reference.awkward_selection_case(rng, columns)
    expected = numpy_reference.kth_largest_by_bits(values, ranks)
    # Traced anew: the function's cached traces hold the unpatched blocks.
    select = tf.function(contrastive_denominator.counting_kth_largest.python_function, jit_compile=True)
    got = select(tf.constant(values), tf.constant(ranks))
    np.testing.assert_array_equal(got.numpy().view("uint32"), expected.view("uint32"))


@pytest.mark.parametrize("value_passes", [0, 3])
def test_counting_selection_is_exact_when_the_key_space_search_takes_over(
    monkeypatch, rng, value_passes
):
    """After `_VALUE_PASSES` passes (from the first, or mid-search) the
    candidates split the keys at a half and three quarters instead: still
    exact, on every awkward row."""
    monkeypatch.setattr(contrastive_denominator, "_VALUE_PASSES", value_passes)
    values, ranks = numpy_reference.awkward_selection_case(rng, 700)
    expected = numpy_reference.kth_largest_by_bits(values, ranks)
    # Traced anew: the function's cached traces hold the unpatched constant.
    select = tf.function(contrastive_denominator.counting_kth_largest.python_function, jit_compile=True)
    got = select(tf.constant(values), tf.constant(ranks))
    np.testing.assert_array_equal(got.numpy().view("uint32"), expected.view("uint32"))


@pytest.mark.parametrize("on_host_cpu", [True, False])
def test_counting_thresholds_mask_each_blocks_positives(monkeypatch, rng, on_host_cpu):
    """The loss's counting thresholds put each row's positives at `-inf` as the
    rows' place in the matrix says: rows from `first_row` on, the last ones
    padding (nobody's positive), in several selection blocks; tied values.
    The sums beside them: each row's `exp(s / tau - 1 / tau)` over its
    negatives at or above its threshold."""
    views, num_anchors, first_row, k, tau = 3, 20, 8, 10, 0.5
    similarities = np.round(rng.normal(size=(15, 27)), 1).astype("float32")
    monkeypatch.setattr(contrastive_denominator, "_CACHED_BLOCK_BYTES", 4 * 27 * 4)
    monkeypatch.setattr(contrastive_denominator, "_on_host_cpu", lambda values: on_host_cpu)
    rows = first_row + np.arange(15)[:, None]
    columns = np.arange(27)[None, :]
    positive = (rows // views == columns // views) & (rows < num_anchors) & (columns < num_anchors)
    negatives = np.where(positive, -np.inf, similarities).astype("float32")
    expected = numpy_reference.kth_largest_by_bits(negatives, np.full(15, k))
    kept = negatives >= expected[:, None]
    expected_sums = np.where(kept, np.exp(negatives.astype("float64") / tau - 1 / tau), 0.0).sum(1)
    # Traced anew: the function's cached traces hold the unpatched blocks.
    select = tf.function(
        contrastive_denominator._counting_thresholds_and_kept_sums.python_function,
        jit_compile=True,
    )
    got, sums = select(tf.constant(similarities), tf.constant(k), first_row, views, num_anchors, tau)
    np.testing.assert_array_equal(got.numpy(), expected)
    np.testing.assert_allclose(sums.numpy(), expected_sums, rtol=1e-5)


def test_partition_is_exact_when_denormals_compare_as_zero(monkeypatch, rng):
    """Threads in TensorFlow's denormals-are-zero mode see `1e-40 == 0`;
    emulated here by flushing before the float partition."""
    float_partition = contrastive_denominator._partitioned

    def flushing_partition(rows, position):
        tiny = np.abs(rows) < np.finfo(np.float32).tiny
        return float_partition(np.where(tiny, 0.0, rows).astype("float32"), position)

    monkeypatch.setattr(contrastive_denominator, "_partitioned", flushing_partition)
    for values in kth_largest_cases(rng):
        # Descending, with -0.0 ordered just below 0.0 (as the counting selection).
        descending = np.stack(
            [row[np.lexsort((~np.signbit(row), row))][::-1] for row in values]
        )
        for k in range(1, values.shape[1] + 1):
            got = contrastive_denominator.partitioned_kth_largest(values, k)
            expected = descending[:, k - 1]
            assert np.array_equal(got.view("int32"), expected.view("int32")), f"k={k}"


def test_partition_splits_rows_into_tasks(monkeypatch, rng):
    """Rows are selected in chunks on a thread pool; chunks that do not
    divide the rows must not lose or shift any, and the input (TensorFlow's
    buffer) must not be reordered."""
    monkeypatch.setattr(contrastive_denominator, "_SELECTION_TASK_BYTES", 3 * 4 * 50)
    values = rng.normal(size=(17, 50)).astype("float32")
    original = values.copy()
    for k in [1, 7, 50]:
        expected = -np.sort(-values, axis=1)[:, k - 1]
        got = contrastive_denominator.partitioned_kth_largest(values, k)
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(values, original)


FUNCTIONS = {
    "info_nce": (losses.info_nce, {}),
    "hard_k": (losses.hard_contrastive_loss, {"num_negatives": 6}),
    "hard_alpha": (losses.hard_contrastive_loss, {"alpha": 0.3}),
}


def loss_and_gradients(name, y_pred, extra, tau, block_size):
    functional, selection = FUNCTIONS[name]
    y_pred, extra, tau = tf.constant(y_pred), tf.constant(extra), tf.constant(tau)
    with tf.GradientTape() as tape:
        tape.watch([y_pred, extra, tau])
        per_sample = functional(
            None, y_pred, tau=tau, extra_negatives=extra, block_size=block_size, **selection
        )
        total = tf.reduce_sum(per_sample * tf.range(1.0, len(per_sample) + 1.0))
    return [per_sample.numpy()] + [g.numpy() for g in tape.gradient(total, [y_pred, extra, tau])]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("block_size", [None, 5])
@pytest.mark.parametrize("clustered", [False, True])
def test_fast_path_equals_the_general_kernel(monkeypatch, rng, name, block_size, clustered):
    """Loss values and gradients (embeddings, extras, tau) of the fused path
    equal those of the masked kernel differentiated by TensorFlow."""
    y_pred = unit_rows(rng, 18, clustered).reshape(9, 2, 8) * 3.0
    extra = unit_rows(rng, 7)
    fast = loss_and_gradients(name, y_pred, extra, 0.1, block_size)
    monkeypatch.setattr(contrastive_utils, "_is_plain_contrastive", lambda *_: False)
    general = loss_and_gradients(name, y_pred, extra, 0.1, block_size)
    for a, b in zip(general, fast):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def selection_ops(function, *arguments):
    """The op types of the graph `function` traces for `arguments`."""
    graph = tf.function(function).get_concrete_function(*arguments).graph
    return {op.type for op in graph.get_operations()}


@pytest.mark.parametrize("numpy_selects_faster", [True, False])
@pytest.mark.parametrize("device", ["/CPU:0", "/GPU:0", "/TPU:0"])
def test_the_selection_path_follows_the_tensors_device(monkeypatch, rng, device, numpy_selects_faster):
    """NumPy selects for tensors on the CPU, where it is the faster."""
    monkeypatch.setattr(contrastive_denominator, "_numpy_selects_faster", lambda: numpy_selects_faster)
    values = rng.normal(size=(6, 40)).astype("float32")

    def select(v):
        with tf.device(device):  # soft placement runs it here on the CPU
            return contrastive_denominator.kth_largest(tf.identity(v), tf.constant(5))

    host_callback = {"PyFunc", "PyFuncStateless", "EagerPyFunc"} & selection_ops(select, tf.TensorSpec((6, 40)))
    assert bool(host_callback) == (device == "/CPU:0" and numpy_selects_faster)
    np.testing.assert_array_equal(tf.function(select)(values), -np.sort(-values, axis=1)[:, 4])


@pytest.mark.parametrize("missing", ["control_flow_util", "save_context"])
def test_without_the_private_apis_the_kernels_take_the_paths_that_run_everywhere(monkeypatch, rng, missing):
    """A TensorFlow without the private APIs: the selection is the counting one
    (no host callback), and the losses' values and gradients are unchanged."""
    y_pred = unit_rows(rng, 18).reshape(9, 2, 8)
    extra = unit_rows(rng, 7)
    arguments = [(name, block_size) for name in FUNCTIONS for block_size in (None, 5)]
    expected = [loss_and_gradients(name, y_pred, extra, 0.1, block_size) for name, block_size in arguments]
    monkeypatch.setattr(contrastive_denominator, missing, None)
    monkeypatch.setattr(contrastive_denominator, "_numpy_selects_faster", lambda: True)
    host_callback = {"PyFunc", "PyFuncStateless", "EagerPyFunc"} & selection_ops(
        lambda v: contrastive_denominator.kth_largest(v, tf.constant(5)), tf.TensorSpec((6, 40))
    )
    assert not host_callback
    for (name, block_size), before in zip(arguments, expected):
        after = loss_and_gradients(name, y_pred, extra, 0.1, block_size)
        for a, b in zip(before, after):  # other paths: float32 rounding of the largest entry
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5 * np.abs(a).max())


def test_a_saved_hard_loss_restores_in_another_process(rng, tmp_path):
    import subprocess
    import sys

    y_pred = rng.normal(size=(8, 2, 6)).astype("float32")
    loss = losses.HardContrastiveLoss(tau=0.2, num_negatives=5)
    module = tf.Module()
    module.loss = tf.function(lambda y: loss(None, y), input_signature=[tf.TensorSpec((None, 2, 6))])
    tf.saved_model.save(module, str(tmp_path / "loss"))
    np.save(tmp_path / "y.npy", y_pred)
    script = (
        "import sys, numpy as np, tensorflow as tf;"
        "m = tf.saved_model.load(sys.argv[1]);"
        "print(float(m.loss(np.load(sys.argv[2]))))"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "loss"), str(tmp_path / "y.npy")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert float(result.stdout.strip().splitlines()[-1]) == pytest.approx(float(loss(None, y_pred)), rel=1e-5)
