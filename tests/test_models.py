"""Tests for tf_stackelberg.models: stacked ensemble layers against per-member numpy
computations built from the same weight slices, example shapes other than points in the
plane, the architecture registries, and the sizes of the reference architectures
(2-32-2 generators, 2-512-256-1 discriminator, 2-128-256-512-1024-2 branches)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config
from tf_stackelberg.game.builder import build_discriminator, build_generator
from tf_stackelberg.models.discriminators.mlp import MLPDiscriminator
from tf_stackelberg.models.ensemble import (EnsembleBatchNorm, EnsembleDense,
                                            FanInUniform, output_activation,
                                            select_generator)
from tf_stackelberg.models.generators.mlp import EnsembleMLPGenerator
from tf_stackelberg.models.generators.multi_branch import MultiBranchGenerator
from tf_stackelberg.models.registry import DISCRIMINATORS, GENERATORS

SLOPE = 0.2


def leaky_relu(x, slope=SLOPE):
  return np.where(x > 0, x, slope * x)


def dense_params(widths):
  return sum(a * b + b for a, b in zip(widths[:-1], widths[1:]))


def count(variables):
  return int(sum(np.prod(v.shape) for v in variables))


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(1234)


# ------------------------------------------------------------------ EnsembleDense
def test_ensemble_dense_shared_input_equals_separate_dense_layers():
  layer = EnsembleDense(num_members=4, units=5)
  x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
  y = layer(tf.constant(x)).numpy()
  assert y.shape == (4, 7, 5)
  kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
  assert kernel.shape == (4, 3, 5) and bias.shape == (4, 5)
  for k in range(4):
    np.testing.assert_allclose(y[k], x @ kernel[k] + bias[k], rtol=1e-5, atol=1e-6)
  # Members really differ (each has its own initialised slice).
  assert not np.allclose(y[0], y[1])


def test_ensemble_dense_per_member_input_equals_separate_dense_layers():
  layer = EnsembleDense(num_members=3, units=2)
  x = np.random.default_rng(1).normal(size=(3, 6, 4)).astype(np.float32)
  y = layer(tf.constant(x)).numpy()
  assert y.shape == (3, 6, 2)
  kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
  for k in range(3):
    np.testing.assert_allclose(y[k], x[k] @ kernel[k] + bias[k], rtol=1e-5, atol=1e-6)
  # Member k only sees its own batch: changing batch 0 leaves members 1, 2 unchanged.
  x2 = x.copy()
  x2[0] += 1.0
  y2 = layer(tf.constant(x2)).numpy()
  assert not np.allclose(y2[0], y[0])
  np.testing.assert_array_equal(y2[1:], y[1:])


def test_ensemble_dense_init_uses_fan_in_of_one_member():
  layer = EnsembleDense(num_members=8, units=64)
  layer.build((None, 16))
  limit = 1.0 / math.sqrt(16)
  for w in (layer.kernel.numpy(), layer.bias.numpy()):
    assert np.abs(w).max() <= limit
    # Uniform on [-limit, limit]: the extremes are approached (fan-in of the stacked
    # kernel, 8 * 16, would give a 2.8x smaller limit).
    assert np.abs(w).max() > 0.9 * limit


def test_bias_is_drawn_independently_of_the_kernel():
  """PyTorch's Linear draws its bias separately from its weight; the bias must not be a
  copy of the first kernel entries (a seeded Keras initializer reused for both weights
  returns the same numbers on every call)."""
  layer = EnsembleDense(num_members=2, units=4)
  layer.build((None, 3))
  kernel, bias = layer.kernel.numpy().ravel(), layer.bias.numpy().ravel()
  assert not np.allclose(bias, kernel[:bias.size])
  disc = MLPDiscriminator(input_shape=(2,), hidden=(4,))
  disc(tf.zeros([1, 2]))
  dense = disc.trunk[0]
  kernel, bias = dense.kernel.numpy().ravel(), dense.bias.numpy().ravel()
  assert not np.allclose(bias, kernel[:bias.size])


# ------------------------------------------------------------------ generators
def numpy_mlp(z, weights, slope=SLOPE):
  """Forward pass of one member: weights = [(W, b), ...], LeakyReLU hidden, tanh out."""
  h = z.astype(np.float64)
  for w, b in weights[:-1]:
    h = leaky_relu(h @ w + b, slope)
  w, b = weights[-1]
  return np.tanh(h @ w + b)


def member_weights(layers, k):
  return [(layer.kernel.numpy()[k], layer.bias.numpy()[k]) for layer in layers]


def test_ensemble_generator_equals_separate_mlps_shared_z():
  gen = EnsembleMLPGenerator(num_generators=3, hidden=(32,), output_shape=(2,))
  z = np.random.default_rng(2).normal(size=(10, 2)).astype(np.float32)
  out = gen(tf.constant(z)).numpy()
  assert out.shape == (3, 10, 2)
  layers = gen.hidden_layers + [gen.output_layer]
  for k in range(3):
    np.testing.assert_allclose(out[k], numpy_mlp(z, member_weights(layers, k)),
                               rtol=1e-5, atol=1e-6)
  assert not np.allclose(out[0], out[1])


def test_ensemble_generator_equals_separate_mlps_per_generator_z():
  gen = EnsembleMLPGenerator(num_generators=2, hidden=(16, 8), output_shape=(3,),
                             leaky_relu_slope=0.1)
  z = np.random.default_rng(3).normal(size=(2, 5, 4)).astype(np.float32)
  out = gen(tf.constant(z)).numpy()
  assert out.shape == (2, 5, 3)
  layers = gen.hidden_layers + [gen.output_layer]
  for k in range(2):
    expected = numpy_mlp(z[k], member_weights(layers, k), slope=0.1)
    np.testing.assert_allclose(out[k], expected, rtol=1e-5, atol=1e-6)


def test_ensemble_generator_linear_output_is_unbounded():
  gen = EnsembleMLPGenerator(2, hidden=(4,), output_activation_name="linear")
  z = tf.constant(np.full((3, 2), 50.0, np.float32))
  out = gen(z).numpy()
  layers = gen.hidden_layers + [gen.output_layer]
  for k in range(2):
    (w0, b0), (w1, b1) = member_weights(layers, k)
    expected = leaky_relu(z.numpy() @ w0 + b0) @ w1 + b1
    np.testing.assert_allclose(out[k], expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ batch norm
def test_ensemble_batchnorm_normalises_each_member_in_training():
  eps = 0.8
  bn = EnsembleBatchNorm(epsilon=eps, momentum=0.9)
  rng = np.random.default_rng(4)
  # Members with very different location and scale.
  x = (rng.normal(size=(3, 16, 5)) * np.array([1.0, 10.0, 0.1])[:, None, None]
       + np.array([0.0, 5.0, -3.0])[:, None, None]).astype(np.float32)
  y = bn(tf.constant(x), training=True).numpy()
  assert y.shape == x.shape
  mean = x.mean(axis=1, keepdims=True)
  var = x.var(axis=1, keepdims=True)  # biased, as BatchNorm1d in training
  np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + eps), rtol=1e-4, atol=1e-5)
  # Member statistics are independent: rescaling member 1 leaves members 0, 2 alone.
  x2 = x.copy()
  x2[1] *= 3.0
  y2 = bn(tf.constant(x2), training=True).numpy()
  np.testing.assert_allclose(y2[[0, 2]], y[[0, 2]], rtol=1e-5, atol=1e-6)
  assert not np.allclose(y2[1], y[1])


def test_ensemble_batchnorm_keeps_moving_statistics_per_member():
  bn = EnsembleBatchNorm(epsilon=0.8, momentum=0.9)
  x = np.random.default_rng(5).normal(loc=2.0, size=(2, 8, 3)).astype(np.float32)
  x[1] += 4.0
  bn(tf.constant(x), training=True)
  moving_mean = bn.norm.moving_mean.numpy().reshape(2, 3)
  np.testing.assert_allclose(moving_mean, 0.1 * x.mean(axis=1), rtol=1e-4, atol=1e-6)
  # Inference uses the moving statistics: (x - m) / sqrt(v + eps).
  moving_var = bn.norm.moving_variance.numpy().reshape(2, 3)
  y = bn(tf.constant(x), training=False).numpy()
  expected = (x - moving_mean[:, None, :]) / np.sqrt(moving_var[:, None, :] + 0.8)
  np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ multi-branch
def numpy_branches(gen, z, training):
  """Branch outputs [branches, B, out] of a MultiBranchGenerator computed by hand."""
  outputs = []
  for k in range(gen.num_branches):
    h = z.astype(np.float64)
    for layer, norm in zip(gen.hidden_layers, gen.norms):
      h = h @ layer.kernel.numpy()[k] + layer.bias.numpy()[k]
      if norm is not None:
        f = h.shape[-1]
        cols = slice(k * f, (k + 1) * f)  # folded layout [B, K*F]
        gamma = norm.norm.gamma.numpy()[cols]
        beta = norm.norm.beta.numpy()[cols]
        if training:
          mean, var = h.mean(axis=0), h.var(axis=0)
        else:
          mean = norm.norm.moving_mean.numpy()[cols]
          var = norm.norm.moving_variance.numpy()[cols]
        h = (h - mean) / np.sqrt(var + norm.norm.epsilon) * gamma + beta
      h = leaky_relu(h)
    out = gen.output_layer
    outputs.append(np.tanh(h @ out.kernel.numpy()[k] + out.bias.numpy()[k]))
  return np.stack(outputs)


@pytest.mark.parametrize("training", [False, True])
def test_multi_branch_generator_is_mean_of_its_branches(training):
  gen = MultiBranchGenerator(num_branches=3, hidden=(8, 16, 4), output_shape=(2,))
  z = np.random.default_rng(6).normal(size=(12, 2)).astype(np.float32)
  gen(tf.constant(z))  # build
  # Non-trivial affine BatchNorm parameters so the per-branch slices matter.
  rng = np.random.default_rng(7)
  for norm in gen.norms[1:]:
    n = norm.norm.gamma.shape[0]
    norm.norm.gamma.assign(rng.uniform(0.5, 2.0, n).astype(np.float32))
    norm.norm.beta.assign(rng.normal(size=n).astype(np.float32))
  branches = numpy_branches(gen, z, training)
  out = gen(tf.constant(z), training=training).numpy()
  assert out.shape == (1, 12, 2)
  np.testing.assert_allclose(out[0], branches.mean(axis=0), rtol=1e-4, atol=1e-5)
  # The mean is not just one branch.
  assert not np.allclose(branches[0], branches[1], atol=1e-3)


def test_multi_branch_generator_accepts_its_own_latent_batch():
  gen = MultiBranchGenerator(num_branches=2, hidden=(4, 4), output_shape=(2,))
  z = np.random.default_rng(8).normal(size=(5, 2)).astype(np.float32)
  flat = gen(tf.constant(z)).numpy()
  stacked = gen(tf.constant(z[None])).numpy()
  assert gen.num_generators == 1
  np.testing.assert_array_equal(flat, stacked)


# ------------------------------------------------------------------ discriminator
def test_discriminator_shapes_without_class_head():
  disc = MLPDiscriminator(input_shape=(2,), hidden=(8, 4))
  x = np.random.default_rng(9).normal(size=(6, 2)).astype(np.float32)
  logits, classes = disc(tf.constant(x))
  assert logits.shape == (6,)
  assert classes is None
  assert disc.class_head is None
  # The logit is the LeakyReLU MLP computed by hand.
  h = x.astype(np.float64)
  for layer in disc.trunk:
    h = leaky_relu(h @ layer.kernel.numpy() + layer.bias.numpy())
  expected = (h @ disc.logit_head.kernel.numpy() + disc.logit_head.bias.numpy())[:, 0]
  np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_discriminator_shapes_with_class_head():
  disc = MLPDiscriminator(input_shape=(3,), hidden=(8,), num_classes=5)
  logits, classes = disc(tf.zeros([4, 3]))
  assert logits.shape == (4,)
  assert classes.shape == (4, 5)
  assert count(disc.trainable_variables) == dense_params((3, 8, 1)) + 8 * 5 + 5


# ------------------------------------------------------------------ select_generator
def test_select_generator_picks_row_k_for_each_latent():
  outputs = np.arange(4 * 6 * 2, dtype=np.float32).reshape(4, 6, 2)
  k = np.array([0, 3, 1, 1, 2, 0])
  got = select_generator(tf.constant(outputs), tf.constant(k)).numpy()
  assert got.shape == (6, 2)
  np.testing.assert_array_equal(got, outputs[k, np.arange(6)])
  # int64 indices work too.
  got64 = select_generator(tf.constant(outputs), tf.constant(k, tf.int64)).numpy()
  np.testing.assert_array_equal(got64, got)


# ------------------------------------------------------------------ other shapes
def test_generator_makes_examples_of_any_shape():
  gen = EnsembleMLPGenerator(num_generators=2, hidden=(8,), output_shape=(2, 3, 1))
  z = np.random.default_rng(10).normal(size=(5, 4)).astype(np.float32)
  out = gen(tf.constant(z)).numpy()
  assert out.shape == (2, 5, 2, 3, 1)
  layers = gen.hidden_layers + [gen.output_layer]
  assert gen.output_layer.kernel.shape == (2, 8, 6)
  for k in range(2):
    flat = numpy_mlp(z, member_weights(layers, k))
    np.testing.assert_allclose(out[k].reshape(5, 6), flat, rtol=1e-5, atol=1e-6)
  # Per-generator latents give the same shape.
  assert gen(tf.zeros([2, 5, 4])).shape == (2, 5, 2, 3, 1)
  branch = MultiBranchGenerator(num_branches=2, hidden=(4, 4), output_shape=(2, 3, 1))
  assert branch(tf.zeros([5, 4])).shape == (1, 5, 2, 3, 1)


def test_discriminator_flattens_any_example_shape():
  disc = MLPDiscriminator(input_shape=(2, 3, 1), hidden=(8,), num_classes=3)
  x = np.random.default_rng(11).normal(size=(4, 2, 3, 1)).astype(np.float32)
  logits, classes = disc(tf.constant(x))
  assert logits.shape == (4,) and classes.shape == (4, 3)
  assert disc.input_size == 6 and disc.trunk[0].kernel.shape == (6, 8)
  flat = MLPDiscriminator(input_shape=(6,), hidden=(8,), num_classes=3)
  flat(tf.zeros([1, 6]))
  flat.set_weights(disc.get_weights())
  flat_logits, flat_classes = flat(tf.constant(x.reshape(4, 6)))
  np.testing.assert_array_equal(logits.numpy(), flat_logits.numpy())
  np.testing.assert_array_equal(classes.numpy(), flat_classes.numpy())


def test_fan_in_uniform_is_pytorchs_linear_default():
  values = FanInUniform(25)(shape=(4000,)).numpy()
  assert np.abs(values).max() <= 0.2 and np.abs(values).max() > 0.19
  # U(-a, a) has variance a^2 / 3: within 5 standard errors.
  assert abs(values.var() - 0.04 / 3) < 5 * 0.04 * math.sqrt(4 / 45 / 4000)


def test_output_activation():
  x = tf.constant([-3.0, 0.0, 2.0])
  np.testing.assert_allclose(output_activation("tanh")(x), np.tanh([-3.0, 0.0, 2.0]),
                             rtol=1e-6)
  np.testing.assert_array_equal(output_activation("linear")(x), x)


# ------------------------------------------------------------------ registries
def test_registries_build_the_configured_architectures():
  config = Config().replace(**{"model.num_generators": 3,
                               "model.generator_hidden": (8, 4),
                               "model.discriminator_hidden": (16,),
                               "model.leaky_relu_slope": 0.1})
  gen = GENERATORS.get("mlp")(config.model, (2,))
  assert isinstance(gen, EnsembleMLPGenerator)
  assert gen.num_generators == 3 and gen.sample_shape == (2,)
  assert [layer.units for layer in gen.hidden_layers] == [8, 4]
  disc = DISCRIMINATORS.get("mlp")(config.model, (2,), 3)
  assert isinstance(disc, MLPDiscriminator) and disc.num_classes == 3
  assert [layer.units for layer in disc.trunk] == [16]
  assert build_discriminator(config, (2,), 3).class_head is None  # beta = 0: no head
  branch = config.replace(**{"model.generator": "multi_branch",
                             "model.num_generators": 1, "model.num_branches": 3,
                             "model.branch_hidden": (8, 8)})
  gen = build_generator(branch, (2,))
  assert isinstance(gen, MultiBranchGenerator)
  assert gen.num_generators == 1 and gen.num_branches == 3


def test_multi_branch_refuses_more_than_one_generator():
  config = Config().replace(**{"model.generator": "multi_branch"})  # K = 8
  with pytest.raises(ConfigError, match="--model.num_generators=1"):
    build_generator(config, (2,))


# ------------------------------------------------------------------ sizes
def test_reference_generator_parameter_count():
  config = Config()  # K = 8 generators, 2-32-2
  gen = build_generator(config, (2,))
  assert isinstance(gen, EnsembleMLPGenerator)
  gen(tf.zeros([1, config.model.latent_dim]))
  per_generator = dense_params((2, 32, 2))
  assert per_generator == 162
  assert count(gen.trainable_variables) == 8 * per_generator
  shapes = [tuple(v.shape) for v in gen.trainable_variables]
  assert shapes == [(8, 2, 32), (8, 32), (8, 32, 2), (8, 2)]


def test_reference_discriminator_parameter_count():
  config = Config()
  disc = build_discriminator(config, (2,), 8)
  disc(tf.zeros([1, 2]))
  assert disc.class_head is None
  assert count(disc.trainable_variables) == dense_params((2, 512, 256, 1)) == 133121
  with_head = build_discriminator(
      config.replace(**{"loss.classifier_weight": 1.0}), (2,), 8)
  _, classes = with_head(tf.zeros([1, 2]))
  assert classes.shape == (1, 8)
  assert count(with_head.trainable_variables) == 133121 + 256 * 8 + 8


def test_reference_multi_branch_parameter_count():
  config = Config().replace(**{"model.generator": "multi_branch",
                               "model.num_generators": 1})
  gen = build_generator(config, (2,))
  assert isinstance(gen, MultiBranchGenerator)
  out = gen(tf.zeros([4, 2]))
  assert out.shape == (1, 4, 2)
  per_branch = dense_params((2, 128, 256, 512, 1024, 2))
  assert per_branch == 692354
  # BatchNorm (gamma, beta) after every hidden layer but the first.
  per_branch_bn = 2 * (256 + 512 + 1024)
  assert count(gen.trainable_variables) == 8 * (per_branch + per_branch_bn)
  assert count(gen.non_trainable_variables) == 8 * per_branch_bn  # moving mean, var
  assert [n.norm.epsilon for n in gen.norms[1:]] == [0.8] * 3


def test_mlp_generator_batchnorm_normalises_each_generator_over_the_batch():
  # BatchNorm after the second hidden layer: in training mode each generator's
  # pre-activation features have batch mean 0 and variance v / (v + eps) per feature.
  gen = EnsembleMLPGenerator(num_generators=3, hidden=(8, 16), output_shape=(4,),
                             output_activation_name="linear", batchnorm_epsilon=1e-5)
  z = tf.random.stateless_normal([256, 5], [1, 2])
  out_train = gen(z, training=True)
  out_infer = gen(z, training=False)
  assert out_train.shape == (3, 256, 4)
  assert gen.norms[0] is None and gen.norms[1] is not None
  # Inference uses the moving statistics, which start at (0, 1): outputs differ.
  assert not np.allclose(out_train.numpy(), out_infer.numpy())
  h = tf.nn.leaky_relu(gen.hidden_layers[0](z), alpha=0.2)
  normed = gen.norms[1](gen.hidden_layers[1](h), training=True).numpy()
  np.testing.assert_allclose(normed.mean(axis=1), 0.0, atol=1e-4)
  np.testing.assert_allclose(normed.var(axis=1), 1.0, atol=1e-3)


def test_batchnorm_variable_paths_do_not_depend_on_models_built_before():
  # Checkpoints key variables by path; a model built after another one in the same
  # process must have the same paths.
  def paths():
    gen = EnsembleMLPGenerator(num_generators=2, hidden=(4, 8, 8), output_shape=(3,),
                               batchnorm_epsilon=0.8, name="generator")
    gen(tf.zeros([1, 2]))
    return sorted(v.path for v in gen.variables)
  first, second = paths(), paths()
  assert first == second
  assert "generator/bn_2/batch_normalization/moving_mean" in first


# ------------------------------------------------------------------ per-latent select
def _trained_batchnorm_statistics(gen, z):
  """Moves the BatchNorm statistics away from (0, 1) so that inference differs."""
  for _ in range(3):
    gen(z * 3.0 + 1.0, training=True)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_mlp_select_equals_running_all_generators_and_picking(batchnorm):
  gen = EnsembleMLPGenerator(4, hidden=(16, 32), output_shape=(3, 2),
                             batchnorm_epsilon=0.8 if batchnorm else 0.0)
  z = tf.random.normal([50, 5])
  gen(z)
  _trained_batchnorm_statistics(gen, z)
  k = tf.constant(np.random.default_rng(0).integers(0, 4, 50), tf.int32)
  want = select_generator(gen(z, training=False), k)
  np.testing.assert_allclose(gen.select(z, k).numpy(), want.numpy(), atol=1e-5)
  # A generator that gets no latent, and int64 indices.
  k3 = tf.constant([0, 0, 3, 3] * 12 + [0, 3], tf.int64)
  np.testing.assert_allclose(gen.select(z, k3).numpy(),
                             select_generator(gen(z), k3).numpy(), atol=1e-5)


def test_select_passes_gradients_to_z():
  gen = EnsembleMLPGenerator(3, hidden=(8,), output_shape=(2,))
  z = tf.random.normal([9, 4])
  k = tf.constant([0, 1, 2, 2, 1, 0, 0, 0, 1])

  def energy(fn, z):
    with tf.GradientTape() as tape:
      tape.watch(z)
      e = tf.reduce_sum(tf.sin(fn(z)))
    return e, tape.gradient(e, z)
  e_all, g_all = energy(lambda x: select_generator(gen(x), k), z)
  e_sel, g_sel = energy(lambda x: gen.select(x, k), z)
  np.testing.assert_allclose(e_sel.numpy(), e_all.numpy(), rtol=1e-5)
  np.testing.assert_allclose(g_sel.numpy(), g_all.numpy(), atol=1e-5)
