"""ContrastiveModel training throughput against a supervised fit of the same encoder.

Images per second of `ContrastiveModel.fit` (two augmented views, InfoNCE)
and of a plain supervised `fit` (softmax head, cross-entropy) of the same
encoder at the same batch, measured in the same process, their fits
alternated for a few rounds so that a slow stretch of a shared machine
weighs on both alike. Two views cost two encoder passes, so the fair
comparison is per encoded view: `contrastive images/s x 2 / supervised
images/s`.

`--breakdown` shows where the contrastive step's time goes: the step is
timed again with parts taken away (augmentation, the metrics the CLI
compiles), the encoder alone as a supervised step on as many views, and the
augmentation and the loss alone in a `tf.function`, all in one process.

`--ops` shows where the encoder's time goes, by op type: TensorFlow's
profile of a supervised fit of the small CNN at batch B and at 2B (the
views of a contrastive step), each op's time on the executor's threads
per step. Ops whose time grows more than twofold at 2B cost more per image
in a contrastive step than in a supervised one.

    python benchmarks/throughput_benchmark.py              # small CNN and ResNet-18, 32x32, batch 256
    python benchmarks/throughput_benchmark.py --breakdown  # the small CNN's step, part by part
    python benchmarks/throughput_benchmark.py --ops        # the small CNN's ops at batch B and 2B
    python benchmarks/throughput_benchmark.py --quick      # CI
"""

import argparse
import collections
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_contrastive as kc  # noqa: E402

ENCODERS = {
    "small_cnn": lambda: kc.encoders.small_cnn((32, 32, 3)),
    "resnet18": lambda: kc.encoders.resnet18((32, 32, 3)),
}


class StepTimer(keras.callbacks.Callback):
    """Records the wall time of each training batch."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def step_seconds(model, images, labels, batch_size, steps):
    """The step times of one `fit` of `steps` steps, but its first (which
    traces and compiles, or sets up the input pipeline)."""
    timer = StepTimer()
    data = (images[: batch_size * steps], None if labels is None else labels[: batch_size * steps])
    model.fit(*data, batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer])
    return timer.times[1:]


def images_per_second(model, images, labels, batch_size, steps):
    return batch_size / float(np.median(step_seconds(model, images, labels, batch_size, steps)))


def random_data(count):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(count, 32, 32, 3)).astype("float32")
    return images, rng.integers(0, 10, size=count)


def supervised_model(name):
    keras.utils.set_random_seed(0)
    supervised = keras.Sequential([ENCODERS[name](), keras.layers.Dense(10, activation="softmax")])
    supervised.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return supervised


def contrastive_model(name, augmenter, metrics=None):
    keras.utils.set_random_seed(0)
    contrastive = kc.ContrastiveModel(
        ENCODERS[name](), kc.encoders.projection_head("linear", 128), augmenter
    )
    contrastive.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.2), metrics=metrics)
    return contrastive


def supervised_rate(name, images, labels, batch_size, steps):
    return images_per_second(supervised_model(name), images, labels, batch_size, steps)


def contrastive_rate(name, images, batch_size, steps, augmenter, metrics=None, labels=None):
    """Labels reach only the metrics (the loss is unsupervised)."""
    model = contrastive_model(name, augmenter, metrics)
    return images_per_second(model, images, labels, batch_size, steps)


def measure(name, batch_size, steps, rounds):
    """`(supervised, contrastive)` images/s of `name`: `rounds` rounds of a
    supervised `fit` and a contrastive one of `steps` steps each, the median
    over all their steps."""
    images, labels = random_data(batch_size * steps)
    supervised, contrastive = supervised_model(name), contrastive_model(name, kc.Augmenter(32))
    times = {supervised: [], contrastive: []}
    for _ in range(rounds):
        times[supervised] += step_seconds(supervised, images, labels, batch_size, steps)
        times[contrastive] += step_seconds(contrastive, images, None, batch_size, steps)
    return tuple(batch_size / float(np.median(times[model])) for model in (supervised, contrastive))


def milliseconds_per_call(function, repeats):
    function()  # traces
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def augmentation_ms(images, repeats):
    """Two views of the batch by the paper's augmenter, as in a training step."""
    augmenter = kc.Augmenter(32)
    seeds = [tf.constant([0, view]) for view in range(2)]
    two_views = tf.function(lambda x: [augmenter(x, seed=seed) for seed in seeds])
    images = tf.constant(images)
    return milliseconds_per_call(lambda: [v.numpy() for v in two_views(images)], repeats)


def loss_ms(batch_size, repeats):
    """InfoNCE forward and backward on the step's `(batch, 2, 128)` projections."""
    projections = tf.random.stateless_normal((batch_size, 2, 128), seed=[0, 0])
    loss = kc.InfoNCE(tau=0.2)

    @tf.function
    def value_and_gradient(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = loss(None, z)
        return tape.gradient(value, z)

    return milliseconds_per_call(lambda: value_and_gradient(projections).numpy(), repeats)


def breakdown_lines(name, batch_size, steps):
    """The contrastive step of `name`, part by part; returns the Markdown table."""
    images, labels = random_data(2 * batch_size * steps)
    views = 2 * batch_size
    cli_metrics = [kc.metrics.Uniformity(), kc.metrics.Tolerance()]

    def contrastive_step(augmenter, metrics=None):
        return batch_size / contrastive_rate(name, images, batch_size, steps, augmenter, metrics, labels)

    # (label, seconds, views encoded): None for the parts timed alone.
    rows = [
        ("supervised step, batch B (the baseline)",
         batch_size / supervised_rate(name, images, labels, batch_size, steps), batch_size),
        ("supervised step, batch 2B (the encoder on a step's views)",
         views / supervised_rate(name, images, labels, views, steps), views),
        ("contrastive step, no augmentation (`augmenter=None`)", contrastive_step(None), views),
        ("contrastive step, the paper's augmenter", contrastive_step(kc.Augmenter(32)), views),
        ("contrastive step + `Uniformity`, `Tolerance` (the CLI's metrics)",
         contrastive_step(kc.Augmenter(32), cli_metrics), views),
        ("augmentation alone: two views of B images", augmentation_ms(images[:batch_size], steps) / 1000, None),
        ("loss alone: InfoNCE forward + backward, 2B views", loss_ms(batch_size, steps) / 1000, None),
    ]
    baseline_view_seconds = rows[0][1] / batch_size
    lines = [
        f"| {name}, B = {batch_size} | ms per step | views/s | views/s / supervised (batch B) |",
        "|---|---|---|---|",
    ]
    for label, seconds, encoded in rows:
        rate = f"{encoded / seconds:.0f}" if encoded else ""
        ratio = f"{baseline_view_seconds / (seconds / encoded):.2f}" if encoded else ""
        lines.append(f"| {label} | {1000 * seconds:.1f} | {rate} | {ratio} |")
    return lines


def op_thread_ms(model, images, labels, batch_size, steps):
    """{op type: ms per step} on TensorFlow's executor threads over a
    profiled `fit` of `steps` steps (after an unprofiled one, which traces)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    data = (images[: batch_size * steps], labels[: batch_size * steps])
    model.fit(*data, batch_size=batch_size, epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(*data, batch_size=batch_size, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace.FromString(next(pathlib.Path(logdir).rglob("*.xplane.pb")).read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                op_type = names[event.metadata_id].split(":")[-1]
                if op_type != "Process":  # an executor's whole run, around its ops
                    totals[op_type] += event.duration_ps / 1e9 / steps
    return totals


def op_lines(name, batch_size, steps, shown=12):
    """The supervised step's ops at batch B and 2B; returns the Markdown table."""
    views = 2 * batch_size
    images, labels = random_data(views * steps)
    by_batch = [op_thread_ms(supervised_model(name), images, labels, size, steps) for size in (batch_size, views)]
    lines = [
        f"| {name}, B = {batch_size}: op | ms per step, batch B | ms per step, batch 2B | 2B / B |",
        "|---|---|---|---|",
    ]
    rows = [(op, by_batch[0][op], by_batch[1][op]) for op, _ in by_batch[1].most_common(shown)]
    rows.append(("all ops", sum(by_batch[0].values()), sum(by_batch[1].values())))
    for op, at_batch, at_views in rows:
        ratio = f"{at_views / at_batch:.2f}" if at_batch else ""
        lines.append(f"| {op} | {at_batch:.1f} | {at_views:.1f} | {ratio} |")
    return lines


def table_lines(names, batch_size, steps, rounds):
    """Measures each encoder; returns the Markdown table."""
    lines = [
        "| encoder | batch | supervised images/s | contrastive images/s | views/s ratio (contrastive x 2 / supervised) |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        supervised, contrastive = measure(name, batch_size, steps, rounds)
        lines.append(
            f"| {name} | {batch_size} | {supervised:.0f} | {contrastive:.0f} | {2 * contrastive / supervised:.2f} |"
        )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small CNN only, batch 32, few steps (CI)")
    parser.add_argument("--breakdown", action="store_true", help="the small CNN's step, part by part")
    parser.add_argument("--ops", action="store_true", help="the small CNN's ops at batch B and 2B, profiled")
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated, of: " + ", ".join(ENCODERS))
    parser.add_argument("--steps", type=int, default=None, help="steps per fit")
    parser.add_argument("--rounds", type=int, default=None, help="alternated fits of each kind")
    args = parser.parse_args()
    batch_size = 32 if args.quick else 256
    steps = args.steps or (4 if args.quick else 8)
    rounds = args.rounds or (2 if args.quick else 3)
    if args.breakdown:
        print("\n".join(breakdown_lines("small_cnn", batch_size, steps)))
        return
    if args.ops:
        print("\n".join(op_lines("small_cnn", batch_size, steps)))
        return
    names = ["small_cnn"] if args.quick else args.encoders.split(",")
    unknown = sorted(set(names) - set(ENCODERS))
    if unknown:
        parser.error(f"--encoders: unknown encoder(s) {unknown}; known: {list(ENCODERS)}")
    print("\n".join(table_lines(names, batch_size, steps, rounds)))


if __name__ == "__main__":
    main()
