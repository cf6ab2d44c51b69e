"""The work behind the command line: one pretraining run, evaluated and exported."""

import contextlib
import functools
import json
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_contrastive import distribute
from keras_contrastive import encoders
from keras_contrastive.augmentation.augmenter import Augmenter
from keras_contrastive.data.subsets import balanced_subset
from keras_contrastive.data.pipeline import training_dataset
from keras_contrastive.data.sources import load_splits
from keras_contrastive.evaluation.convergence_rule import convergence
from keras_contrastive.evaluation.convergence_rule import describe_convergence
from keras_contrastive.evaluation.encoder_evaluation import evaluate_encoder
from keras_contrastive.evaluation.evaluation_callback import EvaluationCallback
from keras_contrastive.evaluation.evaluation_utils import encoder_and_projector
from keras_contrastive.evaluation.similarity_table import similarity_table
from keras_contrastive.export.saved_model_export import export_encoder
from keras_contrastive.losses.hard_contrastive_loss import HardContrastiveLoss
from keras_contrastive.losses.hard_simple_contrastive_loss import HardSimpleContrastiveLoss
from keras_contrastive.losses.contrastive_utils import PAPER_ALPHA
from keras_contrastive.losses.info_nce import InfoNCE
from keras_contrastive.losses.simple_contrastive_loss import SimpleContrastiveLoss
from keras_contrastive.metrics.tolerance import Tolerance
from keras_contrastive.metrics.uniformity import Uniformity
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.negatives.fifo_queue import FifoQueue
from keras_contrastive.negatives.memory_bank import MemoryBank
from keras_contrastive.temperature.cosine_temperature_schedule import CosineTemperatureSchedule
from keras_contrastive.temperature.learnable_temperature import LearnableTemperature
from keras_contrastive.utils.files import replaced_atomically
from keras_contrastive.utils.files import write_json_atomically

RESULTS_FILE = "results.json"
TUNE_FILE = "tune.json"
# Written after every evaluation, so a resumed run keeps its earlier curve.
CURVE_FILE = "curve.json"
BACKUP_FOLDER = "backup"
TABLE_SIZE = 1000
# Wang & Liu's Table 1 setting (PAPER.md), over whatever the flags say.
PAPER_SETTING = {
    "negatives": "bank", "num_negatives": 0, "alpha": PAPER_ALPHA, "optimizer": "sgd",
    "learning_rate": 0.03, "lr_schedule": "steps", "weight_decay": 5e-4, "batch_size": 128,
    "projection": "linear", "projection_dim": 128,
}


def make_loss(name, tau, num_negatives=0, alpha=0.0):
    """A loss by its command-line name.

    The hard losses keep `num_negatives` per anchor, or the upper `alpha`
    quantile of each anchor's candidates; with neither (both 0), the paper's
    fraction, 4095 of 50,000.
    """
    selection = {"num_negatives": num_negatives or None, "alpha": alpha or None}
    if not num_negatives and not alpha:
        selection["alpha"] = PAPER_ALPHA
    if name == "info_nce":
        return InfoNCE(tau=tau)
    if name == "hard":
        return HardContrastiveLoss(tau=tau, **selection)
    if name == "simple":
        return SimpleContrastiveLoss(tau=tau)
    if name == "hard_simple":
        return HardSimpleContrastiveLoss(tau=tau, **selection)
    raise ValueError(f"Unknown loss. Received: loss={name!r}")


def make_encoder(name, image_shape, width=32):
    if name == "small_cnn":
        return encoders.small_cnn(image_shape, width=width)
    if name == "resnet18":
        return encoders.resnet18(image_shape)
    if name == "resnet50":
        return encoders.resnet50(image_shape)
    raise ValueError(f"Unknown encoder. Received: encoder={name!r}")


@functools.cache
def make_strategy(name):
    """The named strategy, one per process: a sweep's runs share it (two
    strategies over the same devices collide on collective keys)."""
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy. Received: strategy={name!r}")


def make_optimizer(config, steps_per_epoch):
    """Adam, or SGD with momentum 0.9 (the paper's), on `lr_schedule`."""
    learning_rate = make_learning_rate(config, config["epochs"] * steps_per_epoch)
    weight_decay = config["weight_decay"] or None
    if config["optimizer"] == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay)
    return keras.optimizers.SGD(learning_rate, momentum=0.9, weight_decay=weight_decay)


def make_learning_rate(config, total_steps):
    """Constant; cosine decay to 0 (SimCLR's); or the paper's x0.1 steps at 80% and 95%."""
    rate = config["learning_rate"]
    if config["lr_schedule"] == "constant":
        return rate
    if config["lr_schedule"] == "cosine":
        return keras.optimizers.schedules.CosineDecay(rate, max(1, total_steps))
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(0.8 * total_steps), int(0.95 * total_steps)], [rate, rate * 0.1, rate * 0.01]
    )


def make_temperature(config, steps_per_epoch):
    if config["temperature"] == "fixed":
        return None
    if config["temperature"] == "learnable":
        return LearnableTemperature(initial=config["tau"], minimum=0.01, maximum=1.0)
    return CosineTemperatureSchedule(0.1, 1.0, period=max(1, config["epochs"] * steps_per_epoch))


def pretrain(config):
    """Pretrains, evaluates and exports; writes and returns the results dict.

    Args:
        config: A dict of the `pretrain` flags (see `keras_contrastive.cli.main`).
    """
    start = time.time()
    keras.utils.set_random_seed(config["seed"])
    if config["mixed_precision"] != "none":
        keras.config.set_dtype_policy(config["mixed_precision"])
    splits = load_splits(
        config["dataset"],
        data_dir=config["data_dir"],
        manual_dir=config["manual_dir"],
        download=config["download"],
    )
    train_images, train_labels = training_subset(*splits["train"], config)
    test_images, test_labels = splits["test"]
    image_shape = tuple(train_images.shape[1:])
    steps_per_epoch = len(train_images) // config["batch_size"]
    bank = config["negatives"] == "bank"

    strategy = make_strategy(config["strategy"])
    with strategy.scope():
        negatives = {
            "batch": "batch",
            "local_batch": "local_batch",
            "bank": MemoryBank(len(train_images), seed=config["seed"]) if bank else None,
            "queue": FifoQueue(config["queue_size"], seed=config["seed"]),
        }[config["negatives"]]
        model = ContrastiveModel(
            make_encoder(config["encoder"], image_shape, config["width"]),
            encoders.projection_head(config["projection"], config["projection_dim"]),
            Augmenter(image_shape[:2], recipe=config["augmentation"], seed=config["seed"]),
            views=1 if bank else 2,
            negatives=negatives,
            temperature=make_temperature(config, steps_per_epoch),
            seed=config["seed"],
        )
        model.compile(
            optimizer=make_optimizer(config, steps_per_epoch),
            loss=make_loss(config["loss"], config["tau"], config["num_negatives"], config["alpha"]),
            metrics=[Uniformity(), Tolerance()],
            jit_compile=True if config["xla"] else "auto",
        )
    train, test = (train_images, train_labels), (test_images, test_labels)
    with worker_folders(strategy, config) as (output_dir, export_dir):
        results = _train_and_evaluate(model, train, test, config, steps_per_epoch, output_dir)
        if export_dir:
            path = export_encoder(
                model,
                export_dir,
                metadata={"dataset": config["dataset"], "epochs": config["epochs"], "results": _scalars(results)},
            )
            if output_dir == config["output_dir"]:
                results["export_path"] = path
        # A resumed run counts the time of its earlier processes too.
        results["seconds"] = results.pop("seconds_before_resume") + time.time() - start
        write_json_atomically(os.path.join(output_dir, RESULTS_FILE), results)
    results["written_by_this_worker"] = distribute.is_chief(strategy)
    return results


@contextlib.contextmanager
def worker_folders(strategy, config):
    """Where this process writes: the run's folders on the chief (or alone);
    under several workers, the others write to a temporary folder that is
    removed afterwards (they still save and export: saving may run
    collectives), as Keras' multi-worker guide does."""
    if distribute.is_chief(strategy):
        yield config["output_dir"], config["export_dir"]
        return
    scratch = tempfile.mkdtemp(prefix=f"keras-contrastive-{distribute.worker_name(strategy)}-")
    try:
        yield scratch, config["export_dir"] and os.path.join(scratch, "export")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train_and_evaluate(model, train, test, config, steps_per_epoch, output_dir):
    """Fits with curves and a resumable backup, saves, evaluates."""
    strategy = model.distribute_strategy
    backup = os.path.join(config["output_dir"], BACKUP_FOLDER)
    if distribute.worker_id(strategy) is not None:
        backup = os.path.join(backup, distribute.worker_name(strategy))  # each worker its own
    # The batches start where the backup (restored by `BackupAndRestore`)
    # ends, in the order an uninterrupted run draws them.
    initial_epoch = restored_epoch(backup)
    data = training_dataset(*train, config["batch_size"], config["seed"],
                            with_index=config["negatives"] == "bank",
                            epochs=config["epochs"], initial_epoch=initial_epoch)
    curve_file = CurveFile(os.path.join(output_dir, CURVE_FILE), initial_epoch)
    callbacks = [curve_file]
    if config["eval_every"]:
        callbacks.insert(0, EvaluationCallback(
            _unit(train), _unit(test), space=config["space"], every_n_epochs=config["eval_every"],
            knn_k=min(config["knn_k"], len(train[0])),
        ))
    # Last, so an epoch is backed up only once its curve is written: a run
    # killed at any instant resumes from its last whole epoch.
    callbacks.append(keras.callbacks.BackupAndRestore(backup))
    model.fit(data, epochs=config["epochs"], steps_per_epoch=steps_per_epoch, shuffle=False,
              verbose=config["verbose"], callbacks=callbacks)
    with replaced_atomically(os.path.join(output_dir, "model.keras")) as temporary:
        model.save(temporary)
    results = {"config": config, "curve": curve_file.curve, **evaluate(model, train, test, config),
               "seconds_before_resume": curve_file.earlier_seconds}
    if config["eval_every"]:
        results["convergence"] = convergence(results["curve"], config["epochs"], config["space"])
    return results


def restored_epoch(folder):
    """How many whole epochs the `BackupAndRestore` folder holds (0: none).

    Keras falls back to its previous weights when the weights file is
    damaged, but fails on a half-written metadata file: such a backup is
    removed, and the run restarts from its first epoch.
    """
    metadata = os.path.join(folder, "training_metadata.json")
    if not os.path.exists(metadata):
        return 0
    try:
        with open(metadata) as f:
            return int(json.load(f)["epoch"])
    except (ValueError, KeyError, TypeError):
        logging.warning("Unreadable backup in %s (killed while writing): restarting the run.", folder)
        shutil.rmtree(folder)
        return 0


def training_subset(images, labels, config):
    """All training images, or a seeded class-balanced sample of `train_size`."""
    size = config["train_size"]
    if not size:
        return images, labels
    if not 0 < size <= len(images):
        raise ValueError(
            f"`train_size` must be from 1 to the {len(images)} training images "
            f"(0: all). Received: train_size={size}"
        )
    chosen = balanced_subset(labels, size, seed=config["seed"])
    return images[chosen], labels[chosen]


def validation_split(images, labels, size, seed):
    """Splits off `size` class-balanced images (0: a tenth) for validation.

    Returns:
        `((train_images, train_labels), (validation_images, validation_labels))`.
    """
    if not 0 <= size < len(images):
        raise ValueError(
            f"`validation_size` must be from 0 (a tenth) to fewer than the {len(images)} "
            f"training images. Received: validation_size={size}"
        )
    held_out = balanced_subset(labels, size or max(1, len(images) // 10), seed=seed)
    kept = np.setdiff1d(np.arange(len(images)), held_out)
    return (images[kept], labels[kept]), (images[held_out], labels[held_out])


def tune(config, max_trials):
    """Searches tau and the loss with KerasTuner, ranked on held-out training images.

    The trials are ranked on `validation_size` class-balanced images held out
    from the training split (the kNN bank is the rest), never on the test
    split, which is used once: to measure the best trial's model. Writes
    `tune.json` to `output_dir` and returns its dict.
    """
    import keras_tuner

    from keras_contrastive.tuning import ContrastiveHyperModel
    from keras_contrastive.tuning import tuning_summary

    keras.utils.set_random_seed(config["seed"])
    splits = load_splits(config["dataset"], config["data_dir"], config["manual_dir"], config["download"])
    train, validation = validation_split(
        *training_subset(*splits["train"], config), config["validation_size"], config["seed"]
    )
    shape = train[0].shape[1:]
    knn_k = min(config["knn_k"], len(train[0]))
    hypermodel = ContrastiveHyperModel(
        build_encoder=lambda: make_encoder(config["encoder"], shape, config["width"]),
        bank_data=_unit(train),
        validation_data=_unit(validation),
        augmenter=lambda: Augmenter(shape[:2], recipe=config["augmentation"]),
        projection_dim=config["projection_dim"],
        knn_k=knn_k,
        space=config["space"],
        seed=config["seed"],
    )
    tuner = keras_tuner.RandomSearch(
        hypermodel, objective=hypermodel.objective(), max_trials=max_trials,
        seed=config["seed"], directory=config["output_dir"], project_name="tune",
    )
    tuner.search(train[0], epochs=config["epochs"], batch_size=config["batch_size"], verbose=config["verbose"])
    best = tuner.get_best_models(1)[0]
    results = {
        "config": config,
        "train_size": len(train[0]),
        "validation_size": len(validation[0]),
        "trials": tuning_summary(tuner),
        "best_test": evaluate_encoder(best, _unit(train), _unit(splits["test"]), space=config["space"], knn_k=knn_k),
    }
    write_json_atomically(os.path.join(config["output_dir"], TUNE_FILE), results)
    return results


def tune_summary(results):
    """The trials (ranked on validation) and the best one's test result."""
    from keras_contrastive.tuning import format_summary

    best, test = results["trials"][0], results["best_test"]
    return "\n".join([
        f"trials ranked on {results['validation_size']} validation images held out of the "
        f"{results['train_size'] + results['validation_size']} training images:",
        format_summary(results["trials"]),
        f"best trial {best['trial_id']} ({best['loss']}, tau {best['tau']:.3f}) on the test split: "
        f"kNN accuracy {test['knn_accuracy']:.4f}, U {test['uniformity']:.4f}, "
        f"T {test['tolerance']:.4f} ({test['space']})",
    ])


class CurveFile(keras.callbacks.Callback):
    """Keeps each epoch's logs, and the run's seconds so far, in a JSON file
    written atomically.

    A run resumed at `initial_epoch` (`BackupAndRestore`) keeps the entries
    of the epochs its backup holds and counts on from their seconds
    (`earlier_seconds`); later entries are replaced as they are redone.
    """

    def __init__(self, path, initial_epoch=0):
        super().__init__()
        self.path = path
        self.curve = []
        if os.path.exists(path):
            with open(path) as f:
                self.curve = [e for e in json.load(f) if e["epoch"] <= initial_epoch]
        self.earlier_seconds = self.curve[-1].get("seconds", 0.0) if self.curve else 0.0
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
                 "seconds": self.earlier_seconds + time.time() - self.start}
        self.curve = [e for e in self.curve if e["epoch"] <= epoch] + [entry]
        write_json_atomically(self.path, self.curve)


def evaluate(model, train, test, config):
    """The paper's measures of a trained model, in `config["space"]`.

    As in the paper and its author code, the kNN monitor, uniformity and
    tolerance use the L2-normalised embedding `f(x)` (the projection, what
    the loss sees) unless `space` is `"features"`, and the linear probe the
    encoder's features.
    """
    results = evaluate_encoder(
        model,
        _unit(train),
        _unit(test),
        space=config["space"],
        knn_k=min(config["knn_k"], len(train[0])),
        linear_probe_epochs=config["linear_probe_epochs"],
    )
    images = test[0][:TABLE_SIZE]
    anchors, positives = (
        np.asarray(_embed(model, model.augmenter(images, seed=tf.constant([seed, 7])), config["space"]))
        for seed in (1, 2)
    )
    table = similarity_table(anchors, positives, k=min(10, len(images) - 1))
    results["similarity_table"] = {
        "positive": table["positive"].tolist(),
        "negatives": table["negatives"].tolist(),
    }
    return results


def _embed(model, images, space):
    encoder, head = encoder_and_projector(model, None, space)
    features = encoder(images, training=False)
    return features if head is None else head(features, training=False)


def _unit(split):
    images, labels = split
    return (images.astype("float32") / 255.0, labels)


def _scalars(results):
    return {
        key: value
        for key, value in results.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def summary(results):
    """A readable summary of one run."""
    config = results["config"]
    lines = [
        f"dataset {config['dataset']}, encoder {config['encoder']}, loss {config['loss']} "
        f"(tau {config['tau']}), {config['epochs']} epochs, batch {config['batch_size']}",
        f"  kNN accuracy      {results['knn_accuracy']:.4f}  ({results['space']})",
    ]
    if "linear_accuracy" in results:
        lines.append(f"  linear accuracy   {results['linear_accuracy']:.4f}  (features)")
    lines += [
        f"  uniformity (U)    {results['uniformity']:.4f}  ({results['space']})",
        f"  tolerance (T)     {results['tolerance']:.4f}  ({results['space']})",
    ]
    if "convergence" in results:
        lines.append(f"  converged         {describe_convergence(results['convergence'])}")
    if "export_path" in results:
        lines.append(f"  exported to       {results['export_path']}")
    lines.append(f"  took              {results['seconds']:.0f} s")
    return "\n".join(lines)
