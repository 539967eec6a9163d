"""The skewed positive control (docs/design.md section 14.6) on a trained MNIST run.

The run's K generators are mixed with the skewed prior p(k) proportional to 2^k
(`--model.generator_prior=geometric2`), so that the mixture over-produces the digits of
the last generators. The discriminator is prepared on that skewed mixture (trained
alone against it, `latent.finetune_discriminator`, then calibrated on held-out images
against fresh skewed samples, as `--mode=sample` does), and for every sampler seed the
generator alone (`none`) and the joint (k, z) Wang-Landau chain (`wl`) each draw
`--chains` samples; `--samplers` adds others, each at Wang-Landau's number of G and D
evaluations per chain (`sampling.steps_for_budget`). The data set's classifier labels
them; the figure is the KL of the label histogram to uniform (lower is better), with
the uniform mixture of the same generators as the reference the correction aims at. The target: the label KL falls by
at least half.

`--temperatures` sweeps the temperature T of the discriminator term
(`--sampling.temperature`; the chains target `p(k) p0(z) exp(d_c / T)`). Choosing T by
the label KL of the same seeds flatters the chosen row: choose it on one set of seeds,
then measure it alone on fresh ones (`--first_seed`).

Output: a few lines per seed, then a Markdown table of the mean and standard error
over the seeds of every sampler and temperature; with `--out_dir`,
`skewed_control.json` there.

The model directory is only read (copy a run that is still training first).

Usage (from the repository root):
  python tools/benchmark_skewed_control.py --model_dir=RUN [--out_dir=OUT]
  python tools/benchmark_skewed_control.py --model_dir=RUN --quick
  python tools/benchmark_skewed_control.py --model_dir=RUN --temperatures=1,2,4
"""

import argparse
import dataclasses
import os
import time

from tf_stackelberg.console import startup

startup.import_tensorflow_quietly()

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

from tf_stackelberg import sampling  # pylint: disable=g-import-not-at-top
from tf_stackelberg.app import latent  # pylint: disable=g-import-not-at-top
from tf_stackelberg.common import files  # pylint: disable=g-import-not-at-top
from tf_stackelberg.common.salts import SAMPLING as SAMPLING_SALT  # pylint: disable=g-import-not-at-top
from tf_stackelberg.training import run_settings  # pylint: disable=g-import-not-at-top
from tf_stackelberg.training.run import Run  # pylint: disable=g-import-not-at-top
from tf_stackelberg.training.strategy import make_strategy  # pylint: disable=g-import-not-at-top
from toolkit.intervals import mean_interval  # pylint: disable=g-import-not-at-top


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model_dir', required=True, help='trained MNIST run (read only)')
  parser.add_argument('--out_dir', default='', help='writes skewed_control.json here')
  parser.add_argument('--prior', default='geometric2',
                      help='the skewed --model.generator_prior')
  parser.add_argument('--chains', type=int, default=2000)
  parser.add_argument('--steps', type=int, default=300,
                      help='Wang-Landau steps per chain (warm-up included)')
  parser.add_argument('--seeds', type=int, default=3,
                      help='number of sampler seeds, from --first_seed on')
  parser.add_argument('--first_seed', type=int, default=0)
  parser.add_argument('--samplers', default='wl',
                      type=lambda text: text.split(','),
                      help='comma-separated samplers, each at the cost of wl\'s run')
  parser.add_argument('--temperatures', default='1',
                      type=lambda text: [float(t) for t in text.split(',')],
                      help='comma-separated temperatures T > 0, each run by every sampler')
  parser.add_argument('--finetune_steps', type=int, default=1000,
                      help='discriminator updates against the skewed mixture')
  parser.add_argument('--num_real', type=int, default=10000,
                      help='test images of the classifier evaluator')
  parser.add_argument('--classifier_dir', default='')
  parser.add_argument('--quick', action='store_true',
                      help='500 chains, 100 steps, 2 seeds, 300 D updates')
  args = parser.parse_args(argv)
  if args.quick:
    args.chains, args.steps, args.seeds, args.finetune_steps = 500, 100, 2, 300
    args.num_real = min(args.num_real, 2000)
  if not args.temperatures or min(args.temperatures) <= 0:
    parser.error(f'--temperatures={args.temperatures}: every temperature must be > 0')
  for sampler in args.samplers:
    if sampler == 'none' or sampler not in sampling.SAMPLERS:
      parser.error(f'--samplers: {sampler!r} is not a sampler to compare with none '
                   f"(one of {', '.join(n for n in sampling.SAMPLERS.names() if n != 'none')})")
  return args


def load_run(args):
  """The restored run with the skewed prior and the classifier evaluator."""
  config = run_settings.read_resolved(args.model_dir).replace(**{
      'model_dir': args.model_dir, 'mode': 'sample',
      'model.generator_prior': args.prior,
      'eval.evaluators': ('classifier',), 'eval.num_samples': args.num_real,
      'eval.classifier_dir': args.classifier_dir})
  strategy = make_strategy(config.runtime)
  config.validate(strategy.num_replicas_in_sync)
  run = Run(config, strategy)
  step = run.restore(require=True, repair=False)
  return run, step


def label_kl(evaluator, result, step):
  """`(label KL to uniform, label histogram)` of a sampler's draws."""
  metrics = dict(evaluator.evaluate_samples(np.asarray(result.x), np.asarray(result.k),
                                            step=step))
  return float(metrics['label_kl']), list(metrics['label_histogram'])


def draw(sampler, model, args, seed, settings, steps):
  return sampling.sample_latents(
      sampler, model, args.chains, steps, tf.constant([seed, SAMPLING_SALT], tf.int32),
      settings, chunk_steps=max(1, min(steps, 64)))


def mean_and_se(values):
  """`(mean, standard error)` over the seeds (the error is NaN for one seed)."""
  interval = mean_interval(values)
  return interval['mean'], interval['se']


def main(argv=None):
  args = parse_args(argv)
  run, step = load_run(args)
  evaluator = run.evaluators[0]
  settings = latent.sampler_settings(dataclasses.replace(run.config.sampling,
                                                          joint=True))
  started = time.perf_counter()
  losses = latent.finetune_discriminator(run, args.finetune_steps)
  finetune_s = time.perf_counter() - started
  model = latent.run_latent_model(run, with_calibration=True)
  uniform = latent.LatentModel(model.generate_fn, model.logit_fn, model.latent_dim,
                               model.num_generators, model.calibration,
                               prior=model.prior)
  p = np.exp(model.generator_log_prior)
  print(f'{args.model_dir} step {step}: K={model.num_generators}, p(k) = '
        f"{' '.join(f'{v:.3f}' for v in p)}; D fine-tuned {args.finetune_steps} steps "
        f'in {finetune_s:.0f} s (logistic loss {losses[0]:.3f} -> {losses[-1]:.3f})'
        if len(losses) else f'{args.model_dir} step {step}: no fine-tuning', flush=True)
  budget = sampling.evaluations_per_chain('wl', args.steps, settings,
                                         model.num_generators)[0]
  runs = [(sampler, t, args.steps if sampler == 'wl' else sampling.steps_for_budget(
      sampler, budget, settings, model.num_generators))
          for sampler in args.samplers for t in args.temperatures]
  rows = []
  for seed in range(args.first_seed, args.first_seed + args.seeds):
    t0 = time.perf_counter()
    reference, _ = label_kl(evaluator, draw('none', uniform, args, seed, settings, 1),
                            step)
    before, hist_before = label_kl(evaluator, draw('none', model, args, seed, settings,
                                                   1), step)
    row = dict(seed=seed, uniform=reference, none=before, hist_none=hist_before,
               samplers={})
    print(f'seed {seed}: label KL uniform mixture {reference:.4f}, skewed none '
          f'{before:.4f}\n  labels none {hist_before}', flush=True)
    for sampler, t, steps in runs:
      tempered = dataclasses.replace(settings, temperature=t)
      result = draw(sampler, model, args, seed, tempered, steps)
      after, hist_after = label_kl(evaluator, result, step)
      ess = float(result.diagnostics.get('ess', args.chains))
      row['samplers'][f'{sampler} T={t:g}'] = dict(label_kl=after, ess=ess,
                                                   hist=hist_after)
      print(f'  {sampler} T={t:g}: {after:.4f} (ratio {after / before:.2f}, ESS '
            f'{ess:.0f})\n  labels {sampler:<4} {hist_after}', flush=True)
    row['seconds'] = time.perf_counter() - t0
    rows.append(row)
  summary = {name: mean_and_se([r[name] for r in rows]) for name in ('uniform', 'none')}
  name = os.path.basename(os.path.normpath(args.model_dir))
  table = [f'{name} ({args.prior}), D fine-tuned {args.finetune_steps} steps, '
           f'{args.chains} chains of {budget} G and D evaluations, seeds '
           f'{args.first_seed}-{args.first_seed + args.seeds - 1}; label KL of the '
           f"uniform mixture {summary['uniform'][0]:.4f}\n",
           '| sampler | T | steps | label KL, skewed none | label KL, skewed sampler | '
           'sampler / none |', '|---|---|---|---|---|---|']
  for sampler, t, steps in runs:
    key = f'{sampler} T={t:g}'
    after = [r['samplers'][key]['label_kl'] for r in rows]
    summary[key] = mean_and_se(after)
    ratio = mean_and_se([a / r['none'] for a, r in zip(after, rows)])
    summary[f'ratio {key}'] = ratio
    table.append(f"| {sampler} | {t:g} | {steps} | {summary['none'][0]:.4f} ± "
                 f"{summary['none'][1]:.4f} | {summary[key][0]:.4f} ± "
                 f"{summary[key][1]:.4f} | {ratio[0]:.2f} ± {ratio[1]:.2f} |")
  print('\n' + '\n'.join(table))
  if args.out_dir:
    os.makedirs(args.out_dir, exist_ok=True)
    files.write_json(os.path.join(args.out_dir, 'skewed_control.json'), dict(
        model_dir=args.model_dir, step=step, prior=args.prior,
        generator_prior=p.tolist(), chains=args.chains, steps=args.steps,
        budget=budget, runs=runs,
        finetune_steps=args.finetune_steps, calibration=list(model.calibration),
        temperatures=args.temperatures, rows=rows, summary=summary,
        markdown_table=table))
  return summary


if __name__ == '__main__':
  main()
