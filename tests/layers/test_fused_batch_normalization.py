"""FusedBatchNormalization: Keras's batch normalisation by the fused kernels."""

import keras
import numpy as np
import pytest

from keras_contrastive import encoders
from keras_contrastive.layers import FusedBatchNormalization
from tests.backends import tensorflow_only

EPSILON = 1e-3
MOMENTUM = 0.9
# Channels last, of rank 2 (a projection head's), 3 and 4 (a convolution's).
SHAPES = [(16, 5), (4, 6, 3), (4, 5, 3, 2)]


def numpy_batch_norm(x, mean, variance, gamma, beta, epsilon=EPSILON):
    return gamma * (x - mean) / np.sqrt(variance + epsilon) + beta


def numpy_batch_norm_gradients(x, upstream, gamma, epsilon=EPSILON):
    """d loss / d (x, gamma, beta) of the training normalisation, by hand:
    with x_hat = (x - mean) / s and s = sqrt(var + epsilon) over the N
    positions, dx = gamma / s * (dy - mean(dy) - x_hat * mean(dy * x_hat))."""
    axes = tuple(range(x.ndim - 1))
    x_hat = (x - x.mean(axes)) / np.sqrt(x.var(axes) + epsilon)
    dx = gamma / np.sqrt(x.var(axes) + epsilon) * (
        upstream - upstream.mean(axes) - x_hat * (upstream * x_hat).mean(axes)
    )
    return dx, (upstream * x_hat).sum(axes), upstream.sum(axes)


def built_layer(rng, shape, **kwargs):
    """A layer with gamma, beta and moving statistics away from their
    initial values (so each is seen to be used)."""
    layer = FusedBatchNormalization(momentum=MOMENTUM, epsilon=EPSILON, **kwargs)
    layer.build(shape)
    channels = shape[-1]
    for weight in layer.weights:
        low = 0.5 if "variance" in weight.path or "gamma" in weight.path else -1.0
        weight.assign(rng.uniform(low, 2.0, size=channels).astype("float32"))
    return layer


def inputs(rng, shape, dtype="float32"):
    return (3.0 * rng.normal(size=shape) + 1.5).astype(dtype)


def weights_of(layer):
    channels = layer.moving_mean.shape[0]
    gamma = np.asarray(layer.gamma) if layer.scale else np.ones(channels)
    beta = np.asarray(layer.beta) if layer.center else np.zeros(channels)
    return gamma, beta, np.asarray(layer.moving_mean), np.asarray(layer.moving_variance)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False)])
def test_training_normalises_by_the_batch_and_moves_the_statistics(rng, shape, center, scale):
    layer = built_layer(rng, shape, center=center, scale=scale)
    x = inputs(rng, shape)
    gamma, beta, moving_mean, moving_variance = weights_of(layer)
    axes = tuple(range(len(shape) - 1))
    mean, variance = x.mean(axes), x.var(axes)  # the biased variance, as Keras

    outputs = np.asarray(layer(x, training=True))

    np.testing.assert_allclose(
        outputs, numpy_batch_norm(x, mean, variance, gamma, beta), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        layer.moving_mean, MOMENTUM * moving_mean + (1 - MOMENTUM) * mean, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        layer.moving_variance,
        MOMENTUM * moving_variance + (1 - MOMENTUM) * variance,
        rtol=1e-6, atol=1e-6,
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_inference_normalises_by_the_moving_statistics(rng, shape):
    layer = built_layer(rng, shape)
    x = inputs(rng, shape)
    gamma, beta, moving_mean, moving_variance = weights_of(layer)

    outputs = np.asarray(layer(x, training=False))

    np.testing.assert_allclose(
        outputs, numpy_batch_norm(x, moving_mean, moving_variance, gamma, beta),
        rtol=1e-5, atol=1e-5,
    )
    np.testing.assert_array_equal(layer.moving_mean, moving_mean)


def test_frozen_layer_normalises_by_the_moving_statistics_in_training(rng):
    layer = built_layer(rng, SHAPES[2])
    layer.trainable = False
    x = inputs(rng, SHAPES[2])
    gamma, beta, moving_mean, moving_variance = weights_of(layer)

    outputs = np.asarray(layer(x, training=True))

    np.testing.assert_allclose(
        outputs, numpy_batch_norm(x, moving_mean, moving_variance, gamma, beta),
        rtol=1e-5, atol=1e-5,
    )


def test_one_position_moves_the_variance_by_zero(rng):
    """The kernel's Bessel correction divides by N - 1 = 0 here; Keras's
    biased variance of one value is 0."""
    layer = built_layer(rng, (1, 4))
    moving_variance = np.asarray(layer.moving_variance)

    layer(inputs(rng, (1, 4)), training=True)

    np.testing.assert_allclose(layer.moving_variance, MOMENTUM * moving_variance, rtol=1e-6)


def test_nan_input_gives_nan_in_its_channel_only(rng):
    layer = built_layer(rng, SHAPES[2])
    x = inputs(rng, SHAPES[2])
    x[0, 0, 0, 1] = np.nan

    outputs = np.asarray(layer(x, training=True))

    assert np.isnan(outputs[..., 1]).all()
    assert np.isfinite(outputs[..., 0]).all()
    assert np.isnan(layer.moving_mean[1]) and np.isfinite(layer.moving_mean[0])


@tensorflow_only
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("jit_compile", [False, True])
def test_gradients_match_a_numpy_reference(rng, shape, jit_compile):
    import tensorflow as tf

    layer = built_layer(rng, shape)
    x = tf.constant(inputs(rng, shape))
    upstream = rng.normal(size=shape).astype("float32")

    @tf.function(jit_compile=jit_compile)
    def gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(layer(x, training=True) * upstream)
        return tape.gradient(total, [x, layer.gamma, layer.beta])

    expected = numpy_batch_norm_gradients(x.numpy().astype("float64"), upstream, np.asarray(layer.gamma))
    for actual, reference in zip(gradients(x), expected):
        np.testing.assert_allclose(actual, reference, rtol=1e-4, atol=1e-4)


def fused_kernels_in_training_step(layer, shape):
    """The fused ops in the graph of a training step's value and gradient."""
    import tensorflow as tf

    @tf.function
    def value_and_gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(layer(x, training=True) ** 2)
        return tape.gradient(total, x)

    graph = value_and_gradient.get_concrete_function(tf.TensorSpec(shape, layer.dtype)).graph
    return sorted({op.type for op in graph.get_operations() if op.type.startswith("FusedBatchNorm")})


@tensorflow_only
@pytest.mark.parametrize("shape", SHAPES)
def test_training_step_runs_the_fused_kernels(shape):
    assert fused_kernels_in_training_step(FusedBatchNormalization(), shape) == [
        "FusedBatchNormGradV3", "FusedBatchNormV3",
    ]


@tensorflow_only
def test_mirrored_training_matches_keras_batch_normalization(rng, mirrored):
    """Each replica normalises by its own batch, as Keras's layer does
    (`synchronized=True` is the cross-replica form)."""
    x, y = inputs(rng, SHAPES[2]), rng.normal(size=SHAPES[2]).astype("float32")
    trained = []
    for layer_class in (keras.layers.BatchNormalization, FusedBatchNormalization):
        with mirrored.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input(SHAPES[2][1:]), layer_class(momentum=0.5)])
            model.compile(optimizer="sgd", loss="mse")
        model.fit(x, y, batch_size=SHAPES[2][0], epochs=2, verbose=0, shuffle=False)
        trained.append([np.asarray(weight) for weight in model.weights])

    for plain, fused in zip(*trained):
        np.testing.assert_allclose(fused, plain, rtol=1e-5, atol=1e-6)


UNFUSABLE = {
    "an axis other than the last": ({"axis": 1}, "float32"),
    "statistics across replicas": ({"synchronized": True}, "float32"),
    "batch renormalisation": ({"renorm": True}, "float32"),
    "an epsilon below the kernel's floor": ({"epsilon": 1e-6}, "float32"),
    "float64": ({"dtype": "float64"}, "float64"),
}


@tensorflow_only
@pytest.mark.parametrize("kwargs, dtype", UNFUSABLE.values(), ids=UNFUSABLE.keys())
def test_what_the_kernel_cannot_do_runs_kerass_computation(rng, kwargs, dtype):
    shape = SHAPES[2]
    fused, plain = FusedBatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    x = inputs(rng, shape, dtype)

    assert fused_kernels_in_training_step(fused, shape) == []
    np.testing.assert_array_equal(fused(x, training=True), plain(x, training=True))
    np.testing.assert_array_equal(fused.moving_variance, plain.moving_variance)


@tensorflow_only
def test_a_mask_runs_kerass_computation(rng):
    x = inputs(rng, (4, 6, 3))
    mask = rng.uniform(size=(4, 6)) < 0.7
    fused, plain = FusedBatchNormalization(), keras.layers.BatchNormalization()

    np.testing.assert_array_equal(
        fused(x, training=True, mask=mask), plain(x, training=True, mask=mask)
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_computes_in_float32_as_keras_does(rng, policy):
    shape = SHAPES[2]
    x = inputs(rng, shape)
    fused = FusedBatchNormalization(dtype=policy)
    plain = keras.layers.BatchNormalization(dtype=policy)
    low = keras.ops.cast(x, policy.split("_")[1])

    outputs, expected = fused(low, training=True), plain(low, training=True)

    assert keras.backend.standardize_dtype(outputs.dtype) == policy.split("_")[1]
    assert fused.moving_mean.dtype == "float32"
    # Both round the same float32 result (up to float32 rounding) to 16 bits.
    half_step = 2.0 ** -8 if policy == "mixed_bfloat16" else 2.0 ** -11
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(outputs, "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(expected, "float32")),
        rtol=2 * half_step, atol=2 * half_step,
    )


def test_config_round_trips(rng):
    layer = FusedBatchNormalization(momentum=0.8, epsilon=1e-4, center=False, name="bn")
    restored = FusedBatchNormalization.from_config(layer.get_config())
    assert restored.get_config() == layer.get_config()
    assert keras.saving.get_registered_name(FusedBatchNormalization) == (
        "keras_contrastive>FusedBatchNormalization"
    )


@tensorflow_only
def test_encoder_saved_and_loaded_gives_the_same_features(rng, tmp_path):
    encoder = encoders.small_cnn((12, 12, 1), width=4, feature_dim=8)
    encoder(inputs(rng, (8, 12, 12, 1)), training=True)  # moves the statistics
    path = str(tmp_path / "encoder.keras")
    encoder.save(path)

    restored = keras.saving.load_model(path)

    x = inputs(rng, (3, 12, 12, 1))
    assert any(isinstance(layer, FusedBatchNormalization) for layer in restored.layers)
    np.testing.assert_array_equal(restored(x), encoder(x))
