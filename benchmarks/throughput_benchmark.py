"""ContrastiveModel training throughput against a supervised fit of the same encoder.

Images per second of `ContrastiveModel.fit` (two augmented views, InfoNCE)
and of a plain supervised `fit` (softmax head, cross-entropy) of the same
encoder at the same batch, measured in the same process. Two views cost two
encoder passes, so the fair comparison is per encoded view:
`contrastive images/s x 2 / supervised images/s`.

    python benchmarks/throughput_benchmark.py          # small CNN and ResNet-18, 32x32, batch 256
    python benchmarks/throughput_benchmark.py --quick  # CI
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

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


def images_per_second(model, images, labels, batch_size, steps):
    timer = StepTimer()
    data = (images[: batch_size * steps], None if labels is None else labels[: batch_size * steps])
    model.fit(*data, batch_size=batch_size, epochs=1, verbose=0, callbacks=[timer])
    # The first step traces and compiles; the median of the rest is the rate.
    return batch_size / float(np.median(timer.times[1:]))


def measure(name, batch_size, steps):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(batch_size * steps, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, size=batch_size * steps)
    keras.utils.set_random_seed(0)
    encoder = ENCODERS[name]()
    supervised = keras.Sequential([encoder, keras.layers.Dense(10, activation="softmax")])
    supervised.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    supervised_rate = images_per_second(supervised, images, labels, batch_size, steps)
    contrastive = kc.ContrastiveModel(
        ENCODERS[name](), kc.encoders.projection_head("linear", 128), kc.Augmenter(32)
    )
    contrastive.compile(optimizer="sgd", loss=kc.InfoNCE(tau=0.2))
    contrastive_rate = images_per_second(contrastive, images, None, batch_size, steps)
    return supervised_rate, contrastive_rate


def table_lines(names, batch_size, steps):
    """Measures each encoder; returns the Markdown table."""
    lines = [
        "| encoder | batch | supervised images/s | contrastive images/s | views/s ratio (contrastive x 2 / supervised) |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        supervised, contrastive = measure(name, batch_size, steps)
        lines.append(
            f"| {name} | {batch_size} | {supervised:.0f} | {contrastive:.0f} | {2 * contrastive / supervised:.2f} |"
        )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small CNN only, batch 32, few steps (CI)")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    names = ["small_cnn"] if args.quick else list(ENCODERS)
    batch_size = 32 if args.quick else 256
    steps = args.steps or (4 if args.quick else 8)
    print("\n".join(table_lines(names, batch_size, steps)))


if __name__ == "__main__":
    main()
