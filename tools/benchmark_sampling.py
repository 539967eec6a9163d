"""Latent MCMC on a deliberately imperfect GAN: sample quality at equal cost.

Trains a GAN on the 25-mode grid (`{-4,-2,0,2,4}^2`, std 0.05) for a short
time with one small generator, so that it still puts most samples between
the modes and covers them unevenly. Then, as discriminator rejection
sampling does, the generator is frozen and the discriminator alone trains a
little longer against it, so that its logit is closer to the log density
ratio the latent energy assumes. Samples are then drawn with every sampler of
`tf_stackelberg.sampling.sample_latents`:

  none   the generator alone (z ~ N(0, I), k uniform)
  mh     MH-GAN: independence Metropolis-Hastings with prior proposals
  ddls   DDLS: unadjusted Langevin on E(z) = -log p0(z) - d_c(G(z))
  rep    REP-GAN: MALA on E with the same fixed step
  wl     Wang-Landau / SAMC flattening around MALA (adaptive step, energy range
         from a warm-up inside the same budget), importance-resampled
  wl unweighted  the same Wang-Landau run's final chain states, not
         reweighted (the WL-GAN reference code's output: draws of the
         flattened law)
  wl former      with --wl_former: Wang-Landau with the defaults it had before
         the unbiased ones (shaped visits, warmup_visit_fraction 0.5,
         collect_fraction 0.5, range_margin 0.25; docs/design.md 14.4)

The discriminator logit is calibrated first (`sampling.calibrate`: logistic
fit of held-out real against generated logits). For a 2-D latent, one more
row, `exact`, draws from the target `pi(z) ~ exp(-E(z))` itself on a fine
latent grid (a reference for what a perfect sampler of this energy gives; its
cost is not comparable). Every MCMC sampler runs the same number of chains
and the same number of transitions, i.e. the same number of G and D
evaluations (one per chain and step; `evals` counts them, bootstraps and
warm-up included; the gradient samplers also back-propagate, MH does not).

Table 1 columns:
  modes        grid modes with at least one high-quality sample (of 25)
  HQ %         share of samples within 3 std of their nearest mode
  rev KL       KL of the high-quality mode histogram against uniform
  E range      1% .. 99% quantiles of the energies visited by the chains
               (initial states, and the warm-up for wl, included; for
               "wl unweighted" those of its returned states)
  E width      their difference
  accept       mean acceptance of the latent moves
  ess          Kish effective sample size of the importance weights (wl);
               the number of chains otherwise
  evals        G and D evaluations, in units of the number of chains
  time s       wall time of the sampler call, compilation included

Table 2: per-step cost of the Wang-Landau kernel against its inner MALA
kernel alone, on the same chains and energy, each in the same XLA-compiled
`tf.while_loop`. Rounds alternate between the two kernels (in alternating
order) so that outside load falls on both alike; the best round of each gives
the ms/step, CPU time of this process per step is shown as a cross-check,
and the median over rounds of the per-round ratio is the steadier overhead
figure on a shared machine (best-of ratios compare two independent minima).

Usage (from the repository root):
  python tools/benchmark_sampling.py            # full run
  python tools/benchmark_sampling.py --quick    # about two minutes
"""

import argparse
import dataclasses
import functools

# Silence TensorFlow's start-up chatter; the table is the output.
from tf_stackelberg.console import startup

startup.import_tensorflow_quietly()

import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_stackelberg.common import files  # pylint: disable=g-import-not-at-top
from tf_stackelberg.config.sections import Config  # pylint: disable=g-import-not-at-top
from tf_stackelberg.data import mixtures  # pylint: disable=g-import-not-at-top
from tf_stackelberg.data.registry import DATASETS  # pylint: disable=g-import-not-at-top
from tf_stackelberg.game.builder import build_gan  # pylint: disable=g-import-not-at-top
from tf_stackelberg.metrics.mixture_metrics import mixture_metrics  # pylint: disable=g-import-not-at-top
from tf_stackelberg import sampling  # pylint: disable=g-import-not-at-top
from tf_stackelberg.app import latent  # pylint: disable=g-import-not-at-top
from tf_stackelberg.sampling import wang_landau as wl_lib  # pylint: disable=g-import-not-at-top
from tf_stackelberg.sampling.samplers.wl import energy_range_from_warmup  # pylint: disable=g-import-not-at-top
from toolkit import timing  # pylint: disable=g-import-not-at-top

SAMPLER_ORDER = ('none', 'mh', 'ddls', 'rep', 'wl')
ROW_ORDER = SAMPLER_ORDER + ('wl unweighted', 'wl former', 'exact')
# The Wang-Landau defaults before the unbiased ones (docs/design.md 14.4).
FORMER_WL = dict(warmup_visit_fraction=0.5, collect_fraction=0.5,
                 range_margin=0.25)


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--quick', action='store_true',
                      help='Small run (fewer training steps, chains, steps).')
  parser.add_argument('--train_steps', type=int, default=None,
                      help='GAN training steps (default 10000; quick 2000).')
  parser.add_argument('--d_steps', type=int, default=None,
                      help='Discriminator-only steps against the frozen '
                      'generator after training (default 1000; quick 300).')
  parser.add_argument('--num_generators', type=int, default=1)
  parser.add_argument('--generator_hidden', default='128',
                      help='Hidden widths of the generator, comma-separated.')
  parser.add_argument('--num_samples', type=int, default=None,
                      help='Chains = samples per sampler (default 10000; '
                      'quick 2000).')
  parser.add_argument('--mcmc_steps', type=int, default=None,
                      help='Transitions per chain (default 640; quick 200).')
  parser.add_argument('--step_size', type=float, default=0.01)
  parser.add_argument('--wl_bins', type=int, default=50)
  parser.add_argument('--wl_t0', type=float, default=300.)
  parser.add_argument('--joint', action=argparse.BooleanOptionalAction,
                      default=True)
  parser.add_argument('--no_calibrate', action='store_true')
  parser.add_argument('--wl_former', action='store_true',
                      help='Also run Wang-Landau with its former defaults '
                      '(row "wl former").')
  parser.add_argument('--timing_steps', type=int, default=None,
                      help='Steps per timing round (default 100; quick 30).')
  parser.add_argument('--timing_rounds', type=int, default=None,
                      help='Timing rounds per kernel (default 5; quick 3).')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--json', default='', help='Also write results here.')
  args = parser.parse_args(argv)
  quick = args.quick
  defaults = dict(train_steps=(2000, 10000), d_steps=(300, 1000),
                  num_samples=(2000, 10000), mcmc_steps=(200, 640),
                  timing_steps=(20, 50), timing_rounds=(4, 15))
  for name, (quick_value, full_value) in defaults.items():
    if getattr(args, name) is None:
      setattr(args, name, quick_value if quick else full_value)
  return args


def train_gan(args):
  """A short training run of a small GAN on the grid (imperfect on purpose)."""
  config = Config().replace(**{
      'data.dataset': 'grid', 'data.size': 0, 'model.generator_output': 'linear',
      'model.num_generators': args.num_generators,
      'model.generator_hidden': tuple(
          int(w) for w in args.generator_hidden.split(',')),
      'model.latent_dim': 2, 'trainer.train_steps': args.train_steps,
      'eval.every': args.train_steps, 'trainer.steps_per_execution': 100,
      'runtime.jit_compile': True, 'seed': args.seed}).validate()
  data = DATASETS.get(config.data.dataset)(config.data)
  dataset = data.batches(config.game.batch_size, config.seed, start_step=0,
                         num_steps=config.trainer.train_steps)
  gan = build_gan(config, data.element_shape)
  with timing.Stopwatch() as watch:
    gan.fit(dataset, epochs=1, steps_per_epoch=config.trainer.train_steps,
            shuffle=False, verbose=0)
  return gan, data.spec, watch.wall


def finetune_discriminator(gan, spec, num_steps, seed, batch_size=256):
  """Trains D alone against the frozen generator (fresh data every step)."""
  if num_steps <= 0:
    return
  optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)

  @tf.function(jit_compile=True)
  def step(i):
    real, _ = mixtures.draw_points(
        spec, batch_size, tf.stack([tf.constant(seed + 500, tf.int64),
                                    tf.cast(i, tf.int64)]))
    fake, _ = gan.sample(batch_size, tf.stack([seed + 900, i]))
    latent.logistic_discriminator_update(gan.discriminator, optimizer, real, fake)

  for i in range(num_steps):
    step(tf.constant(i))


def exact_row(gan, spec, calibration, num_samples, seed, points=1000,
              half_width=4.5):
  """Draws from pi(z) ~ exp(-E(z)) on a fine grid of a 2-D latent."""
  energy = latent.latent_model(gan, calibration).energy_fn()
  axis = np.linspace(-half_width, half_width, points)
  grid = np.stack(np.meshgrid(axis, axis, indexing='ij'),
                  -1).reshape(-1, 2).astype(np.float32)
  log_p, zs, ks = [], [], []
  for k in range(gan.num_generators):
    for start in range(0, len(grid), 200000):
      block = tf.constant(grid[start:start + 200000])
      log_p.append(-energy(block, k).numpy())
    zs.append(grid)
    ks.append(np.full(len(grid), k, np.int32))
  log_p = np.concatenate(log_p)
  prob = np.exp(log_p - log_p.max())
  prob /= prob.sum()
  rng = np.random.default_rng(seed)
  index = rng.choice(prob.size, size=num_samples, p=prob)
  cell = 2 * half_width / (points - 1)
  z = np.concatenate(zs)[index] + rng.uniform(
      -cell / 2, cell / 2, size=(num_samples, 2)).astype(np.float32)
  x = gan.generate(tf.constant(z), tf.constant(np.concatenate(ks)[index]))
  metrics = mixture_metrics(x.numpy(), spec.centers, spec.std)
  q01, q99 = np.quantile(-log_p[index], [0.01, 0.99])
  return dict(modes=metrics['modes'],
              high_quality=100. * metrics['high_quality'],
              reverse_kl=metrics['reverse_kl'], energy_q01=q01,
              energy_q99=q99, acceptance=float('nan'),
              ess=float(num_samples), evaluations=float('nan'),
              seconds=float('nan'))


def calibration_samples(gan, spec, seed, num=5000):
  """Held-out real points and fresh generator samples for the calibration."""
  real, _ = mixtures.draw_points(spec, num, tf.constant([seed, 77], tf.int64))
  fake, _ = gan.sample(num, tf.constant([seed, 78], tf.int32))
  return real, fake


def run_samplers(args, gan, spec, calibration):
  rows = {}
  model = latent.latent_model(gan, calibration)
  settings = sampling.SamplerSettings(
      step_size=args.step_size, joint=args.joint, num_bins=args.wl_bins,
      t0=args.wl_t0)
  runs = [(name, name, settings) for name in SAMPLER_ORDER]
  if args.wl_former:
    runs.append(('wl former', 'wl', dataclasses.replace(settings, **FORMER_WL)))
  for row, sampler, row_settings in runs:
    with timing.Stopwatch() as watch:  # compilation included
      result = sampling.sample_latents(
          sampler, model, args.num_samples, args.mcmc_steps,
          tf.constant([args.seed, 1000], tf.int32), row_settings,
          jit_compile=True)
    elapsed = watch.wall
    metrics = mixture_metrics(result.x, spec.centers, spec.std)
    d = result.diagnostics
    rows[row] = dict(
        modes=metrics['modes'], high_quality=100. * metrics['high_quality'],
        reverse_kl=metrics['reverse_kl'],
        energy_q01=d['energy_q01'], energy_q99=d['energy_q99'],
        energy_min=d['energy_min'], energy_max=d['energy_max'],
        acceptance=d['acceptance_rate'], ess=d['ess'],
        evaluations=d['num_energy_evaluations'] / args.num_samples,
        step_size=d['step_size'], seconds=elapsed)
    if row == 'wl':
      rows['wl unweighted'] = unweighted_row(gan, spec, d, rows['wl'])
  return rows


def unweighted_row(gan, spec, diagnostics, weighted):
  """The Wang-Landau run's final chain states, scored without reweighting."""
  z, k, energy = (diagnostics[f'unweighted_{name}']
                  for name in ('z', 'k', 'energy'))
  x = gan.generate(tf.constant(z), tf.constant(k))
  metrics = mixture_metrics(np.asarray(x), spec.centers, spec.std)
  q01, q99 = np.quantile(energy, [0.01, 0.99])
  return dict(weighted, modes=metrics['modes'],
              high_quality=100. * metrics['high_quality'],
              reverse_kl=metrics['reverse_kl'], energy_q01=q01,
              energy_q99=q99, ess=float(len(energy)), seconds=float('nan'))


def time_kernels(args, gan, calibration):
  """Per-step wall and CPU time of WL and of its inner MALA, same chains."""
  energy = latent.latent_model(gan, calibration).energy_fn()
  num_chains = args.num_samples

  def energy_fn(z):
    return energy(z, tf.zeros([num_chains], tf.int32))

  z0 = gan.latent_prior.sample([num_chains, gan.latent_dim], tf.constant([3, 3]))
  lo, hi = energy_range_from_warmup(energy_fn(z0))
  kernels = {
      'mala': wl_lib.make_mala_kernel(lambda z: -energy_fn(z),
                                      args.step_size),
      'wl': wl_lib.WangLandau(energy_fn, lo, hi, num_bins=args.wl_bins,
                              step_size=args.step_size,
                              bias_gain_t0=args.wl_t0,
                              num_adaptation_steps=args.timing_steps),
  }
  loops = {}
  for name, kernel in kernels.items():
    def loop(state, results, seed, kernel=kernel):
      def body(i, state, results):
        step_seed = tf.random.experimental.stateless_fold_in(seed, i)
        state, results = kernel.one_step(state, results, seed=step_seed)
        return i + 1, state, results
      _, state, results = tf.while_loop(
          lambda i, *_: i < args.timing_steps, body,
          (tf.constant(0), state, results),
          maximum_iterations=args.timing_steps)
      return state, results
    loops[name] = (tf.function(loop, jit_compile=True, autograph=False),
                   kernel.bootstrap_results(z0))
  seed = tf.constant([5, 5], tf.int32)

  def run(name, _):
    loop, results = loops[name]
    state, _ = loop(z0, results, seed)
    state.numpy()

  # One warm-up call each compiles; the order alternates from round to round so
  # that a slow drift of the machine's load favours neither kernel.
  series = timing.round_robin(
      {name: {'loop': functools.partial(run, name)} for name in loops},
      args.timing_rounds, warmup=1)
  best = {name: (series[name]['loop'].best_wall / args.timing_steps,
                 series[name]['loop'].best_cpu / args.timing_steps)
          for name in loops}
  ratios = [wl / mala for wl, mala in zip(series['wl']['loop'].wall,
                                          series['mala']['loop'].wall)]
  best['median_round_ratio'] = float(np.median(ratios))
  return best


def print_tables(args, rows, kernel_times, train_seconds, calibration):
  print('GAN: grid, {} generator(s) of hidden widths {}, {} training steps '
        '+ {} discriminator-only steps ({:.0f} s); calibration a={:.3f} '
        'b={:.3f}'.format(args.num_generators, args.generator_hidden,
                          args.train_steps, args.d_steps, train_seconds,
                          *(calibration or (1., 0.))))
  print('Sampling: {} chains x {} steps, step {}, joint={}, WL bins {} t0 {}'
        .format(args.num_samples, args.mcmc_steps, args.step_size,
                args.joint, args.wl_bins, args.wl_t0))
  print()
  header = ('| sampler | modes | HQ % | rev KL | E range (1%..99%) | E width '
            '| accept | ess | evals | time s |')
  print(header)
  print('|' + '---|' * (header.count('|') - 1))
  for name in ROW_ORDER:
    if name not in rows:
      continue
    r = rows[name]
    def fmt(value, spec):
      return '-' if np.isnan(value) else format(value, spec)

    print('| {} | {} | {:.1f} | {:.3f} | {:.1f} .. {:.1f} | {:.1f} | {} | '
          '{:.0f} | {} | {} |'.format(
              name, r['modes'], r['high_quality'], r['reverse_kl'],
              r['energy_q01'], r['energy_q99'],
              r['energy_q99'] - r['energy_q01'], fmt(r['acceptance'], '.2f'),
              r['ess'], fmt(r['evaluations'], '.0f'),
              fmt(r['seconds'], '.1f')))
  print()
  print('| kernel ({} chains, XLA loop of {} steps) | ms/step (best of {}) '
        '| CPU ms/step (best) | ratio to MALA (best; median of rounds) |'
        .format(args.num_samples, args.timing_steps, args.timing_rounds))
  print('|---|---|---|---|')
  for name in ('mala', 'wl'):
    wall, cpu = kernel_times[name]
    ratio = ('1' if name == 'mala' else '{:.3f}; {:.3f}'.format(
        wall / kernel_times['mala'][0], kernel_times['median_round_ratio']))
    print('| {} | {:.2f} | {:.2f} | {} |'.format(
        'MALA (inner kernel alone)' if name == 'mala' else
        'Wang-Landau around MALA', 1e3 * wall, 1e3 * cpu, ratio))


def main(argv=None):
  args = parse_args(argv)
  keras.utils.set_random_seed(args.seed)  # weights and Python/numpy draws
  gan, spec, train_seconds = train_gan(args)
  with timing.Stopwatch() as watch:
    finetune_discriminator(gan, spec, args.d_steps, args.seed)
  train_seconds += watch.wall
  calibration = None
  if not args.no_calibrate:
    real, fake = calibration_samples(gan, spec, args.seed)
    calibration = sampling.calibrate(latent.gan_callables(gan)[1], real, fake)
  rows = run_samplers(args, gan, spec, calibration)
  if gan.latent_dim == 2:
    rows['exact'] = exact_row(gan, spec, calibration, args.num_samples,
                              args.seed)
  kernel_times = time_kernels(args, gan, calibration)
  print_tables(args, rows, kernel_times, train_seconds, calibration)
  if args.json:
    files.write_json(args.json, dict(args=vars(args), rows=rows, timing=kernel_times,
                                     calibration=calibration))


if __name__ == '__main__':
  main()
