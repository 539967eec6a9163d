"""Tests for tf_stackelberg.game.StackelbergGAN: a few training steps on tiny models.

One training step of every update order and every loss family is compared with the
same step rolled by hand (`tf.GradientTape` on copies of the models, plain SGD so the
update is exactly `w - lr * grad`). Further tests cover the reported metrics, training
with each loss family, the gradient penalty of the wasserstein family, examples of
other shapes, sampling and prediction, independent latents per generator, detection of
non-finite losses and the reproducibility of training (latents are a function of the
seed and the step only).

Op determinism is switched on for this module (and restored afterwards).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from tf_stackelberg.config.sections import Config
from tf_stackelberg.data.mixtures import make_dataset, ring
from tf_stackelberg.game.builder import build_discriminator, build_gan, build_generator
from tf_stackelberg.game.losses import wasserstein
from tf_stackelberg.game.losses.registry import LOSSES
from tf_stackelberg.common.salts import GRADIENT_PENALTY
from tf_stackelberg.game.stackelberg_gan import StackelbergGAN

K = 3
BATCH = 16
LR = 0.1  # SGD step of the hand-rolled comparison: large enough to matter
NO_STEP = np.iinfo(np.int64).max
FAMILIES = ("non_saturating", "hinge", "wasserstein", "least_squares")


@pytest.fixture(scope="module", autouse=True)
def op_determinism():
  was_enabled = tf_config.is_op_determinism_enabled()
  tf.config.experimental.enable_op_determinism()
  yield
  if not was_enabled:
    tf_config.disable_op_determinism()


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(0)


def tiny_config(**changes):
  """A validated tiny game; `changes` by flag name ('loss.family')."""
  values = {"model.num_generators": K, "model.generator_hidden": (8,),
            "model.discriminator_hidden": (16, 8), "game.batch_size": BATCH,
            "data.size": 64, "runtime.jit_compile": False,
            "trainer.steps_per_execution": 1, "trainer.train_steps": 4, "eval.every": 2,
            "seed": 3}
  values.update(changes)
  return Config().replace(**values).validate()


def real_batches(num_steps, start_step=0, seed=0):
  return make_dataset(ring(), BATCH, seed=seed, dataset_size=64, start_step=start_step,
                      num_steps=num_steps)


def weights(model):
  return [v.numpy().copy() for v in model.trainable_variables]


def all_weights(gan):
  return weights(gan.generator) + weights(gan.discriminator)


def fit(gan, dataset):
  return gan.fit(dataset, epochs=1, verbose=0, shuffle=False).history


def first_nonfinite_step(gan):
  """The value of the model's `first_nonfinite_step` metric."""
  tracker = [m for m in gan.metrics if m.name == "first_nonfinite_step"][0]
  return int(tracker.result().numpy())


def sgd_gan(config):
  """The game `config` describes, with plain SGD(LR) for both players."""
  gan = StackelbergGAN(build_generator(config, (2,)),
                       build_discriminator(config, (2,), K),
                       latent_dim=2, loss=LOSSES.get(config.loss.family)(config.loss),
                       update_order=config.game.update_order,
                       classifier_weight=config.loss.classifier_weight, seed=config.seed)
  gan.compile(g_optimizer=keras.optimizers.SGD(LR), d_optimizer=keras.optimizers.SGD(LR),
              steps_per_execution=1, jit_compile=False)
  gan.build_all([2])
  return gan


# ------------------------------------------------------------------ hand-rolled step
def d_pass(disc, x):
  """D on x [..., N, 2] folded to [N', 2]; logits and class logits reshaped back."""
  lead = x.shape[:-1]
  logits, classes = disc(tf.reshape(x, [-1, 2]))
  logits = tf.reshape(logits, lead)
  if classes is not None:
    classes = tf.reshape(classes, list(lead) + [-1])
  return logits, classes


def class_ce(classes):
  """sum_k mean_b -log softmax(C(G_k(z)))[k] for classes [K, B, K]."""
  log_p = tf.nn.log_softmax(classes, axis=-1)
  return -tf.add_n([tf.reduce_mean(log_p[k, :, k]) for k in range(classes.shape[0])])


def mean_b(x):
  return tf.reduce_mean(x, axis=-1)


# Per family, written out: G's per-game losses [K] from fake logits [K, B]; D's real
# term (one game's) from real logits [B] and its per-game fake terms [K].
G_LOSS = {
    "non_saturating": lambda f: mean_b(tf.nn.softplus(-f)),
    "hinge": lambda f: -mean_b(f),
    "wasserstein": lambda f: -mean_b(f),
    "least_squares": lambda f: mean_b(0.5 * tf.square(f - 1.0)),
}
D_LOSS = {
    "non_saturating": lambda r, f: (0.5 * mean_b(tf.nn.softplus(-r)),
                                    0.5 * mean_b(tf.nn.softplus(f))),
    "hinge": lambda r, f: (mean_b(tf.nn.relu(1.0 - r)), mean_b(tf.nn.relu(1.0 + f))),
    "wasserstein": lambda r, f: (-mean_b(r), mean_b(f)),
    "least_squares": lambda r, f: (mean_b(0.5 * tf.square(r - 1.0)),
                                   mean_b(0.5 * tf.square(f))),
}


def g_objective(gen, disc, z, beta, family):
  fake_logits, fake_classes = d_pass(disc, gen(z, training=True))
  per_generator = G_LOSS[family](fake_logits)
  c = class_ce(fake_classes) if beta else tf.constant(0.0)
  return tf.reduce_sum(per_generator) + beta * c, per_generator, c


def penalty_seed(seed, step):
  """The stateless seed of the gradient penalty's interpolation weights at `step`."""
  return tf.random.experimental.stateless_fold_in(
      tf.constant([seed, step], tf.int64), tf.constant(GRADIENT_PENALTY, tf.int64))


def d_objective(disc, real, fakes, beta, family, penalty):
  """D's objective; `penalty` is (lambda, seed) of the wasserstein family or None."""
  real_logits, _ = d_pass(disc, real)
  fake_logits, fake_classes = d_pass(disc, fakes)
  real_term, fake_terms = D_LOSS[family](real_logits, fake_logits)
  total = tf.reduce_sum(real_term + fake_terms)  # the real term counts in every game
  c = class_ce(fake_classes) if beta else tf.constant(0.0)
  objective = total + beta * c
  if penalty is not None:
    weight, seed = penalty
    objective += wasserstein.gradient_penalty(lambda x: disc(x)[0], real, fakes, seed,
                                              BATCH, weight=weight)
  return objective, total, real_term, c


def sgd(variables, grads):
  for v, g in zip(variables, grads):
    v.assign(v - LR * g)


def hand_rolled_step(order, gen, disc, real, z, beta, family="non_saturating",
                     penalty=None):
  """One step of the game on the models `gen`, `disc` (updated in place).

  Returns the metrics the step should report.
  """
  g_vars, d_vars = gen.trainable_variables, disc.trainable_variables

  def g_step():
    with tf.GradientTape() as tape:
      objective, per, c = g_objective(gen, disc, z, beta, family)
    sgd(g_vars, tape.gradient(objective, g_vars))
    return per, c

  def d_step():
    fakes = gen(z, training=True)  # fakes of the current generators
    with tf.GradientTape() as tape:
      objective, total, real_term, c = d_objective(disc, real, fakes, beta, family,
                                                   penalty)
    sgd(d_vars, tape.gradient(objective, d_vars))
    return total, real_term, c

  if order == "g_first":
    per, c = g_step()
    d_total, real_term, _ = d_step()
  elif order == "d_first":
    d_total, real_term, c = d_step()
    per, _ = g_step()
  else:
    with tf.GradientTape(persistent=True) as tape:
      g_obj, per, c = g_objective(gen, disc, z, beta, family)
      fakes = tf.stop_gradient(gen(z, training=True))
      d_obj, d_total, real_term, _ = d_objective(disc, real, fakes, beta, family,
                                                 penalty)
    g_grads = tape.gradient(g_obj, g_vars)
    d_grads = tape.gradient(d_obj, d_vars)
    del tape
    sgd(g_vars, g_grads)
    sgd(d_vars, d_grads)
  metrics = {"g_loss": float(tf.reduce_sum(per)), "d_loss": float(d_total),
             "d_real_loss": float(real_term)}
  metrics.update({f"g_loss_{k}": float(per[k]) for k in range(K)})
  if beta:
    metrics["classifier_loss"] = float(c)
  return metrics


@pytest.mark.parametrize("order,beta,family,penalty_weight", [
    ("g_first", 0.0, "non_saturating", None),
    ("g_first", 0.5, "non_saturating", None),
    ("d_first", 0.5, "non_saturating", None),
    ("simultaneous", 0.5, "non_saturating", None),
    ("g_first", 0.0, "hinge", None),
    ("d_first", 0.5, "least_squares", None),
    ("simultaneous", 0.5, "wasserstein", 0.0),
    ("g_first", 0.0, "wasserstein", 10.0),
    ("d_first", 0.5, "wasserstein", 1.0),
    ("simultaneous", 0.0, "wasserstein", 10.0),
])
def test_one_step_equals_hand_rolled_gradient_step(order, beta, family, penalty_weight):
  changes = {"game.update_order": order, "loss.classifier_weight": beta,
             "loss.family": family}
  if penalty_weight is not None:
    changes["loss.gradient_penalty"] = penalty_weight
  config = tiny_config(**changes)
  gan = sgd_gan(config)
  # Copies of both players with the same weights.
  gen, disc = build_generator(config, (2,)), build_discriminator(config, (2,), K)
  gen(tf.zeros([1, 2]))
  disc(tf.zeros([1, 2]))
  gen.set_weights(gan.generator.get_weights())
  disc.set_weights(gan.discriminator.get_weights())
  g_before, d_before = weights(gan.generator), weights(gan.discriminator)

  real = next(iter(real_batches(1)))
  z = gan._latents(BATCH)  # the latents of step 0
  assert z.shape == (BATCH, 2)
  penalty = (None if family != "wasserstein"
             else (penalty_weight, penalty_seed(config.seed, 0)))
  expected = hand_rolled_step(order, gen, disc, real, z, beta, family, penalty)
  logs = gan.train_step(real)  # eager: the step itself, without Keras' loop

  assert int(gan.step.numpy()) == 1
  for got, want, before in zip(weights(gan.generator), weights(gen), g_before):
    assert np.abs(want - before).max() > 1e-4  # the step moved this variable
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  # The critic's output bias has no gradient in the wasserstein game (it cancels
  # between real and fake terms), nor in the hinge game while every logit is inside
  # the margins, as at initialisation.
  still = {"logit/bias"} if family in ("hinge", "wasserstein") else set()
  paths = [v.path for v in gan.discriminator.trainable_variables]
  for path, got, want, before in zip(paths, weights(gan.discriminator), weights(disc),
                                     d_before):
    if not path.endswith(tuple(still)):
      assert np.abs(want - before).max() > 1e-4, path
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  assert set(expected) <= set(logs)
  for name, value in expected.items():
    assert float(logs[name]) == pytest.approx(value, rel=1e-5, abs=1e-6), name
  assert first_nonfinite_step(gan) == NO_STEP


@pytest.mark.parametrize("order", ["g_first", "simultaneous"])
def test_wasserstein_penalty_changes_the_discriminator_update(order):
  """Same weights, same data, same latents: only D's gradient sees the penalty."""
  gans = {}
  for weight in (0.0, 10.0):
    keras.utils.set_random_seed(0)
    gans[weight] = sgd_gan(tiny_config(**{"loss.family": "wasserstein",
                                          "loss.gradient_penalty": weight,
                                          "game.update_order": order}))
  plain, penalised = gans[0.0], gans[10.0]
  penalised.set_weights(plain.get_weights())
  d_before = weights(plain.discriminator)
  real = next(iter(real_batches(1)))
  logs = {w: gan.train_step(real) for w, gan in gans.items()}
  # The generators' step does not involve the penalty.
  for a, b in zip(weights(plain.generator), weights(penalised.generator)):
    np.testing.assert_array_equal(a, b)
  # D's step does: its update differs, by more than rounding.
  differences = [np.abs(a - b).max() for a, b in zip(weights(plain.discriminator),
                                                     weights(penalised.discriminator))]
  steps = [np.abs(a - b).max() for a, b in zip(weights(plain.discriminator), d_before)]
  assert max(differences) > 1e-3 * max(steps)
  assert max(differences) > 1e-5
  # The reported D loss is the game's loss without the penalty.
  assert float(logs[0.0]["d_loss"]) == pytest.approx(float(logs[10.0]["d_loss"]),
                                                     rel=1e-6)


# ------------------------------------------------------------------ metrics
LOSS_NAMES = {"g_loss", "d_loss", "d_real_loss"} | {f"g_loss_{k}" for k in range(K)}


@pytest.mark.parametrize("order", ["g_first", "d_first", "simultaneous"])
def test_build_gan_trains_with_finite_metrics_and_flags_a_nan_step(order):
  # Three steps per compiled call: the marker still names the step inside a call.
  gan = build_gan(tiny_config(**{"game.update_order": order,
                                 "trainer.steps_per_execution": 3}), (2,))
  g_before, d_before = weights(gan.generator), weights(gan.discriminator)
  history = fit(gan, real_batches(3))
  # The non-finite marker is a metric of the model; the logs may leave it out.
  assert set(history) - {"first_nonfinite_step"} == LOSS_NAMES
  assert "first_nonfinite_step" in {m.name for m in gan.metrics}
  for name in LOSS_NAMES:
    assert np.isfinite(history[name][0]) and history[name][0] > 0, name
  # The generator losses add up to the total.
  assert history["g_loss"][0] == pytest.approx(
      sum(history[f"g_loss_{k}"][0] for k in range(K)), rel=1e-5)
  assert first_nonfinite_step(gan) == NO_STEP
  assert int(gan.step.numpy()) == 3
  assert int(gan.g_optimizer.iterations.numpy()) == 3
  for before, after in zip(g_before + d_before, all_weights(gan)):
    assert not np.allclose(before, after)

  # Steps 3..8 with a NaN in the real batch of step 4 (the middle of the second call).
  data = np.stack([b.numpy() for b in real_batches(6, start_step=3)])
  data[1, 3, 0] = np.nan
  history = fit(gan, tf.data.Dataset.from_tensor_slices(data))
  assert int(gan.step.numpy()) == 9
  assert first_nonfinite_step(gan) == 4
  assert gan.first_nonfinite_step() == 4
  assert np.isnan(history["d_loss"][0])


def test_classifier_head_adds_its_metric():
  gan = build_gan(tiny_config(**{"loss.classifier_weight": 0.1}), (2,))
  logs = gan.train_step(next(iter(real_batches(1))))
  assert set(logs) - {"first_nonfinite_step"} == LOSS_NAMES | {"classifier_loss"}
  # Untrained head: about log(K) per generator.
  assert float(logs["classifier_loss"]) == pytest.approx(K * np.log(K), rel=0.3)


def test_multi_branch_generator_trains():
  config = tiny_config(**{"model.generator": "multi_branch", "model.num_generators": 1,
                          "model.num_branches": 3, "model.branch_hidden": (8, 8)})
  gan = build_gan(config, (2,))
  logs = gan.train_step(next(iter(real_batches(1))))
  assert set(logs) - {"first_nonfinite_step"} == {
      "g_loss", "d_loss", "d_real_loss", "g_loss_0"}
  assert all(np.isfinite(float(logs[n])) for n in ("g_loss", "d_loss", "d_real_loss"))
  moving_mean = gan.generator.norms[1].norm.moving_mean.numpy()
  assert np.abs(moving_mean).max() > 0  # BatchNorm ran in training mode


@pytest.mark.parametrize("family", FAMILIES)
def test_every_loss_family_trains(family):
  config = tiny_config(**{"loss.family": family, "trainer.steps_per_execution": 3,
                          "loss.classifier_weight": 0.5})
  gan = build_gan(config, (2,))
  before = all_weights(gan)
  history = fit(gan, real_batches(6))
  assert int(gan.step.numpy()) == 6
  assert set(history) - {"first_nonfinite_step"} == LOSS_NAMES | {"classifier_loss"}
  for name, values in history.items():
    assert np.isfinite(values).all(), (family, name)
  assert history["g_loss"][0] == pytest.approx(
      sum(history[f"g_loss_{k}"][0] for k in range(K)), rel=1e-5, abs=1e-6)
  assert gan.first_nonfinite_step() is None
  # Every weight moves but the critic's output bias under hinge and wasserstein, which
  # gets no gradient (see test_one_step_equals_hand_rolled_gradient_step).
  paths = [v.path for v in gan.generator.trainable_variables +
           gan.discriminator.trainable_variables]
  for path, b, a in zip(paths, before, all_weights(gan)):
    if family in ("hinge", "wasserstein") and path.endswith("logit/bias"):
      continue
    assert not np.allclose(b, a), (family, path)
  assert all(np.isfinite(w).all() for w in all_weights(gan))


@pytest.mark.parametrize("family", ["non_saturating", "wasserstein"])
def test_game_trains_on_examples_of_another_shape(family):
  """Nothing in the game depends on the data being points in the plane."""
  config = tiny_config(**{"loss.family": family, "trainer.steps_per_execution": 2})
  gan = build_gan(config, (2, 3, 1))
  assert gan.generator(tf.zeros([4, 2])).shape == (K, 4, 2, 3, 1)
  samples, k = gan.sample(10, tf.constant([0, 1], tf.int64))
  assert samples.shape == (10, 2, 3, 1) and k.shape == (10,)
  images = np.random.default_rng(0).uniform(-1, 1, size=(4, BATCH, 2, 3, 1))
  before = all_weights(gan)
  history = fit(gan, tf.data.Dataset.from_tensor_slices(images.astype(np.float32)))
  assert int(gan.step.numpy()) == 4
  assert all(np.isfinite(v).all() for v in history.values())
  paths = [v.path for v in gan.generator.trainable_variables +
           gan.discriminator.trainable_variables]
  for path, b, a in zip(paths, before, all_weights(gan)):
    if family == "wasserstein" and path.endswith("logit/bias"):
      continue
    assert not np.allclose(b, a), path


# ------------------------------------------------------------------ latents
def test_shared_z_feeds_every_generator_the_same_latents():
  for shared, equal in ((True, True), (False, False)):
    gan = build_gan(tiny_config(**{"game.shared_z": shared}), (2,))
    # Make all generators identical: any difference then comes from their latents.
    for v in gan.generator.trainable_variables:
      v.assign(np.repeat(v.numpy()[:1], K, axis=0))
    z = gan._latents(BATCH)
    assert z.shape == ((BATCH, 2) if shared else (K, BATCH, 2))
    logs = gan.train_step(next(iter(real_batches(1))))
    losses = [float(logs[f"g_loss_{k}"]) for k in range(K)]
    kernel = gan.generator.trainable_variables[0].numpy()
    if equal:
      np.testing.assert_allclose(losses, losses[0], rtol=1e-6)
      np.testing.assert_allclose(kernel[1:], kernel[:1].repeat(K - 1, 0), rtol=1e-6)
    else:
      assert not np.allclose(z[0], z[1]) and not np.allclose(z[1], z[2])
      assert len(set(np.round(losses, 6))) == K
      assert not np.allclose(kernel[0], kernel[1])


def test_latents_are_a_function_of_seed_and_step():
  a, b = build_gan(tiny_config(seed=5), (2,)), build_gan(tiny_config(seed=5), (2,))
  other = build_gan(tiny_config(seed=6), (2,))
  for gan in (a, b, other):
    gan.d_optimizer.iterations.assign(7)
  z_a, z_b, z_other = a._latents(BATCH), b._latents(BATCH), other._latents(BATCH)
  np.testing.assert_array_equal(z_a.numpy(), z_b.numpy())
  assert not np.allclose(z_a, z_other)
  a.d_optimizer.iterations.assign(8)
  assert not np.allclose(a._latents(BATCH), z_a)
  # Standard normal: loose moment check on many draws.
  many = a._latents(20000).numpy()
  assert abs(many.mean()) < 0.05 and abs(many.std() - 1.0) < 0.05


def test_same_seed_and_steps_give_identical_weights_also_when_resumed():
  """Two runs from the same state (weights, optimizer slots, step counter) end equal,
  even when the second runs its steps in two calls as a resumed run would: the
  latents come from (seed, step), not from a random state a new call could reset."""
  gan = build_gan(tiny_config(), (2,))
  state = gan.generator.variables + gan.discriminator.variables
  state += gan.g_optimizer.variables + gan.d_optimizer.variables
  initial = [v.numpy().copy() for v in state]
  start = all_weights(gan)
  fit(gan, real_batches(3))
  uninterrupted = all_weights(gan)
  for v, value in zip(state, initial):  # back to the start (as from a checkpoint)
    v.assign(value)
  assert int(gan.step.numpy()) == 0
  fit(gan, real_batches(1))
  fit(gan, real_batches(2, start_step=1))
  assert int(gan.step.numpy()) == 3
  for wa, wb, w0 in zip(uninterrupted, all_weights(gan), start):
    assert not np.array_equal(wa, w0)
    np.testing.assert_array_equal(wa, wb)


# ------------------------------------------------------------------ sampling
@pytest.fixture(scope="module")
def untrained_gan():
  keras.utils.set_random_seed(1)
  return build_gan(tiny_config(), (2,))


def test_predict_on_latents_picks_a_generator_per_sample(untrained_gan):
  z = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
  out = untrained_gan.predict(z, verbose=0)
  assert set(out) == {"samples", "generator"}
  assert out["samples"].shape == (300, 2)
  assert out["generator"].shape == (300,)
  assert out["generator"].min() >= 0 and out["generator"].max() < K
  assert set(np.unique(out["generator"])) == set(range(K))
  all_outputs = untrained_gan.generator(z).numpy()
  np.testing.assert_allclose(out["samples"],
                             all_outputs[out["generator"], np.arange(300)],
                             rtol=1e-5, atol=1e-6)


def test_predict_with_k_uses_generator_k(untrained_gan):
  z = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32)
  all_outputs = untrained_gan.generator(z).numpy()
  for k in range(K):
    out = untrained_gan.predict({"z": z, "k": np.full(40, k, np.int32)}, verbose=0)
    np.testing.assert_array_equal(out["generator"], k)
    np.testing.assert_allclose(out["samples"], all_outputs[k], rtol=1e-5, atol=1e-6)
  mixed = np.arange(40) % K
  out = untrained_gan.predict({"z": z, "k": mixed}, verbose=0)
  np.testing.assert_allclose(out["samples"], all_outputs[mixed, np.arange(40)],
                             rtol=1e-5, atol=1e-6)


def test_sample_is_deterministic_in_its_seed(untrained_gan):
  s1, k1 = untrained_gan.sample(500, tf.constant([4, 2], tf.int64))
  s2, k2 = untrained_gan.sample(500, tf.constant([4, 2], tf.int64))
  s3, k3 = untrained_gan.sample(500, tf.constant([4, 3], tf.int64))
  assert s1.shape == (500, 2) and k1.shape == (500,)
  np.testing.assert_array_equal(s1.numpy(), s2.numpy())
  np.testing.assert_array_equal(k1.numpy(), k2.numpy())
  assert not np.allclose(s1, s3)
  assert not np.array_equal(k1.numpy(), k3.numpy())
  assert set(np.unique(k1.numpy())) == set(range(K))
  assert np.abs(s1.numpy()).max() < 1.0  # tanh outputs
  # Uniform over generators: counts within 5 standard errors.
  counts = np.bincount(k1.numpy(), minlength=K)
  assert np.all(np.abs(counts - 500 / K) < 5 * np.sqrt(500 * (1 / K) * (1 - 1 / K)))


def test_learning_rates_per_player():
  from tf_stackelberg.config.sections import Config as _Config  # pylint: disable=import-outside-toplevel
  from tf_stackelberg.game.builder import build_gan as _build_gan  # pylint: disable=import-outside-toplevel
  # The CIFAR-10 seed: 1e-5 for the generators, 5e-6 for the discriminator.
  config = _Config().replace(**{"game.generator_learning_rate": 1e-5,
                                "game.discriminator_learning_rate": 5e-6})
  gan = _build_gan(config, (2,))
  assert float(gan.g_optimizer.learning_rate) == pytest.approx(1e-5)
  assert float(gan.d_optimizer.learning_rate) == pytest.approx(5e-6)
  shared = _build_gan(_Config(), (2,))  # 0 means --game.learning_rate
  assert float(shared.g_optimizer.learning_rate) == pytest.approx(2e-4)
  assert float(shared.d_optimizer.learning_rate) == pytest.approx(2e-4)
