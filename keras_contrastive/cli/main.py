"""`keras-contrastive`: pretrain, sweep, evaluate, export and tune from one command.

    keras-contrastive pretrain                       # the embedded digits, < 5 minutes
    keras-contrastive pretrain --dataset=fashion_mnist --manual_dir=../shared/data/fashion_mnist
    keras-contrastive sweep --losses=info_nce,hard --taus=0.07,0.2,0.3,0.7,1.0
    keras-contrastive evaluate --checkpoint=runs/default/model.keras
    keras-contrastive export --checkpoint=runs/default/model.keras
    keras-contrastive tune --max_trials=10
"""

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from keras_contrastive.utils import backend

COMMANDS = ("pretrain", "sweep", "evaluate", "export", "tune")
FLAGS = flags.FLAGS

flags.DEFINE_string("dataset", "digits", "'digits' (embedded), a TFDS name, a prepared TFDS folder or an image folder.")
flags.DEFINE_string("data_dir", None, "TFDS data directory.")
flags.DEFINE_string("manual_dir", None, "Official files for preparing a TFDS dataset offline.")
flags.DEFINE_bool("download", False, "Let TFDS download the dataset.")
flags.DEFINE_integer("train_size", 0, "Train on a seeded class-balanced sample of N images (0: all).")
flags.DEFINE_enum("encoder", "small_cnn", ["small_cnn", "resnet18", "resnet50"], "Encoder.")
flags.DEFINE_integer("width", 32, "small_cnn: filters of its first stage.")
flags.DEFINE_enum("projection", "linear", ["linear", "mlp"], "Projection head.")
flags.DEFINE_integer("projection_dim", 64, "Projection size.")
flags.DEFINE_enum("augmentation", "paper", ["paper", "simclr"], "Augmentation recipe.")
flags.DEFINE_enum("loss", "info_nce", ["info_nce", "hard", "simple", "hard_simple"], "Loss.")
flags.DEFINE_float("tau", 0.2, "Temperature (initial value when learnable).")
flags.DEFINE_integer("num_negatives", 64, "Negatives kept per anchor by the hard losses (0: use --alpha).")
flags.DEFINE_float("alpha", 0.0, "Hard losses: keep the upper alpha quantile of each anchor's negatives "
                   "(with --num_negatives=0; 0 and 0: the paper's 4095/50000).")
flags.DEFINE_enum("temperature", "fixed", ["fixed", "learnable", "cosine"], "Temperature kind.")
flags.DEFINE_enum("negatives", "batch", ["batch", "local_batch", "bank", "queue"], "Negative source.")
flags.DEFINE_integer("queue_size", 4096, "FIFO queue size.")
flags.DEFINE_integer("epochs", 100, "Epochs (100 suits the embedded digits: about 45 s here).")
flags.DEFINE_integer("batch_size", 128, "Global batch size (the paper: 128).")
flags.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "Adam, or the paper's SGD (momentum 0.9).")
flags.DEFINE_float("learning_rate", 1e-3, "Learning rate (the paper's SGD: 0.03).")
flags.DEFINE_enum("lr_schedule", "constant", ["constant", "cosine", "steps"],
                  "Constant, cosine decay to 0, or the paper's x0.1 steps at 80% and 95% of the epochs.")
flags.DEFINE_float("weight_decay", 0.0, "Weight decay (the paper: 5e-4).")
flags.DEFINE_enum("strategy", "none", ["none", "mirrored", "multi_worker", "tpu"], "tf.distribute strategy.")
flags.DEFINE_enum("mixed_precision", "none", ["none", "mixed_float16", "mixed_bfloat16"], "Mixed precision.")
flags.DEFINE_bool("xla", False, "Compile with XLA.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("knn_k", 200, "kNN neighbours.")
flags.DEFINE_enum("space", "projection", ["projection", "features"],
                  "Where kNN, uniformity and tolerance are measured: the L2-normalised projection (the paper's) "
                  "or the encoder's features. The linear probe always reads the features.")
flags.DEFINE_integer("eval_every", 1, "Evaluate on the test split every N epochs, for the curves and the "
                     "convergence rule (0: only at the end).")
flags.DEFINE_integer("linear_probe_epochs", 30, "Linear-probe epochs (0 skips it).")
flags.DEFINE_string("output_dir", "runs/default", "Run folder (results.json, model.keras).")
flags.DEFINE_string("export_dir", "saved_models/default", "Export folder (numbered versions); empty: no export.")
flags.DEFINE_bool("paper_setting", False, "The paper's exact setting: memory bank of every training image "
                  "(m = 0.5, one view), hard losses keep alpha = 4095/50000 of the bank, SGD 0.03 with x0.1 steps "
                  "at 80% and 95% of the epochs, weight decay 5e-4, batch 128, linear 128-d head. Overrides those flags.")
flags.DEFINE_integer("verbose", 2, "Keras progress: 0 silent, 1 bar, 2 a line per epoch.")
flags.DEFINE_list("losses", ["info_nce", "hard"], "sweep: losses.")
flags.DEFINE_list("taus", ["0.07", "0.2", "0.3", "0.7", "1.0"], "sweep: temperatures (simple and hard_simple "
                  "are one column each: tau only scales them).")
flags.DEFINE_list("seeds", ["0"], "sweep: seeds of every column.")
flags.DEFINE_integer("max_runs", 0, "sweep: stop after training this many runs (0: all pending).")
flags.DEFINE_string("checkpoint", None, "evaluate/export: a model.keras written by pretrain.")
flags.DEFINE_integer("max_trials", 10, "tune: trials.")
flags.DEFINE_integer("validation_size", 0, "tune: training images held out to rank the trials, class-balanced "
                     "(0: a tenth). The test split is used once, for the best trial.")

CONFIG_FLAGS = (
    "dataset", "data_dir", "manual_dir", "download", "train_size", "encoder", "width", "projection",
    "projection_dim", "augmentation", "loss", "tau", "num_negatives", "alpha", "temperature", "negatives",
    "queue_size", "epochs", "batch_size", "optimizer", "learning_rate", "lr_schedule", "weight_decay",
    "strategy", "mixed_precision", "xla", "seed", "knn_k", "space", "eval_every", "linear_probe_epochs",
    "output_dir", "export_dir", "verbose", "paper_setting", "validation_size",
)


def config_from_flags():
    config = {name: FLAGS[name].value for name in CONFIG_FLAGS}
    if config["paper_setting"]:
        from keras_contrastive.cli.runs import PAPER_SETTING

        config.update(PAPER_SETTING)
    return config


def run_pretrain():
    from keras_contrastive.cli import runs

    results = runs.pretrain(config_from_flags())
    print(runs.summary(results))
    if results["written_by_this_worker"]:
        print(f"  results           {os.path.join(FLAGS.output_dir, runs.RESULTS_FILE)}")
    else:
        print("  results           written by the chief worker")


def run_sweep():
    from keras_contrastive.cli import sweep

    runs = sweep.sweep_runs(FLAGS.losses, [float(tau) for tau in FLAGS.taus], [int(s) for s in FLAGS.seeds])
    finished, pending = sweep.sweep(config_from_flags(), runs, max_runs=FLAGS.max_runs)
    if finished:
        print(sweep.markdown_table(sweep.columns(finished)))
        print(f"table and figures in {FLAGS.output_dir}")
    print(f"runs finished: {len(finished)}, pending: {pending}")


def _checkpoint():
    import keras

    import keras_contrastive  # noqa: F401  (registers the custom objects)

    if not FLAGS.checkpoint or not os.path.exists(FLAGS.checkpoint):
        raise app.UsageError(f"--checkpoint must name a model.keras file. Received: {FLAGS.checkpoint!r}")
    return keras.models.load_model(FLAGS.checkpoint)


def run_evaluate():
    from keras_contrastive.cli import runs
    from keras_contrastive.data.sources import load_splits

    model = _checkpoint()
    splits = load_splits(FLAGS.dataset, FLAGS.data_dir, FLAGS.manual_dir, FLAGS.download)
    results = runs.evaluate(model, splits["train"], splits["test"], config_from_flags())
    results.pop("similarity_table")
    print(json.dumps(results, indent=2))


def run_export():
    from keras_contrastive import distribute
    from keras_contrastive.cli.runs import make_strategy
    from keras_contrastive.export.saved_model_export import export_encoder

    if not distribute.is_chief(make_strategy(FLAGS.strategy)):
        print("the chief worker exports")
        return
    print(f"exported to {export_encoder(_checkpoint(), FLAGS.export_dir)}")


def run_tune():
    from keras_contrastive.cli import runs

    results = runs.tune(config_from_flags(), FLAGS.max_trials)
    print(runs.tune_summary(results))


def main(argv):
    logging.set_verbosity(logging.WARNING)
    backend.require_tensorflow("The `keras-contrastive` command")
    if len(argv) != 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"Give one command, one of {', '.join(COMMANDS)}. Received: {argv[1:]}")
    {"pretrain": run_pretrain, "sweep": run_sweep, "evaluate": run_evaluate,
     "export": run_export, "tune": run_tune}[argv[1]]()


def entry_point():
    app.run(main, argv=sys.argv)


if __name__ == "__main__":
    entry_point()
