"""Latent MCMC on trained image GANs: sample quality at an equal number of evaluations.

For each run directory given (`--model_dir`, repeatable; its flags.json gives the
model, the data set and the default sampler settings), the newest checkpoint is
restored, the discriminator logit is calibrated as `--mode=sample` does, and every
sampler of `tf_stackelberg.sampling.sample_latents` draws `--chains` samples from the
same starting states (one seed):

  none   the generator alone (z ~ p0, k uniform): one evaluation per sample, the
         baseline without MCMC
  mh     MH-GAN: independence Metropolis-Hastings with prior proposals (forward only)
  ddls   DDLS: unadjusted Langevin on E(z, k) = -log p0(z) - d_c(G_k(z))
  rep    REP-GAN: MALA on E with the same fixed step
  wl     Wang-Landau / SAMC flattening around MALA (initial step the same; energy
         range from a warm-up inside the same budget), importance-resampled

Equal cost. `--budget` is the number of latent points each chain passes through G and
D. Each sampler gets the most steps whose run costs at most that
(`sampling.steps_for_budget`): with K > 1 generators and joint (k, z) moves a
Langevin step costs two evaluations (the generator move and the latent move) and an
MH-GAN step one (its proposal draws k with z); the bootstraps count, and so does the
Wang-Landau warm-up that sets its energy range (two bootstraps). The table shows the
evaluations per chain the run itself counted (`num_energy_evaluations / chains`) and
how many of them back-propagate: MH-GAN's are forward passes only, the Langevin
samplers' also a backward pass, which the wall times show.

The samples of every sampler are evaluated with the data set's classifier evaluator
(its cached classifier, `tools/train_classifier.py`) against the test images:

  score      classifier score (exp of the mean KL of p(y|x) to p(y)), higher is better
  FID, KID   Frechet and kernel distances in the classifier's feature space, lower
             is better
  classes    classes predicted for at least one sample
  label KL   KL of the predicted-label histogram to uniform, lower is better
  E range    1% .. 99% quantiles of the energies the chains visited (initial states
             and the Wang-Landau warm-up included; for none the generator's samples)
  E width    their difference
  accept     mean acceptance of the latent moves
  ESS        Kish effective sample size of the Wang-Landau importance weights; the
             number of chains otherwise
  time s     wall time of the sampler call, XLA compilation included
  run s      the same without compilation: the chains run in chunks of
             `--chunk_steps` steps, each chunk shape compiled on its first call; the
             compilation is estimated as what those first calls took beyond the
             per-step time of the later chunks of their phase ('-' for none, which
             runs no chain)

Outputs in `--out_dir`: `image_sampling.json` (the tables, settings and each
sampler's health problems) and `energy_histogram_<run>.png` per GAN, the energies
visited by every sampler overlaid (the main phase's visits; Wang-Landau's own bins
count the energies outside its range in the end bins), on common bins.

The model directory is only read; copy a run that is still training first, so that
its newest checkpoint does not change during the benchmark.

Usage (from the repository root):
  python tools/benchmark_image_sampling.py --model_dir=RUN --out_dir=OUT
  python tools/benchmark_image_sampling.py --model_dir=RUN --out_dir=OUT --quick
"""

import argparse
import os
import time

# Silence TensorFlow's start-up chatter; the table is the output.
from tf_stackelberg.console import startup

startup.import_tensorflow_quietly()

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_stackelberg import sampling  # pylint: disable=g-import-not-at-top
from tf_stackelberg import visualization  # pylint: disable=g-import-not-at-top
from tf_stackelberg.common import files  # pylint: disable=g-import-not-at-top
from tf_stackelberg.training import run_settings  # pylint: disable=g-import-not-at-top
from tf_stackelberg.common.salts import SAMPLING as SAMPLING_SALT  # pylint: disable=g-import-not-at-top
from tf_stackelberg.app import latent  # pylint: disable=g-import-not-at-top
from tf_stackelberg.training.run import Run  # pylint: disable=g-import-not-at-top
from tf_stackelberg.training.strategy import make_strategy  # pylint: disable=g-import-not-at-top
from toolkit.chunk_clock import ChunkClock, phase_starts  # pylint: disable=g-import-not-at-top
from toolkit.machine import cpu_info, cpu_line  # pylint: disable=g-import-not-at-top

SAMPLER_ORDER = ('none', 'mh', 'ddls', 'rep', 'wl')
JSON_NAME = 'image_sampling.json'
HISTOGRAM_BINS = 60


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model_dir', action='append', required=True,
                      help='A trained image GAN run directory (repeat for several).')
  parser.add_argument('--out_dir', required=True,
                      help='Where the JSON and the histogram PNGs go.')
  parser.add_argument('--quick', action='store_true',
                      help='A short check (200 chains, a budget of 30).')
  parser.add_argument('--chains', type=int, default=None,
                      help='Chains = samples per sampler (default 2000; quick 200).')
  parser.add_argument('--budget', type=int, default=None,
                      help='G and D evaluations per chain (default 200; quick 30).')
  parser.add_argument('--samplers', default=','.join(SAMPLER_ORDER),
                      help='Comma-separated samplers, in table order.')
  parser.add_argument('--seed', type=int, default=0,
                      help='Seed of the chains (the same starting states for every '
                      'sampler) and of the calibration data.')
  parser.add_argument('--step_size', type=float, default=None,
                      help="Langevin step of ddls and rep, initial step of wl "
                      "(default: the run's --sampling.step_size).")
  parser.add_argument('--wl_bins', type=int, default=None,
                      help="Wang-Landau bins (default: the run's).")
  parser.add_argument('--wl_t0', type=float, default=None,
                      help="SAMC gain constant (default: the run's).")
  parser.add_argument('--wl_energy_range', default=None,
                      help="LO,HI: a fixed Wang-Landau range ('' for the automatic "
                      "one; default: the run's).")
  parser.add_argument('--joint', action=argparse.BooleanOptionalAction, default=True,
                      help='Joint (k, z) moves for K > 1 generators.')
  parser.add_argument('--finetune_steps', type=int, default=0,
                      help='Train the discriminator alone against the frozen '
                      'generator for this many steps before calibrating it '
                      '(latent.finetune_discriminator; default 0: as saved).')
  parser.add_argument('--jit_compile', action=argparse.BooleanOptionalAction,
                      default=None,
                      help="Compile the chains with XLA (default: the run's "
                      "--runtime.jit_compile). Without XLA each generator runs on its "
                      "own chains only; with it, all K run and the rows are picked.")
  parser.add_argument('--chunk_steps', type=int, default=8,
                      help='Steps per compiled call (for the compile-free time).')
  parser.add_argument('--num_real', type=int, default=10000,
                      help='Test images of the FID and KID reference.')
  parser.add_argument('--classifier_dir', default='',
                      help='Folder of the cached evaluation classifiers (default: '
                      "the library's cache).")
  args = parser.parse_args(argv)
  if args.chains is None:
    args.chains = 200 if args.quick else 2000
  if args.budget is None:
    args.budget = 30 if args.quick else 200
  args.samplers = tuple(s.strip() for s in args.samplers.split(',') if s.strip())
  for name in args.samplers:
    sampling.SAMPLERS.check(name)
  return args


# ----------------------------------------------------------------------------- setup
def load_run(model_dir, args):
  """The restored `Run` of `model_dir` with the classifier evaluator, and its step."""
  config = run_settings.read_resolved(model_dir).replace(**{
      'model_dir': model_dir, 'mode': 'sample',
      'eval.evaluators': ('classifier',), 'eval.num_samples': args.num_real,
      'eval.classifier_dir': args.classifier_dir})
  strategy = make_strategy(config.runtime)
  config.validate(strategy.num_replicas_in_sync)
  run = Run(config, strategy)
  step = run.restore(require=True, repair=False)
  return run, step


def sampler_settings(config, args):
  """The run's `--sampling.*` settings with this command's overrides."""
  overrides = {'sampling.joint': args.joint}
  for name in ('step_size', 'wl_bins', 'wl_t0'):
    if getattr(args, name) is not None:
      overrides[f'sampling.{name}'] = getattr(args, name)
  if args.wl_energy_range is not None:
    overrides['sampling.wl_energy_range'] = tuple(
        float(v) for v in args.wl_energy_range.split(',') if v.strip())
  values = config.replace(**overrides).sampling
  values.validate()
  return latent.sampler_settings(values)


# ----------------------------------------------------------------------------- samplers
def run_sampler(sampler, model, num_generators, args, settings, jit_compile=True):
  """Draws with one sampler; returns the `SampleResult`, steps and timings."""
  steps = sampling.steps_for_budget(sampler, args.budget, settings, num_generators)
  clock = ChunkClock(phase_starts(sampler, steps, settings))
  clock.begin()
  result = sampling.sample_latents(
      sampler, model, args.chains, steps,
      tf.constant([args.seed, SAMPLING_SALT], tf.int32), settings,
      chunk_steps=args.chunk_steps, progress_callback=clock, jit_compile=jit_compile)
  seconds = time.perf_counter() - clock.start
  compile_seconds = clock.compile_seconds()
  run_seconds = None if compile_seconds is None else seconds - compile_seconds
  return result, steps, seconds, run_seconds


def row_of(sampler, result, steps, seconds, run_seconds, metrics, args):
  d = result.diagnostics
  return dict(
      steps=steps,
      evaluations=d['num_energy_evaluations'] / args.chains,
      gradient_evaluations=d['num_gradient_evaluations'] / args.chains,
      classifier_score=metrics['classifier_score'],
      classifier_score_std=metrics['classifier_score_std'],
      fid=metrics['fid'], kid=metrics['kid'], kid_std=metrics['kid_std'],
      classes=metrics['label_coverage'], num_classes=metrics['num_classes'],
      label_kl=metrics['label_kl'], label_histogram=metrics['label_histogram'],
      generators_used=int(len(np.unique(result.k))),
      energy_q01=d['energy_q01'], energy_q99=d['energy_q99'],
      energy_min=d['energy_min'], energy_max=d['energy_max'],
      acceptance=d['acceptance_rate'],
      generator_acceptance=d['generator_acceptance_rate'], ess=d['ess'],
      step_size=d['step_size'], num_warmup_steps=d['num_warmup_steps'],
      energy_range=(list(d['energy_range']) if 'energy_range' in d else None),
      seconds=seconds, run_seconds=run_seconds,
      energy_histogram=list(d['energy_histogram']), bin_edges=list(d['bin_edges']),
      problems=list(d['problems']), sampler=sampler)


# ----------------------------------------------------------------------------- outputs
def rebin(counts, edges, common):
  """Counts over `edges` spread onto the bins `common`, in proportion to overlap."""
  out = np.zeros(len(common) - 1)
  for count, lo, hi in zip(counts, edges[:-1], edges[1:]):
    if count <= 0 or hi <= lo:
      continue
    overlap = np.clip(np.minimum(common[1:], hi) - np.maximum(common[:-1], lo), 0.,
                      None)
    out += count * overlap / (hi - lo)
  return out


def energy_histogram_png(rows, path, title):
  """The main-phase visits of every sampler on common bins, overlaid."""
  usable = {name: r for name, r in rows.items()
            if np.sum(r['energy_histogram']) > 0 and len(r['bin_edges']) > 1}
  if not usable:
    return None
  lo = min(r['bin_edges'][0] for r in usable.values())
  hi = max(r['bin_edges'][-1] for r in usable.values())
  common = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
  centres = (common[:-1] + common[1:]) / 2
  energies = {name: centres for name in usable}
  weights = {name: rebin(np.asarray(r['energy_histogram'], np.float64),
                         np.asarray(r['bin_edges'], np.float64), common)
             for name, r in usable.items()}
  image = visualization.energy_histograms(energies, bins=common, weights=weights,
                                          title=title, size=(640, 400))
  visualization.save_png(image, path)
  return path


def _fmt(value, spec, missing='-'):
  if value is None or (isinstance(value, float) and not np.isfinite(value)):
    return missing
  return format(value, spec)


def table_lines(rows):
  header = ('| sampler | steps | evals/chain (all / grad) | score | FID | KID | classes '
            '| label KL | E range (1%..99%) | E width | accept | ESS | time s '
            '| run s |')
  lines = [header, '|' + '---|' * (header.count('|') - 1)]
  for name, r in rows.items():
    lines.append(
        '| {} | {} | {:.0f} / {:.0f} | {:.3f} | {:.2f} | {:.4g} | {}/{} | {:.3f} '
        '| {:.1f} .. {:.1f} | {:.1f} | {} | {:.0f} | {:.1f} | {} |'.format(
            name, r['steps'], r['evaluations'], r['gradient_evaluations'],
            r['classifier_score'], r['fid'], r['kid'], r['classes'],
            r['num_classes'], r['label_kl'], r['energy_q01'], r['energy_q99'],
            r['energy_q99'] - r['energy_q01'], _fmt(r['acceptance'], '.3f'),
            r['ess'], r['seconds'], _fmt(r['run_seconds'], '.1f')))
  return lines


def finetune_text(gan):
  loss = gan.get('finetune_loss')
  if not loss:
    return ''
  return (f"; discriminator fine-tuned {gan['finetune_steps']} steps against the "
          f"frozen generator (logistic loss {loss[0]:.3f} -> {loss[1]:.3f})")


def header_lines(gan):
  s = gan['settings']
  wl_range = ('automatic' if not s['energy_range'] else
              '{:g}..{:g}'.format(*s['energy_range']))
  return [
      f"GAN: {gan['name']} ({gan['description']}), checkpoint step "
      f"{gan['step']}; calibration d_c = {gan['calibration'][0]:.3f} d + "
      f"{gan['calibration'][1]:.3f}" + finetune_text(gan),
      f"Budget: {gan['budget']} G and D evaluations per chain, {gan['chains']} chains, "
      f"seed {gan['seed']}; step size {s['step_size']:g}, joint (k, z) moves "
      f"{'on' if s['joint'] else 'off'}; Wang-Landau {s['num_bins']} bins, t0 "
      f"{s['t0']:g}, range {wl_range}; XLA {'on' if gan.get('jit_compile') else 'off'}",
      f"Evaluation: {gan['evaluator']}"]


def describe(run):
  config = run.config
  model = config.model
  return (f"{config.data.dataset}, {model.num_generators} {model.generator} "
          f"generator(s), latent dim {model.latent_dim}, "
          f"{model.latent_distribution} prior")


def benchmark_gan(model_dir, args):
  run, step = load_run(model_dir, args)
  gan = run.gan
  finetune_losses = latent.finetune_discriminator(run, args.finetune_steps)
  model = latent.run_latent_model(run, with_calibration=True)
  settings = sampler_settings(run.config, args)
  evaluator = run.evaluators[0]
  jit_compile = (run.config.runtime.jit_compile if args.jit_compile is None
                 else args.jit_compile)
  rows = {}
  for sampler in args.samplers:
    print(f'  {sampler}: sampling ...', end='', flush=True)
    result, steps, seconds, run_seconds = run_sampler(
        sampler, model, gan.num_generators, args, settings, jit_compile)
    started = time.perf_counter()
    metrics = dict(evaluator.evaluate_samples(np.asarray(result.x),
                                              np.asarray(result.k), step=step))
    print(f' {seconds:.0f} s, evaluated in {time.perf_counter() - started:.0f} s',
          flush=True)
    rows[sampler] = row_of(sampler, result, steps, seconds, run_seconds, metrics,
                           args)
  info = metrics['network']
  about = info['name']
  if 'test_accuracy' in info:
    about += f" (test accuracy {100 * info['test_accuracy']:.2f}%)"
  return dict(
      model_dir=model_dir, name=os.path.basename(os.path.normpath(model_dir)),
      description=describe(run), step=step,
      calibration=list(model.calibration or (1., 0.)),
      chains=args.chains, budget=args.budget, seed=args.seed, jit_compile=jit_compile,
      finetune_steps=args.finetune_steps,
      finetune_loss=([float(finetune_losses[0]), float(finetune_losses[-1])]
                     if len(finetune_losses) else None),
      settings=dict(step_size=settings.step_size, joint=settings.joint,
                    num_bins=settings.num_bins, t0=settings.t0,
                    energy_range=settings.energy_range),
      evaluator=f"classifier {about}, {args.chains} samples vs "
      f"{metrics['num_real']} test images",
      rows=rows)


def report(gan, cpu):
  lines = [cpu_line(cpu)] + header_lines(gan) + [''] + table_lines(gan['rows'])
  problems = [f"  {name}: {p}" for name, r in gan['rows'].items()
              for p in r['problems']]
  lines.append('')
  lines += (['Health check problems:'] + problems if problems
            else ['Health check: no problems.'])
  return lines


def main(argv=None):
  args = parse_args(argv)
  os.makedirs(args.out_dir, exist_ok=True)
  cpu = cpu_info()
  gans = []
  for model_dir in args.model_dir:
    print(f'{model_dir}:', flush=True)
    gan = benchmark_gan(model_dir, args)
    png = os.path.join(args.out_dir, f"energy_histogram_{gan['name']}.png")
    gan['energy_histogram_png'] = energy_histogram_png(
        gan['rows'], png, f"energies visited, {gan['name']} step {gan['step']}")
    gans.append(gan)
    print()
    print('\n'.join(report(gan, cpu)))
    print(flush=True)
    files.write_json(os.path.join(args.out_dir, JSON_NAME),
                     dict(cpu=cpu, cpu_line=cpu_line(cpu), args=vars(args),
                          gans=gans))
  print(f'Wrote {os.path.join(args.out_dir, JSON_NAME)} and the energy histograms.')


if __name__ == '__main__':
  main()
