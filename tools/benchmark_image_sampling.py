"""Latent MCMC on trained image GANs: sample quality at an equal number of evaluations,
along the chain, over temperatures and sampler seeds, with confidence intervals.

For each run directory given (`--model_dir`, repeatable; its flags.json gives the
model, the data set and the default sampler settings), the newest checkpoint is
restored, the discriminator is optionally fine-tuned on the frozen generator
(`--finetune_steps`) and its logit calibrated as `--mode=sample` does, and every
sampler of the sampler registry (`sampling.SAMPLERS.names()`, or `--samplers`) draws
`--chains` samples, for every temperature of `--temperatures` and every one of
`--seeds` sampler seeds:

  none   the generator alone (z ~ p0, k uniform): one evaluation per sample, the
         baseline without MCMC (no temperature, no chain)
  mh     MH-GAN: independence Metropolis-Hastings with prior proposals (forward only)
  ddls   DDLS: unadjusted Langevin on E(z, k) = -log p0(z) - d_c(G_k(z))
  rep    REP-GAN: MALA on E with the same fixed step
  wl     Wang-Landau / SAMC flattening around MALA (energy range from a warm-up
         inside the same budget), importance-resampled
  ...    any other registered sampler (for example i-SIR) the same way

Equal cost. `--budget` is the number of latent points each chain passes through G and
D. Each sampler gets the most steps whose run costs at most that
(`sampling.steps_for_budget`): with K > 1 generators and joint (k, z) moves a
Langevin step costs two evaluations (the generator move and the latent move) and an
MH-GAN step one; the bootstraps count, and so does the Wang-Landau warm-up. The table
shows the evaluations per chain the run itself counted
(`num_energy_evaluations / chains`) and how many of them back-propagate.

Curves along the chain. For each chain step s of `--curve_steps` (default
0,10,25,50,100,200) below the sampler's budget steps, and at the budget steps
themselves, the sampler is run anew with `num_steps = s` from the same seed, and its
samples are evaluated. A point of the curve is thus "what a run of s steps gives",
which is what a user who stops the chain early runs (for Wang-Landau a shorter run
also has a shorter warm-up and resamples from its own, shorter, collection phase; a
snapshot of one long chain would not be such a run). Step 0 is the generator alone
(the `none` draw of the same seed) for every sampler; steps below a sampler's
smallest run (`sampling.min_num_steps`) are left out. The curve's last point is the
table's row, at the equal budget.

Temperature. `--temperatures` (default 1) divides the discriminator term of the
energy, E_T = -log p0(z) - d_c(G_k(z)) / T, where the library supports it: the one
place that applies it is `with_temperature` below, which sets a `temperature` field
of the sampler settings or of the latent model if either has one. If neither has,
only T = 1 runs and the table's header says so.

Seeds and intervals. Seed i (i = 0 .. `--seeds` - 1) seeds the chains with
`--seed + i` (the calibration and the fine-tuning use the run's own seed, the same
for all, so only the sampler varies). Every metric is reported as the mean over the
seeds with its 95% Student-t interval, mean +- t(0.975, n-1) s / sqrt(n) (`toolkit.intervals`); the
spread includes the evaluation's own sampling noise, since each seed draws new
samples. A sampler beats `none` on a metric when its mean is better by more than two
standard errors of the difference, sqrt(se^2 + se_none^2); it is worse when it is
worse by as much, a tie otherwise (marked after the value: `✓` better, `✗` worse,
`≈` tie).

The samples are evaluated with the data set's classifier evaluator (its cached
classifier, `tools/train_classifier.py`) against the test images; the table shows
whichever of these the evaluator returns:

  score      classifier score (exp of the mean KL of p(y|x) to p(y)), higher is better
  FID, KID   Frechet and kernel distances in the classifier's feature space, lower
             is better
  label KL   KL of the predicted-label histogram to uniform, lower is better
  precision, recall   improved precision and recall (k = 3), higher is better
  density, coverage   density and coverage (k = 5), higher is better

and, for the budget point, means over the seeds of:

  classes    classes predicted for at least one sample
  E range    1% .. 99% quantiles of the energies the chains visited (for none the
             generator's samples)
  accept     mean acceptance of the latent moves
  ESS        Kish effective sample size of the Wang-Landau importance weights; the
             number of chains otherwise
  time s     wall time of the sampler call at the budget, XLA compilation included
  run s      the same without compilation (estimated from the chunks of
             `--chunk_steps` steps, `toolkit.chunk_clock`; '-' when no chunk repeats)

Outputs in `--out_dir`: `image_sampling.json` (everything: per seed values, curves,
settings, health problems), `image_sampling.md` (the Markdown tables, one per GAN),
`curves_<run>.png` per GAN (one panel per metric: metric against chain step, one
line per sampler and temperature with its 95% interval as a band, `none` as a
dashed level) and `energy_histogram_<run>.png` (the energies visited at the budget by
every sampler at T = 1, seed 0, on common bins).

The model directory is only read; copy a run that is still training first, so that
its newest checkpoint does not change during the benchmark.

Usage (from the repository root):
  python tools/benchmark_image_sampling.py --model_dir=RUN --out_dir=OUT
  python tools/benchmark_image_sampling.py --model_dir=RUN --out_dir=OUT --quick
  python tools/benchmark_image_sampling.py --model_dir=RUN --out_dir=OUT \\
      --chains=1000 --budget=200 --seeds=5 --temperatures=1,0.5 --finetune_steps=500
"""

import argparse
import dataclasses
import math
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
from tf_stackelberg.app import latent, prepare  # pylint: disable=g-import-not-at-top
from tf_stackelberg.training.run import Run  # pylint: disable=g-import-not-at-top
from tf_stackelberg.training.strategy import make_strategy  # pylint: disable=g-import-not-at-top
from toolkit.chunk_clock import ChunkClock, phase_starts  # pylint: disable=g-import-not-at-top
from toolkit.intervals import compare, mean_interval  # pylint: disable=g-import-not-at-top
from toolkit.machine import cpu_info, cpu_line, load_line  # pylint: disable=g-import-not-at-top

# Table order of the samplers known here; any other registered sampler follows them.
SAMPLER_ORDER = ('none', 'mh', 'ddls', 'rep', 'wl', 'isir')
JSON_NAME = 'image_sampling.json'
MARKDOWN_NAME = 'image_sampling.md'
HISTOGRAM_BINS = 60
DEFAULT_CURVE_STEPS = (0, 10, 25, 50, 100, 200)
VERDICT_MARKS = {'better': '✓', 'worse': '✗', 'tie': '≈'}


@dataclasses.dataclass(frozen=True)
class Metric:
  """A column: its label, the evaluator result keys that may hold it (the first one
  present wins, with or without the evaluator's prefix), its good direction and
  its format."""
  label: str
  keys: tuple
  higher_is_better: bool
  spec: str


METRICS = (
    Metric('score', ('classifier_score', 'inception_score'), True, '.3f'),
    Metric('FID', ('fid',), False, '.2f'),
    Metric('KID', ('kid',), False, '.3g'),
    Metric('label KL', ('label_kl',), False, '.3f'),
    Metric('precision', ('precision',), True, '.3f'),
    Metric('recall', ('recall',), True, '.3f'),
    Metric('density', ('density',), True, '.3f'),
    Metric('coverage', ('coverage',), True, '.3f'),
)


def default_samplers():
  """Every registered sampler, the known ones in `SAMPLER_ORDER` first."""
  names = sampling.SAMPLERS.names()
  return (tuple(n for n in SAMPLER_ORDER if n in names) +
          tuple(n for n in names if n not in SAMPLER_ORDER))


def _numbers(parser, text, kind, flag):
  try:
    return tuple(kind(v) for v in text.split(',') if v.strip())
  except ValueError:
    parser.error(f'{flag}={text!r} is not a comma-separated list of '
                 f'{kind.__name__}s')


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model_dir', action='append', required=True,
                      help='A trained image GAN run directory (repeat for several).')
  parser.add_argument('--out_dir', required=True,
                      help='Where the JSON, the Markdown table and the PNGs go.')
  parser.add_argument('--quick', action='store_true',
                      help='A short check (200 chains, a budget of 30, 2 seeds, '
                      'curve steps 0,10).')
  parser.add_argument('--chains', type=int, default=None,
                      help='Chains = samples per sampler run (default 2000; quick '
                      '200).')
  parser.add_argument('--budget', type=int, default=None,
                      help='G and D evaluations per chain (default 200; quick 30).')
  parser.add_argument('--samplers', default=None,
                      help='Comma-separated samplers, in table order (default: '
                      'every registered sampler).')
  parser.add_argument('--temperatures', default='1',
                      help='Comma-separated temperatures of the discriminator term '
                      '(default 1; others only where the library supports them).')
  parser.add_argument('--seeds', type=int, default=None,
                      help='Sampler seeds per setting (default 5; quick 2).')
  parser.add_argument('--curve_steps', default=None,
                      help='Chain steps of the curves, clipped to each sampler\'s '
                      'budget (default 0,10,25,50,100,200; quick 0,10).')
  parser.add_argument('--seed', type=int, default=0,
                      help='First sampler seed (seeds --seed .. --seed + '
                      '--seeds - 1).')
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
  parser.add_argument('--discriminator', choices=('run', 'prepared'), default='run',
                      help='The energy\'s discriminator: the run\'s as saved (run) or '
                      'the one --mode=prepare prepared for the newest step, a '
                      'fine-tuned discriminator or a class-ratio network (prepared).')
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
  if args.seeds is None:
    args.seeds = 2 if args.quick else 5
  if args.curve_steps is None:
    args.curve_steps = '0,10' if args.quick else ','.join(
        str(s) for s in DEFAULT_CURVE_STEPS)
  args.curve_steps = tuple(sorted(set(_numbers(
      parser, args.curve_steps, int, '--curve_steps'))))
  args.temperatures = _numbers(parser, args.temperatures, float, '--temperatures')
  for flag, value, low in (('--chains', args.chains, 1), ('--budget', args.budget, 1),
                           ('--seeds', args.seeds, 1)):
    if value < low:
      parser.error(f'{flag} must be at least {low}, got {value}')
  if any(s < 0 for s in args.curve_steps):
    parser.error('--curve_steps must not be negative')
  if not args.temperatures or any(not t > 0 for t in args.temperatures):
    parser.error(f'--temperatures must be positive, got {args.temperatures}')
  args.samplers = (default_samplers() if args.samplers is None else
                   tuple(s.strip() for s in args.samplers.split(',') if s.strip()))
  for name in args.samplers:
    sampling.SAMPLERS.check(name, flag='--samplers')
  if 'none' not in args.samplers:  # the baseline of every comparison
    args.samplers = ('none',) + args.samplers
  return args


# ----------------------------------------------------------------------------- temperature
def with_temperature(settings, model, temperature):
  """`(settings, model)` whose energy divides the discriminator term by `temperature`,
  or `None` if this build of the library has no temperature.

  The one place the benchmark applies a temperature: a `temperature` field of the
  `SamplerSettings` or of the `LatentModel` (both frozen dataclasses) is set. T = 1
  is the library's energy, always supported.
  """
  if temperature == 1:
    return settings, model
  for target in ('settings', 'model'):
    value = settings if target == 'settings' else model
    if dataclasses.is_dataclass(value) and 'temperature' in {
        f.name for f in dataclasses.fields(value)}:
      value = dataclasses.replace(value, temperature=float(temperature))
      return ((value, model) if target == 'settings' else (settings, value))
  return None


def temperature_supported(settings, model):
  """Whether `with_temperature` can set a temperature other than 1."""
  return with_temperature(settings, model, 0.5) is not None


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


def curve_points(sampler, budget_steps, settings, args):
  """The chain steps of a sampler's curve: `--curve_steps` inside its budget and
  above its smallest run, then the budget steps (step 0 is shared, see `none`)."""
  low = sampling.min_num_steps(sampler, settings)
  return sorted({s for s in args.curve_steps if max(low, 1) <= s < budget_steps} |
                {budget_steps})


# ----------------------------------------------------------------------------- runs
def metric_values(results, prefix=''):
  """`{label: value}` of the `METRICS` the evaluator's `results` hold."""
  out = {}
  for metric in METRICS:
    for key in metric.keys:
      for name in (prefix + key, key):
        value = results.get(name)
        if isinstance(value, (int, float, np.floating, np.integer)) and not \
            isinstance(value, bool):
          out[metric.label] = float(value)
          break
      if metric.label in out:
        break
  return out


def run_once(sampler, model, steps, seed, settings, evaluator, step, args,
             jit_compile):
  """One sampler run of `steps` steps with sampler seed `seed`, evaluated.

  Returns a dict: the metric values, the evaluator's label results and the run's
  diagnostics and times.
  """
  clock = ChunkClock(phase_starts(sampler, steps, settings))
  clock.begin()
  result = sampling.sample_latents(
      sampler, model, args.chains, steps,
      tf.constant([seed, SAMPLING_SALT], tf.int32), settings,
      chunk_steps=args.chunk_steps, progress_callback=clock, jit_compile=jit_compile)
  seconds = time.perf_counter() - clock.start
  compile_seconds = clock.compile_seconds()
  results = dict(evaluator.evaluate_samples(np.asarray(result.x),
                                            np.asarray(result.k), step=step))
  d = result.diagnostics
  return dict(
      steps=steps, seed=seed,
      metrics=metric_values(results, getattr(evaluator, 'prefix', '')),
      evaluations=d['num_energy_evaluations'] / args.chains,
      gradient_evaluations=d['num_gradient_evaluations'] / args.chains,
      classes=results.get('label_coverage'), num_classes=results.get('num_classes'),
      label_histogram=list(np.asarray(results.get('label_histogram', [])).tolist()),
      generators_used=int(len(np.unique(result.k))),
      energy_q01=d['energy_q01'], energy_q99=d['energy_q99'],
      acceptance=d['acceptance_rate'],
      generator_acceptance=d['generator_acceptance_rate'], ess=d['ess'],
      step_size=d['step_size'], num_warmup_steps=d['num_warmup_steps'],
      energy_range=(list(d['energy_range']) if 'energy_range' in d else None),
      seconds=seconds,
      run_seconds=None if compile_seconds is None else seconds - compile_seconds,
      energy_histogram=list(d['energy_histogram']), bin_edges=list(d['bin_edges']),
      problems=list(d['problems']),
      network=results.get('network'), num_real=results.get('num_real'))


def _mean(values):
  values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
  return float(np.mean(values)) if values else None


def summarize(sampler, temperature, per_seed, curves, baseline=None):
  """The row of one (sampler, temperature): per-seed budget runs `per_seed`, the
  curve runs `curves` (`{steps: [runs over seeds]}`), and, against the `none` row
  `baseline`, a verdict per metric."""
  first = per_seed[0]
  labels = [m.label for m in METRICS if m.label in first['metrics']]
  metrics = {label: mean_interval([r['metrics'][label] for r in per_seed])
             for label in labels}
  row = dict(
      sampler=sampler, temperature=temperature, steps=first['steps'],
      seeds=[r['seed'] for r in per_seed], metrics=metrics,
      curve=[dict(steps=s, evaluations=_mean(r['evaluations'] for r in runs),
                  metrics={label: mean_interval([r['metrics'][label] for r in runs])
                           for label in labels})
             for s, runs in sorted(curves.items())],
      label_histogram=first['label_histogram'],
      num_classes=first['num_classes'],
      generators_used=min(r['generators_used'] for r in per_seed),
      energy_histogram=first['energy_histogram'], bin_edges=first['bin_edges'],
      energy_range=first['energy_range'], step_size=first['step_size'],
      num_warmup_steps=first['num_warmup_steps'],
      problems=sorted({f"seed {r['seed']}: {p}" for r in per_seed
                       for p in r['problems']}))
  for name in ('evaluations', 'gradient_evaluations', 'classes', 'energy_q01',
               'energy_q99', 'acceptance', 'generator_acceptance', 'ess', 'seconds',
               'run_seconds'):
    row[name] = _mean(r[name] for r in per_seed)
  if baseline is not None:
    by_label = {m.label: m for m in METRICS}
    row['verdict'] = {
        label: compare(metrics[label], baseline['metrics'][label],
                       by_label[label].higher_is_better)
        for label in labels if label in baseline['metrics']}
  return row


def row_name(sampler, temperature):
  return sampler if temperature == 1 else f'{sampler} T={temperature:g}'


# ----------------------------------------------------------------------------- one GAN
def describe(run):
  config = run.config
  model = config.model
  return (f"{config.data.dataset}, {model.num_generators} {model.generator} "
          f"generator(s), latent dim {model.latent_dim}, "
          f"{model.latent_distribution} prior")


def discriminator_model(run, step, args):
  """`(LatentModel, description)` of the discriminator `--discriminator` names: the
  run's as saved, or the one `--mode=prepare` prepared for its newest step (a
  fine-tuned discriminator or a class-ratio network), calibrated as
  `--mode=sample` does."""
  if args.discriminator == 'run':
    return latent.run_latent_model(run, with_calibration=True), "the run's"
  config = run.config.replace(**{'sampling.discriminator': 'prepared'})
  calibration, source, network = prepare.discriminator_for_sampling(run, step, config)
  return (latent.latent_model(run.gan, calibration, network),
          f"prepared ({source['method']}, {source['path']})")


def benchmark_gan(model_dir, args):
  """Every (sampler, temperature) of `args` on one run directory, every seed, with
  its curve; returns the GAN's record (written to the JSON as is)."""
  started = time.perf_counter()
  run, step = load_run(model_dir, args)
  gan = run.gan
  finetune_losses = latent.finetune_discriminator(run, args.finetune_steps)
  model, source = discriminator_model(run, step, args)
  settings = sampler_settings(run.config, args)
  evaluator = run.evaluators[0]
  jit_compile = (run.config.runtime.jit_compile if args.jit_compile is None
                 else args.jit_compile)
  supported = temperature_supported(settings, model)
  temperatures = tuple(t for t in args.temperatures if supported or t == 1)
  skipped = tuple(t for t in args.temperatures if t not in temperatures)
  seeds = [args.seed + i for i in range(args.seeds)]

  def runs_of(sampler, sampler_settings_, sampler_model, steps, label):
    runs = []
    for seed in seeds:
      runs.append(run_once(sampler, sampler_model, steps, seed, sampler_settings_,
                           evaluator, step, args, jit_compile))
    print(f'  {label}: {steps} steps, {len(seeds)} seeds, '
          f'{sum(r["seconds"] for r in runs):.0f} s sampling', flush=True)
    return runs

  base_runs = runs_of('none', settings, model, 0, 'none')
  rows = {'none': summarize('none', 1., base_runs, {0: base_runs})}
  for sampler in args.samplers:
    if sampler == 'none':
      continue
    for temperature in temperatures:
      t_settings, t_model = with_temperature(settings, model, temperature)
      name = row_name(sampler, temperature)
      budget_steps = sampling.steps_for_budget(sampler, args.budget, t_settings,
                                               gan.num_generators)
      curves = {0: base_runs}
      for steps in curve_points(sampler, budget_steps, t_settings, args):
        curves[steps] = runs_of(sampler, t_settings, t_model, steps, name)
      rows[name] = summarize(sampler, temperature, curves[budget_steps], curves,
                             baseline=rows['none'])
  info = base_runs[0]['network'] or {}
  about = info.get('name', 'classifier')
  if 'test_accuracy' in info:
    about += f" (test accuracy {100 * info['test_accuracy']:.2f}%)"
  return dict(
      model_dir=model_dir, name=os.path.basename(os.path.normpath(model_dir)),
      description=describe(run), step=step,
      calibration=list(model.calibration or (1., 0.)),
      chains=args.chains, budget=args.budget, seeds=seeds,
      curve_steps=list(args.curve_steps), jit_compile=jit_compile,
      temperatures=list(temperatures), temperatures_skipped=list(skipped),
      temperature_supported=supported,
      discriminator=source, finetune_steps=args.finetune_steps,
      finetune_loss=([float(finetune_losses[0]), float(finetune_losses[-1])]
                     if len(finetune_losses) else None),
      settings=dict(step_size=settings.step_size, joint=settings.joint,
                    num_bins=settings.num_bins, t0=settings.t0,
                    energy_range=settings.energy_range),
      evaluator=f"classifier {about}, {args.chains} samples per run vs "
      f"{base_runs[0]['num_real']} test images",
      metrics=[m.label for m in METRICS if m.label in rows['none']['metrics']],
      rows=rows, seconds=time.perf_counter() - started)


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
  """The budget run's visits (seed 0, T = 1) of every sampler on common bins."""
  usable = {name: r for name, r in rows.items()
            if r['temperature'] == 1 and np.sum(r['energy_histogram']) > 0
            and len(r['bin_edges']) > 1}
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


def curves_png(gan, path):
  """One panel per metric: the metric against the chain step, one line per sampler
  and temperature with its 95% interval as a band; `none` as a dashed level."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=import-outside-toplevel
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  labels = gan['metrics']
  if not labels:
    return None
  by_label = {m.label: m for m in METRICS}
  columns = min(4, len(labels))
  rows_ = -(-len(labels) // columns)
  figure = Figure(figsize=(4.2 * columns, 3.3 * rows_ + 0.6))
  FigureCanvasAgg(figure)
  colors = {}
  for index, label in enumerate(labels):
    axes = figure.add_subplot(rows_, columns, index + 1)
    base = gan['rows']['none']['metrics'][label]
    axes.axhline(base['mean'], color='black', linestyle='--', linewidth=1,
                 label='none')
    if math.isfinite(base['half_width']):
      axes.axhspan(base['low'], base['high'], color='black', alpha=0.08)
    for name, row in gan['rows'].items():
      if name == 'none':
        continue
      steps = [c['steps'] for c in row['curve']]
      mean = np.array([c['metrics'][label]['mean'] for c in row['curve']])
      low = np.array([c['metrics'][label]['low'] for c in row['curve']])
      high = np.array([c['metrics'][label]['high'] for c in row['curve']])
      line, = axes.plot(steps, mean, marker='o', markersize=3, linewidth=1.3,
                        label=name, color=colors.get(name))
      colors[name] = line.get_color()
      if np.isfinite(low).all():
        axes.fill_between(steps, low, high, color=line.get_color(), alpha=0.15)
    better = 'higher' if by_label[label].higher_is_better else 'lower'
    axes.set_title(f'{label} ({better} is better)', fontsize=10)
    axes.set_xlabel('chain steps')
    axes.grid(alpha=0.3)
    if index == 0:
      axes.legend(fontsize=7)
  figure.suptitle(f"{gan['name']} step {gan['step']}: {gan['chains']} chains, budget "
                  f"{gan['budget']} G+D evaluations, mean and 95% interval over "
                  f"{len(gan['seeds'])} seeds", fontsize=10)
  figure.tight_layout()
  figure.savefig(path, dpi=90)
  return path


def _fmt(value, spec, missing='-'):
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return missing
  return format(value, spec)


def _cell(interval, spec, mark=''):
  text = _fmt(interval['mean'], spec)
  if math.isfinite(interval['half_width']):
    text += f" ± {format(interval['half_width'], spec)}"
  return f'{text} {mark}'.rstrip()


def verdict_text(row):
  """The row's comparison with `none`: the metrics it wins and loses by > 2 SE."""
  if 'verdict' not in row:
    return 'baseline'
  parts = [f"{kind}: {', '.join(l for l, v in row['verdict'].items() if v == kind)}"
           for kind in ('better', 'worse')
           if any(v == kind for v in row['verdict'].values())]
  return '; '.join(parts) or 'ties'


def table_lines(gan):
  """The Markdown table of one GAN at the budget."""
  by_label = {m.label: m for m in METRICS}
  labels = gan['metrics']
  header = ('| sampler | T | steps | evals/chain (all / grad) | ' +
            ' | '.join(labels) + ' | classes | E range (1%..99%) | accept | ESS '
            '| time s | run s | vs none (> 2 SE) |')
  lines = [header, '|' + '---|' * (header.count('|') - 1)]
  for name, r in gan['rows'].items():
    verdict = r.get('verdict', {})
    cells = [_cell(r['metrics'][l], by_label[l].spec,
                   VERDICT_MARKS.get(verdict.get(l), '')) for l in labels]
    lines.append(
        f"| {r['sampler']} | {'-' if r['sampler'] == 'none' else format(r['temperature'], 'g')} "
        f"| {r['steps']} | {_fmt(r['evaluations'], '.0f')} / "
        f"{_fmt(r['gradient_evaluations'], '.0f')} | " + ' | '.join(cells) +
        f" | {_fmt(r['classes'], '.1f')}/{r['num_classes']} "
        f"| {_fmt(r['energy_q01'], '.1f')} .. {_fmt(r['energy_q99'], '.1f')} "
        f"| {_fmt(r['acceptance'], '.3f')} | {_fmt(r['ess'], '.0f')} "
        f"| {_fmt(r['seconds'], '.1f')} | {_fmt(r['run_seconds'], '.1f')} "
        f"| {verdict_text(r)} |")
  return lines


def curve_table_lines(gan, label):
  """A Markdown table of one metric along the chain: a row per sampler and
  temperature, a column per chain step."""
  spec = {m.label: m.spec for m in METRICS}[label]
  steps = sorted({c['steps'] for r in gan['rows'].values() for c in r['curve']})
  lines = [f'| {label} at chain step | ' + ' | '.join(str(s) for s in steps) + ' |',
           '|' + '---|' * (len(steps) + 1)]
  for name, r in gan['rows'].items():
    at = {c['steps']: c['metrics'][label] for c in r['curve']}
    lines.append(f'| {name} | ' + ' | '.join(
        _cell(at[s], spec) if s in at else '' for s in steps) + ' |')
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
  if gan['temperatures_skipped']:
    temperature = (f"temperatures {', '.join(f'{t:g}' for t in gan['temperatures_skipped'])}"
                   " not run: this build's sampler has no temperature (T = 1 only)")
  else:
    temperature = f"temperatures {', '.join(f'{t:g}' for t in gan['temperatures'])}"
  whose = gan.get('discriminator', "the run's")
  return [
      f"GAN: {gan['name']} ({gan['description']}), checkpoint step "
      f"{gan['step']}; discriminator {whose}; "
      f"calibration d_c = {gan['calibration'][0]:.3f} d + "
      f"{gan['calibration'][1]:.3f}" + finetune_text(gan),
      f"Budget: {gan['budget']} G and D evaluations per chain, {gan['chains']} chains, "
      f"sampler seeds {gan['seeds'][0]}..{gan['seeds'][-1]}; {temperature}; step size "
      f"{s['step_size']:g}, joint (k, z) moves {'on' if s['joint'] else 'off'}; "
      f"Wang-Landau {s['num_bins']} bins, t0 {s['t0']:g}, range {wl_range}; XLA "
      f"{'on' if gan.get('jit_compile') else 'off'}",
      f"Evaluation: {gan['evaluator']}",
      f"Metrics: mean ± 95% t-interval half-width over {len(gan['seeds'])} seeds; "
      "✓ better than none by > 2 standard errors of the difference, ✗ worse by as "
      "much, ≈ tie. Other columns: means over the seeds at the budget.",
      f"Wall time of this GAN: {gan['seconds'] / 60:.1f} min"]


def report(gan, cpu, load):
  lines = ([f'### {gan["name"]}', '', cpu_line(cpu) + f'; load average {load}', ''] +
           [line + '  ' for line in header_lines(gan)] + [''] + table_lines(gan))
  problems = [f"  {name}: {p}" for name, r in gan['rows'].items()
              for p in r['problems']]
  lines.append('')
  lines += (['Health check problems:', ''] + problems if problems
            else ['Health check: no problems.'])
  for label in gan['metrics']:
    lines += [''] + curve_table_lines(gan, label)
  return lines


def main(argv=None):
  args = parse_args(argv)
  # Every run builds its own chunk functions, so TensorFlow's retracing warnings
  # are expected here and would bury the progress lines.
  logger = tf.get_logger()
  level = logger.level
  logger.setLevel('ERROR')
  try:
    _benchmark(args)
  finally:
    logger.setLevel(level)


def _benchmark(args):
  """`main` after the arguments: every GAN, its outputs and the report."""
  os.makedirs(args.out_dir, exist_ok=True)
  cpu = cpu_info()
  gans, markdown = [], ['# Latent sampling on image GANs', '']
  for model_dir in args.model_dir:
    print(f'{model_dir}:', flush=True)
    load = load_line()
    gan = benchmark_gan(model_dir, args)
    gan['load_average'] = load
    # The measurements first, so that they survive a failure in the outputs.
    files.write_json(os.path.join(args.out_dir, JSON_NAME),
                     dict(cpu=cpu, cpu_line=cpu_line(cpu), args=vars(args),
                          gans=gans + [gan]))
    png = os.path.join(args.out_dir, f"energy_histogram_{gan['name']}.png")
    gan['energy_histogram_png'] = energy_histogram_png(
        gan['rows'], png, f"energies visited, {gan['name']} step {gan['step']}")
    gan['curves_png'] = curves_png(
        gan, os.path.join(args.out_dir, f"curves_{gan['name']}.png"))
    gans.append(gan)
    lines = report(gan, cpu, load)
    markdown += lines + ['']
    print()
    print('\n'.join(lines))
    print(flush=True)
    files.write_json(os.path.join(args.out_dir, JSON_NAME),
                     dict(cpu=cpu, cpu_line=cpu_line(cpu), args=vars(args),
                          gans=gans))
    with open(os.path.join(args.out_dir, MARKDOWN_NAME), 'w', encoding='utf-8') as f:
      f.write('\n'.join(markdown))
  print(f'Wrote {os.path.join(args.out_dir, JSON_NAME)}, {MARKDOWN_NAME} and the '
        'figures.')


if __name__ == '__main__':
  main()
