"""Tests for the convolutional models (docs/design.md section 3.1) and the EMA
generator (section 3.2): shapes, exactness of the K-generator layout against
standalone generators, parameter counts, spectral normalisation against numpy's SVD,
the EMA's closed form inside the compiled train step, checkpoints, and the size
checks of the configuration. Shapes are tiny so that every test runs in seconds."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import load_tool
from conftest import tiny_config as tiny_run_config
from tf_stackelberg.common.errors import ConfigError
from tf_stackelberg.config.sections import Config
from tf_stackelberg.export.saved_model import export_gan
from tf_stackelberg.game.builder import build_discriminator, build_gan, build_generator
from tf_stackelberg.models import conv
from tf_stackelberg.models.discriminators.dcgan import DCGANDiscriminator
from tf_stackelberg.models.ensemble import select_generator
from tf_stackelberg.models.generators import dcgan
from tf_stackelberg.models.generators.dcgan import (DCGANGenerator,
                                                    EnsembleDCGANGenerator)
from tf_stackelberg.training.run import Run, _VariableSet

K = 2
LATENT = 6
IMAGE = (8, 8, 3)  # base 2, two upsamplings


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(7)


def count(variables):
  return int(sum(np.prod(v.shape) for v in variables))


def conv_config(**changes):
  """A validated tiny dcgan game on 8x8x3 images; `changes` by flag name."""
  values = {"model.generator": "dcgan", "model.discriminator": "dcgan",
            "model.num_generators": K, "model.latent_dim": LATENT,
            "model.generator_channels": (8, 4), "model.generator_base_size": 2,
            "model.discriminator_channels": (4, 8), "game.batch_size": 4,
            "data.size": 64, "runtime.jit_compile": False,
            "trainer.steps_per_execution": 1, "seed": 3}
  values.update(changes)
  return Config().replace(**values).validate()


def ensemble(batchnorm=False, init="dcgan", k=K):
  gen = EnsembleDCGANGenerator(k, channels=(8, 4), base_size=2, output_channels=3,
                               batchnorm=batchnorm, init=init, name="generator")
  gen(tf.zeros([1, LATENT]))
  return gen


def randomize_batchnorm(model, seed=0):
  """Non-trivial BatchNorm parameters and statistics, so that they matter."""
  rng = np.random.default_rng(seed)
  for v in model.variables:
    name = v.path.rsplit("/", 1)[-1]
    if name in ("gamma", "moving_variance"):
      v.assign(rng.uniform(0.5, 2.0, v.shape).astype(np.float32))
    elif name in ("beta", "moving_mean"):
      v.assign(rng.normal(size=v.shape).astype(np.float32))


# ------------------------------------------------------------------ generator
def test_generator_output_shapes_for_shared_and_per_generator_latents():
  gen = ensemble()
  z = tf.random.stateless_normal([5, LATENT], [0, 1])
  out = gen(z)
  assert out.shape == (K, 5) + IMAGE and gen.num_generators == K
  assert gen.sample_shape == IMAGE
  assert np.abs(out.numpy()).max() <= 1.0  # tanh
  per = tf.random.stateless_normal([K, 5, LATENT], [0, 2])
  assert gen(per).shape == (K, 5) + IMAGE
  # Generator k sees only its own batch z[k].
  changed = per.numpy().copy()
  changed[0] += 1.0
  a, b = gen(per).numpy(), gen(tf.constant(changed)).numpy()
  assert not np.allclose(a[0], b[0])
  np.testing.assert_array_equal(a[1:], b[1:])
  # The generators differ.
  assert not np.allclose(out[0], out[1])


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_generator_k_equals_a_standalone_generator_with_its_weights(batchnorm,
                                                                   training):
  gen = ensemble(batchnorm=batchnorm)
  randomize_batchnorm(gen)
  z = tf.random.stateless_normal([6, LATENT], [3, 4])
  per = tf.random.stateless_normal([K, 6, LATENT], [3, 5])
  shared_out = gen(z, training=training).numpy()
  per_out = gen(per, training=training).numpy()
  for k in range(K):
    single = DCGANGenerator((8, 4), base_size=2, output_channels=3,
                            batchnorm=batchnorm, init="pytorch", name="single")
    single(tf.zeros([1, LATENT]))
    single.set_weights(gen.members[k].get_weights())
    np.testing.assert_array_equal(single(z, training=training).numpy(), shared_out[k])
    np.testing.assert_array_equal(single(per[k], training=training).numpy(),
                                  per_out[k])


def test_generator_variables_have_distinct_stable_paths():
  gen = ensemble(batchnorm=True)
  paths = [v.path for v in gen.variables]
  # Per generator: 3 kernels, 2 BatchNorms of 4 variables, the output bias.
  assert len(set(paths)) == len(paths) == K * 12
  assert paths[0] == "generator/generator_0/project/kernel"
  assert "generator/generator_1/deconv_1/bias" in paths
  assert len(_VariableSet(gen).by_path) == len(paths)
  # A second instance has the same paths: checkpoints map by path.
  assert [v.path for v in ensemble(batchnorm=True).variables] == paths


def test_variable_set_refuses_repeated_paths():
  class Twins(keras.Model):
    def __init__(self):
      super().__init__(name="twins")
      self.layers_ = [keras.layers.Dense(2, name="same"),
                      keras.layers.Dense(2, name="same")]

    def call(self, x):
      return self.layers_[1](self.layers_[0](x))
  model = Twins()
  model(tf.zeros([1, 2]))
  with pytest.raises(ValueError, match="same path"):
    _VariableSet(model)


def test_generator_batchnorm_layout():
  gen = ensemble(batchnorm=True)
  member = gen.members[0]
  assert member.project.bias is None  # BatchNorm's offset replaces the bias
  assert [n is None for n in member.norms] == [False, True]  # none after the output
  assert member.deconvs[0].bias is None and member.deconvs[1].bias is not None
  # Training normalises each channel of each generator over batch, height, width.
  z = tf.random.stateless_normal([64, LATENT], [1, 1])
  h = tf.reshape(member.project(z), [-1, 2, 2, 8])
  normed = member.project_norm(h, training=True).numpy()
  np.testing.assert_allclose(normed.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
  assert member.project_norm.epsilon == conv.BATCHNORM_EPSILON == 1e-5


def test_initialisations():
  gen = ensemble(init="dcgan", k=1)
  kernel = gen.members[0].deconvs[0].kernel.numpy()
  assert abs(kernel.std() - 0.02) < 0.004 and abs(kernel.mean()) < 0.005
  assert not gen.members[0].deconvs[1].bias.numpy().any()  # zero biases
  gen = ensemble(init="pytorch", k=1)
  member = gen.members[0]
  # Dense: fan-in = latent dim; transposed conv: PyTorch's out * 5 * 5.
  for weight, fan_in in ((member.project.kernel, LATENT),
                         (member.project.bias, LATENT),
                         (member.deconvs[0].kernel, 4 * 25),
                         (member.deconvs[1].bias, 3 * 25)):
    limit = 1 / np.sqrt(fan_in)
    assert np.abs(weight.numpy()).max() <= limit
    assert np.abs(weight.numpy()).max() > 0.5 * limit


def test_seed_cifar10_generator_and_discriminator_parameter_counts():
  config = Config().replace(**{
      "model.generator": "dcgan", "model.discriminator": "dcgan",
      "model.num_generators": 1, "model.latent_dim": 100, "model.init": "dcgan"})
  gen = build_generator(config, (32, 32, 3))
  assert gen(tf.zeros([2, 100])).shape == (1, 2, 32, 32, 3)
  per_generator = (100 * 8 * 8 * 256 + 8 * 8 * 256  # projection
                   + 25 * 256 * 128 + 128 + 25 * 128 * 3 + 3)  # transposed convs
  assert count(gen.trainable_variables) == per_generator == 2_483_715
  assert dcgan.parameter_count((256, 128), 8, 100, 3) == per_generator
  disc = build_discriminator(config, (32, 32, 3), 0)
  logits, classes = disc(tf.zeros([2, 32, 32, 3]))
  assert logits.shape == (2,) and classes is None
  # Convolutions without bias (BatchNorm follows), BatchNorm gamma and beta, logit.
  convs = 25 * (3 * 128 + 128 * 256 + 256 * 512)
  norms = 2 * (128 + 256 + 512)
  logit = 4 * 4 * 512 + 1
  assert count(disc.trainable_variables) == convs + norms + logit == 4_115_585


def test_generator_parameter_count_with_batchnorm_matches_the_model():
  for channels, base, size in (((16, 8), 2, 8), ((12, 8, 4), 4, 32)):
    gen = EnsembleDCGANGenerator(1, channels, base, 3, batchnorm=True)
    gen(tf.zeros([1, LATENT]))
    assert gen.sample_shape == (size, size, 3)
    assert count(gen.trainable_variables) == dcgan.parameter_count(
        channels, base, LATENT, 3, batchnorm=True)


def test_equal_capacity_single_generator():
  widths, params = dcgan.equal_capacity_channels((256, 128), 10, 8, 100, 3)
  assert widths == (1168, 592) and params == 24_881_347
  target = 10 * 2_483_715
  assert abs(params / target - 1) < 0.01
  # The same count from the real K = 1 model (small z: only the count matters).
  widths, params = dcgan.equal_capacity_channels((16, 8), 4, 2, LATENT, 3,
                                                 batchnorm=True, multiple=4)
  gen = EnsembleDCGANGenerator(1, widths, 2, 3, batchnorm=True)
  gen(tf.zeros([1, LATENT]))
  assert count(gen.trainable_variables) == params
  target = 4 * dcgan.parameter_count((16, 8), 2, LATENT, 3, batchnorm=True)
  assert abs(params / target - 1) < 0.1


# ------------------------------------------------------------------ discriminator
def test_discriminator_heads_share_the_trunk():
  disc = DCGANDiscriminator(IMAGE, (4, 8), num_classes=K, batchnorm=True)
  x = tf.random.stateless_uniform([5] + list(IMAGE), [0, 3], -1, 1)
  logits, classes = disc(x, training=True)
  assert logits.shape == (5,) and classes.shape == (5, K)
  assert disc.class_head is not None and disc.feature_size == 2 * 2 * 8
  no_head = DCGANDiscriminator(IMAGE, (4, 8))
  assert no_head(x)[1] is None and no_head.class_head is None
  # Odd sizes: 'same' padding rounds up (28 -> 14 -> 7 -> 4).
  odd = DCGANDiscriminator((28, 28, 3), (4, 4, 8), num_classes=2)
  logits, classes = odd(tf.zeros([2, 28, 28, 3]))
  assert odd.feature_size == 4 * 4 * 8 and classes.shape == (2, 2)


def test_discriminator_on_the_concatenated_real_and_fake_batch():
  """The game's single D pass: BatchNorm statistics of B real + K B fakes."""
  gan = build_gan(conv_config(**{"loss.classifier_weight": 0.5}), IMAGE)
  fakes = gan.generator(tf.random.stateless_normal([4, LATENT], [0, 0]))
  real = tf.random.stateless_uniform([4] + list(IMAGE), [0, 1], -1, 1)
  real_logits, fake_logits, fake_classes = gan._discriminate(real, fakes)
  assert real_logits.shape == (4,) and fake_logits.shape == (K, 4)
  assert fake_classes.shape == (K, 4, K)


def numpy_top_singular_value(kernel):
  return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


def designed_kernel(shape, singular_values, seed=0):
  """A kernel whose matrix [prod(shape[:-1]), shape[-1]] has these singular values."""
  rng = np.random.default_rng(seed)
  rows, cols = int(np.prod(shape[:-1])), shape[-1]
  u, _ = np.linalg.qr(rng.normal(size=(rows, cols)))
  v, _ = np.linalg.qr(rng.normal(size=(cols, cols)))
  return (u @ np.diag(singular_values) @ v.T).reshape(shape).astype(np.float32)


def test_spectral_norm_power_iteration_matches_numpy_svd():
  layer = conv.Conv2D(6, kernel_size=5, strides=2, spectral_norm=True)
  x = tf.random.stateless_normal([2, 8, 8, 3], [1, 2])
  layer(x)
  kernel = designed_kernel((5, 5, 3, 6), [3.0, 1.5, 1.0, 0.8, 0.5, 0.2])
  layer.kernel.assign(kernel)
  assert not layer.u.trainable and layer.u in layer.non_trainable_variables
  for _ in range(25):  # one power iteration per training call
    layer(x, training=True)
  normalized = layer.normalized_kernel(training=False).numpy()
  sigma = np.abs(kernel).max() / np.abs(normalized).max()
  assert abs(sigma - numpy_top_singular_value(kernel)) < 1e-4 * 3.0
  assert abs(numpy_top_singular_value(normalized) - 1.0) < 1e-4
  # Inference neither iterates nor changes the stored vector.
  u = layer.u.numpy().copy()
  layer(x, training=False)
  np.testing.assert_array_equal(layer.u.numpy(), u)
  # The layer applies the normalised kernel.
  expected = tf.nn.conv2d(x, normalized, 2, "SAME") + layer.bias
  np.testing.assert_allclose(layer(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


def test_spectral_norm_bounds_every_kernel_of_the_discriminator():
  disc = DCGANDiscriminator(IMAGE, (4, 8), num_classes=K, batchnorm=False,
                            spectral_norm=True)
  x = tf.random.stateless_uniform([3] + list(IMAGE), [0, 3], -1, 1)
  disc(x)
  layers = disc.convs + [disc.logit_head, disc.class_head]
  for layer in layers:  # large weights, so that the bound is not met by chance
    layer.kernel.assign(layer.kernel * 50.0)
  for _ in range(60):
    disc(x, training=True)
  for layer in layers:
    kernel = layer.kernel.numpy()
    normalized = layer.normalized_kernel().numpy()
    assert numpy_top_singular_value(kernel) > 2.0
    # Power iteration converges like (sigma_2 / sigma_1)^(2 n): slowly for random
    # kernels, whose two largest singular values are close.
    assert abs(numpy_top_singular_value(normalized) - 1.0) < 5e-3, layer.name
  # sigma carries a gradient through the kernel (a reparameterisation, as SNGAN).
  with tf.GradientTape() as tape:
    logits, classes = disc(x, training=True)
    total = tf.reduce_sum(logits) + tf.reduce_sum(classes)
  grads = tape.gradient(total, [layer.kernel for layer in layers])
  assert all(g is not None and np.isfinite(g.numpy()).all() for g in grads)


def test_spectral_norm_vectors_advance_in_training_and_checkpoint(tmp_path):
  config = conv_config(**{"model.spectral_norm": True,
                          "model.discriminator_batchnorm": False})
  gan = build_gan(config, IMAGE)
  u_paths = [v.path for v in gan.discriminator.non_trainable_variables]
  assert u_paths == ["discriminator/conv_0/sn_u", "discriminator/conv_1/sn_u",
                     "discriminator/logit/sn_u"]
  before = [v.numpy().copy() for v in gan.discriminator.non_trainable_variables]
  images = np.random.default_rng(0).uniform(-1, 1, (2, 4) + IMAGE).astype(np.float32)
  gan.fit(tf.data.Dataset.from_tensor_slices(images), epochs=1, verbose=0,
          shuffle=False)
  after = [v.numpy() for v in gan.discriminator.non_trainable_variables]
  assert all(not np.allclose(a, b) for a, b in zip(before, after))
  path = tf.train.Checkpoint(d=_VariableSet(gan.discriminator)).write(
      str(tmp_path / "ckpt"))
  other = build_gan(config, IMAGE)
  tf.train.Checkpoint(d=_VariableSet(other.discriminator)).read(
      path).assert_existing_objects_matched()
  for a, b in zip(gan.discriminator.variables, other.discriminator.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


# ------------------------------------------------------------------ EMA
def _fit_recording(gan, num_steps, config):
  """Trains `num_steps` steps one per call; returns the generator's trainable weights
  before training and after every step."""
  recorded = [[v.numpy().copy() for v in gan.generator.trainable_variables]]

  class Record(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
      recorded.append([v.numpy().copy() for v in gan.generator.trainable_variables])

  images = np.random.default_rng(1).uniform(
      -1, 1, (num_steps, config.game.batch_size) + IMAGE).astype(np.float32)
  gan.fit(tf.data.Dataset.from_tensor_slices(images), epochs=1, verbose=0,
          shuffle=False, callbacks=[Record()])
  return recorded


@pytest.mark.parametrize("order, xla", [("g_first", False), ("simultaneous", True)])
def test_ema_follows_the_closed_form_after_n_updates(order, xla):
  """Also the XLA-compiled train step, with a spectrally normalised D (the default
  runtime compiles with XLA)."""
  decay, steps = 0.6, 4
  config = conv_config(**{"model.ema_decay": decay, "model.generator_batchnorm": True,
                          "game.update_order": order, "runtime.jit_compile": xla,
                          "model.spectral_norm": xla,
                          "model.discriminator_batchnorm": not xla})
  gan = build_gan(config, IMAGE)
  # Built, and starting from the generator's weights.
  for a, w in zip(gan.ema_generator.variables, gan.generator.variables):
    np.testing.assert_array_equal(a.numpy(), w.numpy())
  assert not gan.ema_generator.trainable_variables
  recorded = _fit_recording(gan, steps, config)
  assert len(recorded) == steps + 1
  trainable = {id(v) for v in gan.generator.trainable_variables}
  averages = [a for a, w in zip(gan.ema_generator.variables, gan.generator.variables)
              if id(w) in trainable]
  for i, average in enumerate(averages):
    # e_n = d^n w_0 + (1 - d) sum_{j=1..n} d^(n-j) w_j
    expected = decay ** steps * recorded[0][i]
    for j in range(1, steps + 1):
      expected = expected + (1 - decay) * decay ** (steps - j) * recorded[j][i]
    np.testing.assert_allclose(average.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(average.numpy(), recorded[-1][i])
  # BatchNorm's moving statistics are copied.
  for a, w in zip(gan.ema_generator.variables, gan.generator.variables):
    if id(w) not in trainable:
      np.testing.assert_array_equal(a.numpy(), w.numpy())


def test_generate_sample_and_predict_use_the_ema_generator():
  gan = build_gan(conv_config(**{"model.ema_decay": 0.9}), IMAGE)
  for v in gan.ema_generator.variables:  # make the copy visibly different
    v.assign(v * 0.5)
  z = tf.random.stateless_normal([5, LATENT], [2, 2])
  k = tf.constant([0, 1, 1, 0, 1])
  from_ema = gan.ema_generator(z).numpy()[k.numpy(), np.arange(5)]
  from_g = gan.generator(z).numpy()[k.numpy(), np.arange(5)]
  assert not np.allclose(from_ema, from_g)
  # Per-generator batches of other sizes than the whole: float-level differences.
  np.testing.assert_allclose(gan.generate(z, k).numpy(), from_ema, rtol=1e-6,
                             atol=1e-7)
  out = gan.predict({"z": z.numpy(), "k": k.numpy()}, verbose=0)
  np.testing.assert_allclose(out["samples"], from_ema, rtol=1e-6, atol=1e-7)
  samples, ks = gan.sample(4, tf.constant([0, 1], tf.int64))
  assert samples.shape == (4,) + IMAGE and ks.shape == (4,)
  # Training uses the trained generator: the model's call is the generator's.
  np.testing.assert_array_equal(gan(z).numpy(), gan.generator(z).numpy())


def test_export_serves_the_ema_generator(tmp_path):
  gan = build_gan(tiny_run_config(tmp_path / "run", **{"model.ema_decay": 0.9}), (2,))
  for v in gan.ema_generator.variables:
    v.assign(v * 0.5)
  path = export_gan(gan, str(tmp_path / "export"))
  loaded = tf.saved_model.load(path)
  z = tf.random.stateless_normal([4, 2], [1, 1])
  k = tf.constant([0, 1, 2, 3])
  served = loaded.signatures["generate"](z=z, k=k)["samples"].numpy()
  np.testing.assert_allclose(served, gan.generate(z, k).numpy(), rtol=1e-6, atol=1e-7)
  assert not np.allclose(served, select_generator(gan.generator(z), k).numpy())


def test_without_ema_nothing_changes():
  gan = build_gan(conv_config(), IMAGE)
  assert gan.ema_generator is None and gan.sampling_generator is gan.generator
  with pytest.raises(ValueError, match="ema_decay"):
    type(gan)(gan.generator, gan.discriminator, LATENT, ema_decay=0.5)


def test_ema_checkpoint_round_trip(tmp_path):
  config = conv_config(**{"model.ema_decay": 0.5, "model.generator_batchnorm": True})
  gan = build_gan(config, IMAGE)
  _fit_recording(gan, 2, config)

  def trackables(g):
    return {"generator": _VariableSet(g.generator),
            "discriminator": _VariableSet(g.discriminator),
            "ema_generator": _VariableSet(g.ema_generator)}
  path = tf.train.Checkpoint(**trackables(gan)).write(str(tmp_path / "ckpt"))
  keras.utils.set_random_seed(99)
  other = build_gan(config, IMAGE)
  tf.train.Checkpoint(**trackables(other)).read(path).assert_existing_objects_matched()
  for model in ("generator", "discriminator", "ema_generator"):
    for a, b in zip(getattr(gan, model).variables, getattr(other, model).variables):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.allclose(other.ema_generator.variables[0].numpy(),
                         other.generator.variables[0].numpy())


def test_run_checkpoints_the_ema_generator_only_when_enabled(tmp_path,
                                                              default_strategy):
  plain = Run(tiny_run_config(tmp_path / "plain"), default_strategy)
  assert "ema_generator" not in plain.trackables
  config = tiny_run_config(tmp_path / "ema", **{"model.ema_decay": 0.9})
  run = Run(config, default_strategy)
  assert set(run.trackables) == {"generator", "discriminator", "g_optimizer",
                                 "d_optimizer", "ema_generator"}
  for v in run.gan.ema_generator.variables:
    v.assign(v + 1.0)
  saved = [v.numpy().copy() for v in run.gan.ema_generator.variables]
  run.manager.save(checkpoint_number=0)
  restored = Run(config, default_strategy)
  assert restored.restore(require=True) == 0
  for a, b in zip(saved, restored.gan.ema_generator.variables):
    np.testing.assert_array_equal(a, b.numpy())


# ------------------------------------------------------------------ configuration
def test_mismatched_image_size_names_the_flags():
  config = conv_config()
  with pytest.raises(ConfigError, match=r"--model.generator_base_size=2 and "
                     r"--model.generator_channels=8,4 make 8x8 images.*16x16"):
    build_generator(config, (16, 16, 3))
  with pytest.raises(ConfigError, match="images"):
    build_generator(config, (2,))
  with pytest.raises(ConfigError, match="images"):
    build_discriminator(config, (64,), 0)
  # 28x28 Stacked-MNIST: base 7 with two widths; 64x64: base 4 with four.
  assert build_generator(config.replace(**{"model.generator_base_size": 7}),
                         (28, 28, 3))(tf.zeros([1, LATENT])).shape == (K, 1, 28, 28, 3)
  celeba = config.replace(**{"model.generator_base_size": 4, "model.num_generators": 1,
                             "model.generator_channels": (16, 8, 8, 4),
                             "model.generator_batchnorm": True})
  assert build_generator(celeba, (64, 64, 3))(tf.zeros([2, LATENT])).shape == (
      1, 2, 64, 64, 3)


def test_spectral_norm_settings_are_checked():
  with pytest.raises(ConfigError, match="--model.discriminator_batchnorm=false"):
    build_discriminator(conv_config(**{"model.spectral_norm": True}), IMAGE, 0)
  mlp = Config().replace(**{"model.spectral_norm": True})
  with pytest.raises(ConfigError, match="--model.discriminator=dcgan"):
    build_discriminator(mlp, (2,), 0)


@pytest.mark.parametrize("changes, flag", [
    ({"model.generator_channels": (8, 0)}, "--model.generator_channels"),
    ({"model.generator_base_size": 0}, "--model.generator_base_size"),
    ({"model.discriminator_channels": ()}, "--model.discriminator_channels"),
    ({"model.ema_decay": 1.0}, "--model.ema_decay"),
    ({"model.init": "xavier"}, "--model.init"),
])
def test_config_checks_the_new_fields(changes, flag):
  with pytest.raises(ConfigError, match=flag):
    Config().replace(**changes).validate()


# ------------------------------------------------------------------ benchmark layouts
def test_benchmark_layouts_compute_the_same_function():
  bench = load_tool("benchmark_generator_layouts")
  gen = bench.reference_generator(2, latent_dim=LATENT, channels=(4, 3), base_size=2)
  z = tf.random.stateless_normal([3, LATENT], [5, 5])
  reference = gen(z).numpy()
  assert reference.shape == (2, 3, 8, 8, 3)
  for name in bench.LAYOUTS:
    out = bench.make_layout(name, gen)(z).numpy()
    np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_dcgan_select_equals_running_all_generators_and_picking(batchnorm):
  gen = EnsembleDCGANGenerator(3, channels=(8, 4), base_size=4, batchnorm=batchnorm)
  z = tf.random.normal([12, 6])
  gen(z)
  for _ in range(2):  # moving statistics away from their initial values
    gen(z * 2.0 + 0.5, training=True)
  k = tf.constant([2, 0, 0, 1, 2, 2, 1, 0, 2, 2, 0, 2])
  want = select_generator(gen(z, training=False), k).numpy()
  got = gen.select(z, k).numpy()
  assert got.shape == (12, 16, 16, 3)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_gan_generate_uses_select_in_inference_only():
  gan = build_gan(Config().replace(**{
      "model.generator": "dcgan", "model.discriminator": "dcgan",
      "model.num_generators": 3, "model.latent_dim": 6,
      "model.generator_channels": (8, 4), "model.generator_base_size": 4,
      "model.discriminator_channels": (4, 8), "model.generator_batchnorm": True,
  }).validate(), (16, 16, 3))
  calls = []
  select = gan.generator.select
  gan.generator.select = lambda z, k: calls.append(1) or select(z, k)
  z, k = tf.random.normal([5, 6]), tf.constant([0, 1, 2, 1, 0])
  gan.generate(z, k)
  assert calls == [1]
  gan.generate(z, k, training=True)  # batch statistics: all generators, then pick
  assert calls == [1]

  # Under XLA, with generator indices drawn inside the compiled function (the split
  # cannot be compiled then), all generators run and the rows are picked.
  @tf.function(jit_compile=True)
  def energy_and_gradient(z, seed):
    k = tf.random.stateless_uniform([5], seed, 0, 3, dtype=tf.int32)
    with tf.GradientTape() as tape:
      tape.watch(z)
      e = tf.reduce_sum(tf.square(gan.generate(z, k)))
    return e, tape.gradient(e, z), k
  e, grad, k = energy_and_gradient(z, tf.constant([3, 4]))
  assert calls == [1]
  with tf.GradientTape() as tape:
    tape.watch(z)
    e_eager = tf.reduce_sum(tf.square(gan.generate(z, k)))
  np.testing.assert_allclose(e.numpy(), e_eager.numpy(), rtol=1e-4)
  np.testing.assert_allclose(grad.numpy(), tape.gradient(e_eager, z).numpy(),
                             rtol=1e-3, atol=1e-5)


def test_batchnorm_discriminator_sees_real_and_fake_batches_separately():
  config = Config().replace(**{
      "model.generator": "dcgan", "model.discriminator": "dcgan",
      "model.num_generators": 2, "model.latent_dim": 6,
      "model.generator_channels": (8, 4), "model.generator_base_size": 4,
      "model.discriminator_channels": (4, 8), "model.discriminator_batchnorm": True,
      "loss.classifier_weight": 0.1}).validate()
  gan = build_gan(config, (16, 16, 3))
  assert gan.discriminator.uses_batch_statistics
  real = tf.random.normal([5, 16, 16, 3])
  fakes = tf.random.normal([2, 3, 16, 16, 3]) * 0.3 + 0.5  # other statistics
  real_logits, fake_logits, fake_classes = gan._discriminate(real, fakes)  # pylint: disable=protected-access
  alone_real, _ = gan.discriminator(real, training=True)
  alone_fake, alone_classes = gan.discriminator(tf.reshape(fakes, [6, 16, 16, 3]),
                                                training=True)
  np.testing.assert_allclose(real_logits.numpy(), alone_real.numpy(), atol=1e-5)
  np.testing.assert_allclose(fake_logits.numpy(), alone_fake.numpy().reshape(2, 3),
                             atol=1e-5)
  np.testing.assert_allclose(fake_classes.numpy(),
                             alone_classes.numpy().reshape(2, 3, 2), atol=1e-5)
  # The generators' update scores fakes exactly as the discriminator's update does.
  _, fake_logits_g, _ = gan._discriminate(None, fakes)  # pylint: disable=protected-access
  np.testing.assert_allclose(fake_logits_g.numpy(), fake_logits.numpy(), atol=1e-5)
  # Without batch statistics one pass over both gives the same as separate passes.
  plain = build_gan(config.replace(**{"model.discriminator_batchnorm": False}),
                    (16, 16, 3))
  assert not plain.discriminator.uses_batch_statistics
  both, fake_both, _ = plain._discriminate(real, fakes)  # pylint: disable=protected-access
  np.testing.assert_allclose(both.numpy(), plain.discriminator(real)[0].numpy(),
                             atol=1e-5)
  assert fake_both.shape == (2, 3)
