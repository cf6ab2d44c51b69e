"""Does the hard loss collapse at the start of training, and what avoids it?

Table 1's CIFAR-10 setting (`cifar10.flags`: small CNN width 32, linear
128-d head, the paper's augmentation, batch 256, Adam, the sweep's seed)
trained for a few hundred steps: first the positives' mean similarity
against each anchor's K-th nearest negative at initialisation (the hard
loss prefers collapse when the kept negatives beat the positive), then
the training batch's uniformity U after every `--steps` steps (near 0:
collapsed). `--plan` runs losses one after another on the same model and
optimizer. The README's Table 1 section has the measured table.

    python examples/table1/hard_loss_collapse.py                        # as in the sweep
    python examples/table1/hard_loss_collapse.py --plan=info_nce:2,hard:3
    python examples/table1/hard_loss_collapse.py --learning_rate=1e-4
    python examples/table1/hard_loss_collapse.py --alpha=0.5
    python examples/table1/hard_loss_collapse.py --negatives=bank --plan=hard:4
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from keras_contrastive import encoders  # noqa: E402
from keras_contrastive.augmentation import Augmenter  # noqa: E402
from keras_contrastive.cli.runs import make_encoder  # noqa: E402
from keras_contrastive.cli.runs import make_loss  # noqa: E402
from keras_contrastive.data.pipeline import training_dataset  # noqa: E402
from keras_contrastive.data.sources import load_splits  # noqa: E402
from keras_contrastive.evaluation import similarity_table  # noqa: E402
from keras_contrastive.metrics import Uniformity  # noqa: E402
from keras_contrastive.models import ContrastiveModel  # noqa: E402
from keras_contrastive.negatives import MemoryBank  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "../shared/data/tfds/cifar10_jpg/1.0.0", "Prepared TFDS folder or TFDS name.")
flags.DEFINE_string("plan", "hard:3", "loss:chunks,... trained in turn (losses: info_nce, hard).")
flags.DEFINE_integer("steps", 40, "Steps per chunk; U is printed after each.")
flags.DEFINE_float("tau", 0.2, "Temperature.")
flags.DEFINE_float("alpha", 0.0819, "The hard loss's kept fraction of the negatives (Table 1: 4095/50000).")
flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate (constant).")
flags.DEFINE_enum("negatives", "batch", ["batch", "bank"], "In-batch negatives (two views), or the "
                  "paper's memory bank of every training image (one view).")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_integer("seed", 0, "Random seed.")


def build_model(images, bank):
    return ContrastiveModel(
        make_encoder("small_cnn", images.shape[1:], 32),
        encoders.projection_head("linear", 128),
        Augmenter(images.shape[1:3], recipe="paper", seed=FLAGS.seed),
        views=1 if bank else 2,
        negatives=MemoryBank(len(images), seed=FLAGS.seed) if bank else "batch",
        seed=FLAGS.seed,
    )


def positive_against_kth_negative(model, images):
    """Mean positive similarity and mean K-th nearest negative (K: `alpha`
    of the batch's other images) of two views of `images`."""
    views = [model.augmenter(images, seed=tf.constant([FLAGS.seed, v]), training=True) for v in (0, 1)]
    projections = model.projector(model.encoder(tf.concat(views, 0), training=True), training=True)
    first, second = np.split(keras.ops.convert_to_numpy(projections), 2)
    k = math.ceil(FLAGS.alpha * (len(images) - 1))
    table = similarity_table(first, second, k=k)
    return float(np.mean(table["positive"])), float(np.mean(table["negatives"][:, k - 1])), k


def main(_):
    keras.utils.set_random_seed(FLAGS.seed)
    images, labels = load_splits(FLAGS.dataset)["train"]
    bank = FLAGS.negatives == "bank"
    model = build_model(images, bank)
    data = training_dataset(images, labels, FLAGS.batch_size, FLAGS.seed, with_index=bank, epochs=1000)
    positive, negative, k = positive_against_kth_negative(model, images[: FLAGS.batch_size])
    print(f"at initialisation: positive {positive:.3f}, K-th nearest negative "
          f"(K = {k} of {FLAGS.batch_size - 1}) {negative:.3f}")
    optimizer = keras.optimizers.Adam(FLAGS.learning_rate)
    done = 0
    for phase in FLAGS.plan.split(","):
        loss, chunks = phase.split(":")
        model.compile(optimizer=optimizer, loss=make_loss(loss, FLAGS.tau, 0, FLAGS.alpha),
                      metrics=[Uniformity()])
        for _ in range(int(chunks)):
            history = model.fit(data.skip(done), steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)
            done += FLAGS.steps
            print(f"{loss} after step {done}: training U {history.history['uniformity'][-1]:.3f} "
                  f"(mean over the last {FLAGS.steps} steps)", flush=True)


if __name__ == "__main__":
    app.run(main)
