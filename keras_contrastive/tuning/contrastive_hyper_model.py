"""Temperature tuning with KerasTuner, ranked by a tau-independent objective."""

import keras
import keras_tuner

from keras_contrastive.evaluation.evaluation_callback import EvaluationCallback
from keras_contrastive.evaluation.evaluation_utils import check_space
from keras_contrastive.evaluation.evaluation_utils import log_key
from keras_contrastive.losses.hard_contrastive_loss import HardContrastiveLoss
from keras_contrastive.losses.info_nce import InfoNCE
from keras_contrastive.models.contrastive_model import ContrastiveModel
from keras_contrastive.utils import backend
from keras_contrastive.utils import validation

# Both do not depend on tau, unlike the loss; both are maximised.
OBJECTIVES = ("knn_accuracy", "linear_accuracy")
LOSSES = ("info_nce", "hard_contrastive")


class ContrastiveHyperModel(keras_tuner.HyperModel):
    """Builds compiled `ContrastiveModel`s over the temperature and the loss.

    Searches `tau` (log-uniform in `tau_range`), the loss (`InfoNCE` or
    `HardContrastiveLoss`, with its `num_negatives` among
    `num_negatives_choices`), and optionally the learning rate. Each trial's
    `fit` evaluates the encoder on `validation_data` against `bank_data`
    after every epoch (`EvaluationCallback`, in the named `space`), so the
    tuner ranks trials by `val_projection_knn_accuracy` (or
    `val_features_linear_accuracy`) and records
    `val_projection_uniformity` and `val_projection_tolerance` beside it.

    `val_loss` is deliberately not the objective: a contrastive loss's scale
    depends on `tau` (roughly `1 / tau` times a similarity gap, plus `log`
    of the negatives), so ranking by it ranks trials by their temperature,
    not by the quality of the embedding. kNN and linear accuracy do not
    depend on `tau`.

    Use it with any KerasTuner tuner and `objective()`:

    ```python
    hypermodel = ContrastiveHyperModel(
        build_encoder=lambda: kc.encoders.small_cnn((28, 28, 1)),
        bank_data=(train_images, train_labels),
        validation_data=(test_images, test_labels),
        augmenter=lambda: kc.Augmenter(28),
    )
    tuner = keras_tuner.RandomSearch(
        hypermodel, objective=hypermodel.objective(), max_trials=10, seed=0
    )
    tuner.search(train_images, epochs=20, batch_size=256)
    print(format_summary(tuning_summary(tuner)))
    ```

    Args:
        build_encoder: Function returning a new encoder (one per trial).
        bank_data: Labelled reference split for the kNN (e.g. train).
        validation_data: Labelled split the objective is measured on.
        augmenter: Function returning the augmenter layer, or None.
            Defaults to `None`.
        projection_dim: Size of the linear projection head; None uses the
            features. Defaults to `128`.
        tau_range: `(min, max)` of the log-uniform tau search. Defaults to
            `(0.03, 1.0)`.
        losses: Loss names searched, from `"info_nce"` and
            `"hard_contrastive"`. Defaults to both.
        num_negatives_choices: Candidate `num_negatives` of the hard loss.
            Defaults to `(16, 64)`.
        learning_rate: A float, or a `(min, max)` pair to search it
            log-uniformly. Defaults to `1e-3`.
        objective_name: `"knn_accuracy"` or `"linear_accuracy"` (of the
            linear probe, on the features). Defaults to `"knn_accuracy"`.
        space: Where kNN, uniformity and tolerance are measured:
            `"projection"` (the paper's) or `"features"`. Defaults to
            `"projection"`.
        knn_k: Neighbours of the kNN. Defaults to `200`.
        linear_probe_epochs: Epochs of the linear probe (needed for
            `"val_linear_accuracy"`). Defaults to `0` (no probe).
        seed: Seed set before each trial builds and fits. Defaults to `0`.
    """

    def __init__(
        self,
        build_encoder,
        bank_data,
        validation_data,
        augmenter=None,
        projection_dim=128,
        tau_range=(0.03, 1.0),
        losses=LOSSES,
        num_negatives_choices=(16, 64),
        learning_rate=1e-3,
        objective_name="knn_accuracy",
        space="projection",
        knn_k=200,
        linear_probe_epochs=0,
        seed=0,
    ):
        backend.require_tensorflow("`ContrastiveHyperModel`")
        super().__init__(name="contrastive")
        if objective_name not in OBJECTIVES:
            raise ValueError(
                f"`objective_name` must be one of {tuple(OBJECTIVES)} (tau-"
                f"independent). Received: objective_name={objective_name!r}"
            )
        if objective_name == "linear_accuracy" and not linear_probe_epochs:
            raise ValueError(
                "`linear_accuracy` needs `linear_probe_epochs` > 0. "
                f"Received: linear_probe_epochs={linear_probe_epochs}"
            )
        unknown = [name for name in losses if name not in LOSSES]
        if not losses or unknown:
            raise ValueError(f"`losses` must be drawn from {LOSSES}. Received: losses={losses}")
        low, high = tau_range
        validation.check_positive_float("tau_range[0]", low)
        validation.check_positive_float("tau_range[1]", high)
        if high <= low:
            raise ValueError(f"`tau_range` must be (min, max), min < max. Received: tau_range={tau_range}")
        self.build_encoder = build_encoder
        self.bank_data = bank_data
        self.validation_data = validation_data
        self.augmenter = augmenter
        self.projection_dim = projection_dim
        self.tau_range = (float(low), float(high))
        self.losses = tuple(losses)
        self.num_negatives_choices = tuple(num_negatives_choices)
        self.learning_rate = learning_rate
        self.objective_name = objective_name
        self.space = check_space(space)
        self.knn_k = knn_k
        self.linear_probe_epochs = linear_probe_epochs
        self.seed = seed

    def objective(self):
        """The `keras_tuner.Objective` to give the tuner."""
        return keras_tuner.Objective(log_key(self.objective_name, self.space), "max")

    def build(self, hp):
        keras.utils.set_random_seed(self.seed)
        tau = hp.Float("tau", *self.tau_range, sampling="log")
        loss_name = hp.Choice("loss", list(self.losses))
        if loss_name == "hard_contrastive":
            with hp.conditional_scope("loss", ["hard_contrastive"]):
                num_negatives = hp.Choice("num_negatives", list(self.num_negatives_choices))
            loss = HardContrastiveLoss(tau=tau, num_negatives=num_negatives)
        else:
            loss = InfoNCE(tau=tau)
        if isinstance(self.learning_rate, (tuple, list)):
            learning_rate = hp.Float("learning_rate", *self.learning_rate, sampling="log")
        else:
            learning_rate = self.learning_rate
        projector = (
            keras.Sequential([keras.layers.Dense(self.projection_dim)])
            if self.projection_dim
            else None
        )
        model = ContrastiveModel(
            self.build_encoder(),
            projector,
            self.augmenter() if self.augmenter else None,
            seed=self.seed,
        )
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
        return model

    def fit(self, hp, model, *args, callbacks=None, **kwargs):
        keras.utils.set_random_seed(self.seed)
        # First in the list, so the tuner's callbacks and History see the
        # validation figures in the epoch's logs.
        evaluation = EvaluationCallback(
            self.bank_data,
            self.validation_data,
            space=self.space,
            knn_k=self.knn_k,
            linear_probe_epochs=self.linear_probe_epochs,
        )
        return model.fit(*args, callbacks=[evaluation, *(callbacks or [])], **kwargs)
