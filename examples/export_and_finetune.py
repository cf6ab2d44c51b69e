"""Pretrain, export, then reuse the encoder downstream in a fresh process.

Stage 1 pretrains a small CNN with the hard contrastive loss on
Fashion-MNIST (prepared offline by the official TFDS builder from
`../shared/data/fashion_mnist`) and exports it with `export_encoder`. Stage 2
runs in a new Python process, as a downstream user would: it loads the
export with `load_encoder` and trains a linear classifier on the frozen
encoder and a fine-tuned classifier (Adam through the encoder), printing both
test accuracies.

    python examples/export_and_finetune.py --epochs 3
"""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402

import keras_contrastive as kc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FLAGS = flags.FLAGS
flags.DEFINE_enum("stage", "pretrain", ["pretrain", "downstream"], "Which stage to run.")
flags.DEFINE_string("manual_dir", os.path.join(HERE, "..", "..", "shared", "data", "fashion_mnist"), "Official Fashion-MNIST files.")
flags.DEFINE_string("data_dir", os.path.join(HERE, "..", ".tfds"), "TFDS data directory.")
flags.DEFINE_string("export_dir", os.path.join(HERE, "..", "saved_models", "fashion_mnist_cnn"), "Export folder.")
flags.DEFINE_string("export_path", None, "Version folder to load (stage 2).")
flags.DEFINE_integer("epochs", 3, "Pretraining epochs.")
flags.DEFINE_integer("train_size", 20000, "Training images used by both stages.")


def fashion_mnist():
    splits = kc.data.load_splits("fashion_mnist", data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir)
    (train_x, train_y), test = splits["train"], splits["test"]
    return (train_x[: FLAGS.train_size], train_y[: FLAGS.train_size]), test


def pretrain():
    keras.utils.set_random_seed(0)
    (train_x, train_y), _ = fashion_mnist()
    model = kc.ContrastiveModel(
        kc.encoders.small_cnn((28, 28, 1), width=32, feature_dim=128),
        kc.encoders.projection_head("linear", 64),
        kc.Augmenter(28),
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=kc.HardContrastiveLoss(tau=0.3, num_negatives=64))
    model.fit(kc.data.training_dataset(train_x, train_y, 256), epochs=FLAGS.epochs, verbose=2)
    path = kc.export_encoder(model, FLAGS.export_dir, metadata={"dataset": "fashion_mnist", "epochs": FLAGS.epochs})
    print(f"exported to {path}")
    # A fresh process, which sees only the SavedModel.
    subprocess.run(
        [sys.executable, __file__, "--stage=downstream", f"--export_path={path}",
         f"--data_dir={FLAGS.data_dir}", f"--manual_dir={FLAGS.manual_dir}",
         f"--train_size={FLAGS.train_size}"],
        check=True,
    )


def classify(trainable):
    keras.utils.set_random_seed(0)
    (train_x, train_y), (test_x, test_y) = fashion_mnist()
    images = keras.Input((28, 28, 1), dtype="uint8")
    features = kc.load_encoder(FLAGS.export_path, trainable=trainable)(images)
    model = keras.Model(images, keras.layers.Dense(10, activation="softmax")(features))
    model.compile(optimizer=keras.optimizers.Adam(1e-3 if trainable else 1e-2),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train_x, train_y, batch_size=256, epochs=3, verbose=0)
    return model.evaluate(test_x, test_y, verbose=0, return_dict=True)["accuracy"]


def downstream():
    print(f"recipe: {kc.read_metadata(FLAGS.export_path)}")
    linear, fine_tuned = classify(trainable=False), classify(trainable=True)
    print(f"test accuracy: linear (frozen encoder) {linear:.4f}, fine-tuned {fine_tuned:.4f}")


def main(argv):
    del argv
    pretrain() if FLAGS.stage == "pretrain" else downstream()


if __name__ == "__main__":
    app.run(main)
