"""Loss forward+backward time and peak memory against the matmul floor.

For each global batch of N samples (2N views, dim 128) and each loss path,
one subprocess measures, in the same process and so under the same load:

- the floor: the three matrix products a contrastive loss cannot avoid,
  the forward `Z Z^T` and the two backward products `G Z` and `G^T Z`
  (in row blocks of 4,096, the same FLOPs);
- the loss's forward and backward pass (the gradient w.r.t. the
  embeddings), median of several runs, timed in turns with the floor (a
  slow stretch of the machine weighs on both) after untimed rounds of
  both (tracing, compilation, and the loss's slow first runs after the
  floor's);
- the peak memory the loss adds (resident memory; on a GPU, the device's
  allocator peak), against one N x N float32 matrix.

Paths ending in `_jax` run the same loss on the JAX backend (`jax.jit` of
its value and gradient, against the floor's products under `jax.jit`).

    python benchmarks/loss_benchmark.py            # N in 256, 1024, 4096, 16384
    python benchmarks/loss_benchmark.py --quick    # one small N, for CI
    python benchmarks/loss_benchmark.py --selection  # the hard loss's threshold
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DIM = 128
# `label_mode="mask"` with one label per sample is the same loss through the
# general masked kernel, differentiated by TensorFlow, and selecting with
# `top_k`: the baseline of the fused path.
MASKED = {"label_mode": "mask"}
JAX = "jax"
PATHS = {
    # name: (loss, loss arguments, XLA: False, True, or JAX for the JAX
    # backend, compiled by `jax.jit`, in a `KERAS_BACKEND=jax` subprocess)
    "info_nce": ("info_nce", {}, False),
    "info_nce_xla": ("info_nce", {}, True),
    "info_nce_masked": ("info_nce", MASKED, False),
    "info_nce_masked_xla": ("info_nce", MASKED, True),
    "info_nce_blocked": ("info_nce", {"block_size": "auto"}, False),
    "info_nce_blocked_xla": ("info_nce", {"block_size": "auto"}, True),
    "hard_k4095": ("hard_contrastive_loss", {"num_negatives": 4095}, False),
    "hard_k4095_xla": ("hard_contrastive_loss", {"num_negatives": 4095}, True),
    "hard_k4095_masked": ("hard_contrastive_loss", {"num_negatives": 4095, **MASKED}, False),
    "info_nce_jax": ("info_nce", {}, JAX),
    "info_nce_blocked_jax": ("info_nce", {"block_size": "auto"}, JAX),
    "hard_k4095_jax": ("hard_contrastive_loss", {"num_negatives": 4095}, JAX),
}


# Untimed rounds of the loss and the floor in turns before the timed ones:
# the loss's first runs after the floor's are slower (presumably while memory
# settles; InfoNCE at 8,192 views on CPU: 406 and 328 ms, then 232-258).
SETTLING_ROUNDS = 2


def median_seconds(fn, repeats):
    return interleaved_median_seconds([fn], repeats, settling_rounds=1)[0]


def interleaved_median_seconds(functions, repeats, settling_rounds):
    """The median time of each function over `repeats` rounds that run each
    once in turn (a slow stretch of the machine weighs on all of them),
    after `settling_rounds` untimed rounds (the first: tracing and
    compilation)."""
    for _ in range(settling_rounds):
        for fn in functions:
            fn()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for fn, fn_times in zip(functions, times):
            start = time.perf_counter()
            fn()
            fn_times.append(time.perf_counter() - start)
    return [sorted(fn_times)[len(fn_times) // 2] for fn_times in times]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def has_gpu():
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def reset_peak_memory():
    """Starts a peak-memory measurement: the GPU's allocator statistics when
    there is a GPU, else the process's resident memory. Returns the
    baseline that `peak_memory_mb` subtracts."""
    if has_gpu():
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")
        return 0.0
    return peak_rss_mb()


def peak_memory_mb(baseline):
    if has_gpu():
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return peak_rss_mb() - baseline


def loss_and_arguments(path, samples):
    """The functional loss of a path and its arguments at `samples`."""
    from keras_contrastive import losses
    from keras_contrastive.losses.contrastive_utils import auto_block_size

    loss_name, arguments, _ = PATHS[path]
    if arguments.get("block_size") == "auto":
        arguments = {**arguments, "block_size": auto_block_size(2 * samples)}
    if loss_name == "hard_contrastive_loss":
        arguments = {**arguments, "num_negatives": min(arguments["num_negatives"], 2 * samples - 2)}
    return getattr(losses, loss_name), arguments


def embeddings(samples):
    import numpy as np

    return np.random.default_rng(0).normal(size=(samples, 2, DIM)).astype("float32")


def upstream_rows(block, views):
    import numpy as np

    return np.random.default_rng(1).normal(size=(block, views)).astype("float32")


def result_row(path, views, loss_seconds, floor_seconds, loss_peak_mb):
    flops = 3 * 2 * views * views * DIM
    return {
        "path": path,
        "views": views,
        "loss_ms": 1000 * loss_seconds,
        "floor_ms": 1000 * floor_seconds,
        "ratio": loss_seconds / floor_seconds,
        "gflops": flops / loss_seconds / 1e9,
        "peak_mb": loss_peak_mb,
        "nxn_mb": views * views * 4 / 2**20,
    }


def measure(path, samples, repeats):
    """Runs in a subprocess: returns the timings and memory of one path."""
    if PATHS[path][2] == JAX:
        return measure_jax(path, samples, repeats)
    import tensorflow as tf

    functional, arguments = loss_and_arguments(path, samples)
    xla = PATHS[path][2]
    views = 2 * samples
    y_pred = tf.constant(embeddings(samples))
    y_true = tf.range(samples)
    flat = tf.reshape(y_pred, (views, DIM))
    baseline_mb = reset_peak_memory()

    @tf.function(jit_compile=xla)
    def forward_backward(y):
        with tf.GradientTape() as tape:
            tape.watch(y)
            value = tf.reduce_mean(functional(y_true, y, tau=0.1, **arguments))
        return value, tape.gradient(value, y)

    def run():
        value, grad = forward_backward(y_pred)
        grad.numpy()

    # The loss runs first (its warm-up: tracing and compilation), so its
    # peak memory is measured before any other N x N buffer exists in the
    # process; then the loss and the floor are timed in turns.
    run()
    loss_peak_mb = peak_memory_mb(baseline_mb)
    # The floor's products, in row blocks of at most 4,096 x views (the same
    # FLOPs; a whole views x views gradient would not fit at 65,536 views).
    block = min(views, 4096)
    upstream = tf.constant(upstream_rows(block, views))

    @tf.function
    def floor():
        total = tf.constant(0.0)
        for start in range(0, views, block):
            rows = flat[start : start + block]
            total += tf.reduce_sum(tf.matmul(rows, flat, transpose_b=True))
            total += tf.reduce_sum(tf.matmul(upstream, flat))
            total += tf.reduce_sum(tf.matmul(upstream, rows, transpose_a=True))
        return total

    def run_floor():
        floor().numpy()

    loss_seconds, floor_seconds = interleaved_median_seconds(
        [run, run_floor], repeats, SETTLING_ROUNDS
    )
    return result_row(path, views, loss_seconds, floor_seconds, loss_peak_mb)


def measure_jax(path, samples, repeats):
    """`measure` on the JAX backend: the loss's value and gradient under
    `jax.jit`, against the same three products under `jax.jit`."""
    import jax
    import jax.numpy as jnp

    functional, arguments = loss_and_arguments(path, samples)
    views = 2 * samples
    y_pred = jnp.asarray(embeddings(samples))
    y_true = jnp.arange(samples)
    baseline_mb = peak_rss_mb()

    def mean_loss(y):
        return jnp.mean(functional(y_true, y, tau=0.1, **arguments))

    forward_backward = jax.jit(jax.value_and_grad(mean_loss))

    def run():
        forward_backward(y_pred)[1].block_until_ready()

    run()  # warm-up; its peak is the loss's (see `measure`)
    loss_peak_mb = peak_rss_mb() - baseline_mb
    block = min(views, 4096)
    flat = y_pred.reshape(views, DIM)
    upstream = jnp.asarray(upstream_rows(block, views))

    @jax.jit
    def floor(flat, upstream):  # arguments, not constants XLA would fold
        total = 0.0
        for start in range(0, views, block):
            rows = flat[start : start + block]
            # The barrier keeps XLA from reducing the products away.
            products = jax.lax.optimization_barrier((rows @ flat.T, upstream @ flat, upstream.T @ rows))
            total += sum(jnp.sum(product) for product in products)
        return total

    def run_floor():
        floor(flat, upstream).block_until_ready()

    loss_seconds, floor_seconds = interleaved_median_seconds(
        [run, run_floor], repeats, SETTLING_ROUNDS
    )
    return result_row(path, views, loss_seconds, floor_seconds, loss_peak_mb)


def measure_selection(samples, repeats):
    """The hard loss's threshold alone: the `k`-th largest of each row of a
    views x views matrix by `top_k` (the baseline), `NthElement`, NumPy's
    partition and the XLA counting selection (what the loss uses outside and
    inside XLA)."""
    import numpy as np
    import tensorflow as tf

    from keras_contrastive.losses.contrastive_denominator import partitioned_kth_largest
    from keras_contrastive.losses.contrastive_denominator import counting_kth_largest

    views = 2 * samples
    k = min(4095, views - 2)
    values = tf.constant(np.random.default_rng(0).normal(size=(views, views)).astype("float32"))
    methods = {
        "top_k": tf.function(lambda v: tf.math.top_k(v, k, sorted=True)[0][:, -1]),
        "nth_element": tf.function(lambda v: tf.raw_ops.NthElement(input=v, n=k - 1, reverse=True)),
        "partition": lambda v: partitioned_kth_largest(v.numpy(), k),
        "counting_xla": lambda v: counting_kth_largest(v, k),
    }
    results = {name: np.asarray(method(values)) for name, method in methods.items()}
    if not all(np.array_equal(results["top_k"], result) for result in results.values()):
        raise AssertionError("the selection methods disagree")
    ms = {
        name: 1000 * median_seconds(lambda m=method: np.asarray(m(values)), repeats)
        for name, method in methods.items()
    }
    return {"views": views, "k": k, **ms}


SELECTION_COLUMNS = {
    "nth_element": "NthElement",
    "partition": "NumPy partition",
    "counting_xla": "counting (XLA)",
}


def print_selection_table(rows):
    times = " | ".join(f"{label} ms" for label in SELECTION_COLUMNS.values())
    ratios = " | ".join(f"{label} / top_k" for label in SELECTION_COLUMNS.values())
    print(f"| views | k | top_k ms | {times} | {ratios} |")
    print("|---|---|---|" + "---|" * 2 * len(SELECTION_COLUMNS))
    for r in rows:
        times = " | ".join(f"{r[name]:.1f}" for name in SELECTION_COLUMNS)
        ratios = " | ".join(f"{r[name] / r['top_k']:.2f}" for name in SELECTION_COLUMNS)
        print(f"| {r['views']} | {r['k']} | {r['top_k']:.1f} | {times} | {ratios} |")


def run_in_subprocess(path, samples, repeats):
    backend = "jax" if PATHS[path][2] == JAX else "tensorflow"
    result = subprocess.run(
        [sys.executable, __file__, "--measure", path, str(samples), str(repeats)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    if result.returncode != 0:
        return {"path": path, "views": 2 * samples, "error": result.stderr.strip().splitlines()[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def table_lines(rows):
    """The Markdown table of `measure` rows."""
    lines = [
        "| views | path | loss ms | floor ms | loss / floor | GFLOP/s | peak MB | N x N MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['views']} | {r['path']} | failed: {r['error']} | | | | | |")
            continue
        lines.append(
            f"| {r['views']} | {r['path']} | {r['loss_ms']:.1f} | {r['floor_ms']:.1f} | "
            f"{r['ratio']:.2f} | {r['gflops']:.0f} | {r['peak_mb']:.0f} | {r['nxn_mb']:.0f} |"
        )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (CI)")
    parser.add_argument("--sizes", default=None, help="comma-separated N (samples; views are 2N)")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated paths")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--selection", action="store_true", help="time the hard loss's threshold selection only"
    )
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        path, samples, repeats = args.measure
        print(json.dumps(measure(path, int(samples), int(repeats))))
        return
    sizes = args.sizes or ("128" if args.quick else "256,1024,4096,16384")
    repeats = args.repeats or (2 if args.quick else 5)
    if args.selection:
        print_selection_table([measure_selection(int(n), repeats) for n in sizes.split(",")])
        return
    rows = []
    for samples in [int(n) for n in sizes.split(",")]:
        for path in args.paths.split(","):
            if samples > 4096 and "blocked" not in path:
                # The dense N x N temporaries of 32,768 views exceed this
                # machine's memory; only the blocked path runs there.
                continue
            rows.append(run_in_subprocess(path, samples, repeats))
    print("\n".join(table_lines(rows)))
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
