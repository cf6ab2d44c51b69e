"""The work behind the command line: one pretraining run, evaluated and exported."""

import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_contrastive import encoders
from keras_contrastive.augmentation.augmenter import Augmenter
from keras_contrastive.data.pipeline import training_dataset
from keras_contrastive.data.sources import load_splits
from keras_contrastive.evaluation.dataset_metrics import uniformity_and_tolerance
from keras_contrastive.evaluation.embedding import embed_dataset
from keras_contrastive.evaluation.knn import knn_accuracy
from keras_contrastive.evaluation.linear_probe import linear_probe_accuracy
from keras_contrastive.evaluation.similarity_table import similarity_table
from keras_contrastive.export.export_encoder import export_encoder
from keras_contrastive.losses.hard_contrastive_loss import HardContrastiveLoss
from keras_contrastive.losses.hard_simple_contrastive_loss import HardSimpleContrastiveLoss
from keras_contrastive.losses.info_nce import InfoNCE
from keras_contrastive.losses.simple_contrastive_loss import SimpleContrastiveLoss
from keras_contrastive.metrics.tolerance import Tolerance
from keras_contrastive.metrics.uniformity import Uniformity
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.negatives.fifo_queue import FifoQueue
from keras_contrastive.negatives.memory_bank import MemoryBank
from keras_contrastive.temperature.cosine_temperature_schedule import CosineTemperatureSchedule
from keras_contrastive.temperature.learnable_temperature import LearnableTemperature

RESULTS_FILE = "results.json"
TABLE_SIZE = 1000


def make_loss(name, tau, num_negatives):
    """A loss by its command-line name."""
    if name == "info_nce":
        return InfoNCE(tau=tau)
    if name == "hard":
        return HardContrastiveLoss(tau=tau, num_negatives=num_negatives)
    if name == "simple":
        return SimpleContrastiveLoss(tau=tau)
    if name == "hard_simple":
        return HardSimpleContrastiveLoss(num_negatives=num_negatives or 64, tau=tau)
    raise ValueError(f"Unknown loss. Received: loss={name!r}")


def make_encoder(name, image_shape, width=32):
    if name == "small_cnn":
        return encoders.small_cnn(image_shape, width=width)
    if name == "resnet18":
        return encoders.resnet18(image_shape)
    if name == "resnet50":
        return encoders.resnet50(image_shape)
    raise ValueError(f"Unknown encoder. Received: encoder={name!r}")


def make_strategy(name):
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
    """Adam, or the paper's SGD (momentum 0.9, x0.1 at 80% and 95% of training)."""
    if config["optimizer"] == "adam":
        return keras.optimizers.Adam(config["learning_rate"], weight_decay=config["weight_decay"] or None)
    total = config["epochs"] * steps_per_epoch
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(0.8 * total), int(0.95 * total)],
        [config["learning_rate"], config["learning_rate"] * 0.1, config["learning_rate"] * 0.01],
    )
    return keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=config["weight_decay"] or None)


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
    train_images, train_labels = splits["train"]
    if config["train_size"]:
        train_images, train_labels = train_images[: config["train_size"]], train_labels[: config["train_size"]]
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
            loss=make_loss(config["loss"], config["tau"], config["num_negatives"]),
            metrics=[Uniformity(), Tolerance()],
            jit_compile=True if config["xla"] else "auto",
        )
    data = training_dataset(train_images, train_labels, config["batch_size"], config["seed"], with_index=bank)
    history = model.fit(data, epochs=config["epochs"], verbose=config["verbose"])
    os.makedirs(config["output_dir"], exist_ok=True)
    model.save(os.path.join(config["output_dir"], "model.keras"))

    results = {
        "config": config,
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
        **evaluate(model, (train_images, train_labels), (test_images, test_labels), config),
    }
    results["export_path"] = export_encoder(
        model,
        config["export_dir"],
        metadata={"dataset": config["dataset"], "epochs": config["epochs"], "results": _scalars(results)},
    )
    results["seconds"] = time.time() - start
    with open(os.path.join(config["output_dir"], RESULTS_FILE), "w") as f:
        json.dump(results, f, indent=2, default=str)
    return results


def evaluate(model, train, test, config):
    """The paper's measures of a trained model.

    As in the paper and its author code, the kNN monitor, uniformity and
    tolerance use the L2-normalised embedding `f(x)` (the projection, what
    the loss sees), and the linear probe the encoder's features.
    """
    # The encoder runs once per split; the projection is applied to its
    # features.
    features, labels = embed_dataset(model.encoder, _unit(train))
    test_features, test_labels = embed_dataset(model.encoder, _unit(test))
    bank, queries = _projection(model, features), _projection(model, test_features)
    results = {
        "knn_accuracy": knn_accuracy(
            bank, labels, queries, test_labels, k=min(config["knn_k"], len(bank))
        ),
        **uniformity_and_tolerance(queries, test_labels),
    }
    if config["linear_probe_epochs"]:
        results["linear_accuracy"] = linear_probe_accuracy(
            features, labels, test_features, test_labels, epochs=config["linear_probe_epochs"]
        )
    images = test[0][:TABLE_SIZE]
    anchors, positives = (
        np.asarray(_project(model, model.augmenter(images, seed=tf.constant([seed, 7]))))
        for seed in (1, 2)
    )
    table = similarity_table(anchors, positives, k=min(10, len(images) - 1))
    results["similarity_table"] = {
        "positive": table["positive"].tolist(),
        "negatives": table["negatives"].tolist(),
    }
    return results


def _project(model, images):
    features = model.encoder(images, training=False)
    if model.projector is None:
        return features
    return model.projector(features, training=False)


def _projection(model, features):
    if model.projector is None:
        return features
    return np.asarray(model.projector.predict(features, batch_size=1024, verbose=0))


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
        f"  kNN accuracy      {results['knn_accuracy']:.4f}",
    ]
    if "linear_accuracy" in results:
        lines.append(f"  linear accuracy   {results['linear_accuracy']:.4f}")
    lines += [
        f"  uniformity (U)    {results['uniformity']:.4f}",
        f"  tolerance (T)     {results['tolerance']:.4f}",
        f"  exported to       {results['export_path']}",
        f"  took              {results['seconds']:.0f} s",
    ]
    return "\n".join(lines)
