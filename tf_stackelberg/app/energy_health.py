"""The energy health report of a trained run's discriminator (docs/design.md section
14.1): how far its calibrated logit `d_c` is from a usable density ratio, and the
target test, which bounds what any sampler of `p0(z) exp(d_c(G(z)))` can gain.

Written by `--mode=sample` (into `metrics.json["energy_health"]`, TensorBoard and
one console line) and by `--mode=diagnose`, which does only this.

* Held out: the discriminator's ROC AUC on the held-out real examples
  (`app.held_out`) against fresh fakes, with its standard error; the calibration's
  slope and intercept fitted on them; the expected calibration error of the
  calibrated probability `sigmoid(d_c)` (15 equal-mass bins) with its noise floor,
  and of the raw `sigmoid(d)`; and the AUC on test-split examples against the same
  fakes, whose gap to the held-out AUC shows how far the discriminator fits the
  training images rather than the data distribution.
* The target test: for each of `M` outputs, `N_max` generator draws are made and one
  is picked among the first `N` by `softmax(d_c)` (importance resampling, the
  Gumbel-max trick with the same noise for every `N`), for every `N` of
  `--sampling.target_test`. The run's evaluators score the `M` picks of every `N`.
  As `N` grows, the picks approach `p_g exp(d_c) / Z`, the distribution every
  sampler of the latent energy targets; when quality does not improve with `N`,
  reaching that target exactly cannot help either.
"""

import contextlib
import math
import time

import numpy as np
import tensorflow as tf

from tf_stackelberg.app import latent
from tf_stackelberg.common import salts
from tf_stackelberg.evaluation import evaluator as evaluation
from tf_stackelberg.evaluation.evaluators.classifier import clip_images
from tf_stackelberg.metrics import discriminator_metrics as dm
from tf_stackelberg.sampling.calibration import fit_calibration

#: Generator draws made per call of the target test (`N_max x outputs`).
CANDIDATES_PER_CHUNK = 8192
#: Examples per discriminator call.
LOGIT_BATCH = 2048
#: Quality metrics of the target test's verdict, the first one found wins:
#: (result name, its standard deviation's name or None for a binomial share, lower
#: is better).
PRIMARY_METRICS = (("kid", "kid_std", True), ("inception_kid", "inception_kid_std", True),
                   ("high_quality", None, False))
#: KID subsets of the feature evaluators' per-N results (`_fewer_kid_subsets`).
TARGET_KID_SUBSETS = 10
#: The gain at the largest N must exceed this many noise standard deviations.
VERDICT_SIGMAS = 2.0


def batched_logits(logit_fn, x, batch_size=LOGIT_BATCH):
  """`logit_fn` over `x` in batches, as float64 NumPy `[n]`."""
  x = tf.convert_to_tensor(x)
  parts = [np.asarray(logit_fn(x[i:i + batch_size]), np.float64).reshape(-1)
           for i in range(0, int(x.shape[0]), batch_size)]
  return np.concatenate(parts)


def held_out_report(run, logit_fn):
  """AUC, calibration and ECE on the held-out split against fresh fakes (and the
  AUC on the test split); a dict."""
  split = latent.held_out_split(run)
  real, fake = latent.calibration_sets(run)
  d_real, d_fake = batched_logits(logit_fn, real), batched_logits(logit_fn, fake)
  slope, intercept = fit_calibration(d_real, d_fake)
  d = np.concatenate([d_real, d_fake])
  labels = np.concatenate([np.ones_like(d_real), np.zeros_like(d_fake)])
  calibrated = dm.sigmoid(slope * d + intercept)
  auc = dm.roc_auc(d_real, d_fake)
  report = {
      "held_out": split.description,
      "num_real": len(d_real), "num_fake": len(d_fake),
      "auc": auc, "auc_se": dm.auc_standard_error(auc, len(d_real), len(d_fake)),
      "calibration": [slope, intercept],
      "ece": dm.expected_calibration_error(calibrated, labels),
      "ece_floor": dm.calibration_error_floor(calibrated),
      "ece_raw": dm.expected_calibration_error(dm.sigmoid(d), labels),
      "ece_bins": f"{dm.ECE_BINS} equal-mass",
      "logistic_loss": dm.logistic_loss(d_real, d_fake),
      "test_auc": None, "test_auc_se": None, "auc_gap": None}
  test = split.test(len(d_real))
  if test is not None:
    d_test = batched_logits(logit_fn, test)
    test_auc = dm.roc_auc(d_test, d_fake)
    report.update(test_auc=test_auc,
                  test_auc_se=dm.auc_standard_error(test_auc, len(d_test), len(d_fake)),
                  auc_gap=auc - test_auc)
  return report


def _numbers(results):
  """The numeric results of one evaluator (lists, strings and images left out)."""
  return {k: float(v) for k, v in results.items()
          if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
          and math.isfinite(float(v))}


def resample_candidates(run, logit_fn, calibration, sizes, num_outputs):
  """The picks of the target test: `{N: (x [M, ...], k [M])}` and per-N statistics
  (mean picked `d_c`, mean ESS of the weights of `N` candidates)."""
  sizes = sorted({int(n) for n in sizes})
  n_max = sizes[-1]
  scale, shift = calibration if calibration is not None else (1.0, 0.0)
  per_chunk = max(1, CANDIDATES_PER_CHUNK // n_max)
  seed = run.config.seed
  draw = tf.function(run.gan.sample, autograph=False)
  picked = {n: ([], []) for n in sizes}
  picked_logits = {n: [] for n in sizes}
  ess = {n: [] for n in sizes}
  for chunk, start in enumerate(range(0, num_outputs, per_chunk)):
    m = min(per_chunk, num_outputs - start)
    x, k = draw(m * n_max, tf.constant(
        [seed + salts.TARGET_TEST, chunk], tf.int64))
    dc = scale * batched_logits(logit_fn, x).reshape(m, n_max) + shift
    uniform = tf.random.stateless_uniform(
        [m, n_max], tf.constant([seed + salts.TARGET_TEST + 1, chunk], tf.int64),
        minval=np.finfo(np.float32).tiny, maxval=1.0, dtype=tf.float64)
    gumbels = -np.log(-np.log(uniform.numpy()))
    choices = dm.gumbel_max_choices(dc, gumbels, sizes)
    x = np.asarray(x).reshape((m, n_max) + tuple(x.shape[1:]))
    k = np.asarray(k).reshape(m, n_max)
    rows = np.arange(m)
    for n in sizes:
      picked[n][0].append(x[rows, choices[n]])
      picked[n][1].append(k[rows, choices[n]])
      picked_logits[n].append(dc[rows, choices[n]])
      ess[n].append(dm.weights_ess(dc[:, :n]))
  samples = {n: (np.concatenate(picked[n][0]), np.concatenate(picked[n][1]))
             for n in sizes}
  stats = {n: {"mean_logit": float(np.mean(np.concatenate(picked_logits[n]))),
               "weights_ess": float(np.mean(np.concatenate(ess[n])))} for n in sizes}
  return samples, stats


def _features(evaluator, x):
  """The features of a feature evaluator's network on images `x`, as NumPy."""
  size = evaluator.batch_size
  return np.concatenate([np.asarray(evaluator.network(clip_images(x[i:i + size]))[1])
                         for i in range(0, len(x), size)])


def paired_kid(evaluators, first, last):
  """The paired KID difference (`discriminator_metrics.paired_kid_difference`)
  between the picks `first` and `last` (`(x, k)` at the smallest and the largest
  N) in the first feature evaluator's features, or None without one."""
  for evaluator in evaluators:
    if hasattr(evaluator, "network") and hasattr(evaluator, "real_statistics"):
      real = evaluator.real_statistics()[0]
      difference, spread = dm.paired_kid_difference(
          _features(evaluator, first[0]), _features(evaluator, last[0]), real)
      return {"evaluator": evaluator.name, "metric": evaluator.prefix + "kid",
              "difference": difference, "std": spread}
  return None


@contextlib.contextmanager
def _fewer_kid_subsets(evaluators):
  """Feature evaluators average `TARGET_KID_SUBSETS` KID subsets while the target
  test scores its picks: their usual 100 would be most of the report's time, and
  the verdict reads the paired KID difference on all outputs instead."""
  saved = [(e, e.kid_subsets) for e in evaluators if hasattr(e, "kid_subsets")]
  try:
    for evaluator, _ in saved:
      evaluator.kid_subsets = min(evaluator.kid_subsets, TARGET_KID_SUBSETS)
    yield
  finally:
    for evaluator, subsets in saved:
      evaluator.kid_subsets = subsets


def target_test(run, logit_fn, calibration, sizes, num_outputs, step=0):
  """The target test: one row per `N` with the evaluators' numbers, the paired KID
  difference between the smallest and the largest N (feature evaluators), and the
  verdict (`verdict`)."""
  evaluators = [e for e in run.evaluators if e.scalar_names]
  started = time.monotonic()
  samples, stats = resample_candidates(run, logit_fn, calibration, sizes, num_outputs)
  generated = time.monotonic()
  rows = []
  with _fewer_kid_subsets(evaluators):
    for n, (x, k) in samples.items():
      results = evaluation.run_evaluators(evaluators, step=step, samples=(x, k))
      rows.append({"n": n, **stats[n], "metrics": {
          name: _numbers(values) for name, values in results.items()}})
  ns = sorted(samples)
  paired = paired_kid(evaluators, samples[ns[0]], samples[ns[-1]]) if len(ns) > 1 else None
  return {"num_outputs": int(num_outputs), "sizes": ns,
          "calibration": list(calibration) if calibration is not None else None,
          "rows": rows, "paired_kid": paired,
          "verdict": verdict(rows, num_outputs, paired),
          "seconds_generation": generated - started,
          "seconds_evaluation": time.monotonic() - generated}


def _find(row, name):
  for values in row["metrics"].values():
    if name in values:
      return values[name]
  return None


def verdict(rows, num_outputs, paired=None):
  """Whether quality improves from the smallest to the largest `N`.

  The metric is the first of `PRIMARY_METRICS` that the evaluators report (KID for
  images, the high-quality share for mixtures). It improves when its gain from the
  smallest to the largest `N` exceeds `VERDICT_SIGMAS` times the noise. For KID with
  `paired` (`paired_kid`), the gain is the paired difference on all `M` outputs and
  the noise its block-jackknife standard error; otherwise the noise is
  `sqrt(s_1^2 + s_N^2)`, `s`
  the evaluator's KID standard deviation over its subsets (unpaired: conservative),
  or the binomial standard error `sqrt(p (1 - p) / M)` of a share.

  Returns:
    {'metric', 'lower_is_better', 'values' (per N), 'noise', 'gain', 'improves'};
    `improves` is None when there is no metric or a single N.
  """
  for name, std_name, lower in PRIMARY_METRICS:
    values = [_find(r, name) for r in rows]
    if rows and all(v is not None for v in values):
      break
  else:
    return {"metric": None, "improves": None}
  first, last = values[0], values[-1]
  if std_name is not None:
    spreads = [_find(rows[0], std_name) or 0.0, _find(rows[-1], std_name) or 0.0]
  else:
    spreads = [math.sqrt(max(p * (1 - p), 0.0) / num_outputs) for p in (first, last)]
  noise = math.hypot(*spreads)
  gain = (first - last) if lower else (last - first)
  if paired is not None and paired["metric"] == name:
    gain, noise = paired["difference"], paired["std"]
  return {"metric": name, "lower_is_better": lower, "values": values,
          "sizes": [r["n"] for r in rows], "noise": noise, "gain": gain,
          "paired": paired is not None and paired["metric"] == name,
          "improves": None if len(rows) < 2 else bool(gain > VERDICT_SIGMAS * noise)}


def energy_health(run, logit_fn, calibration, sampling, step=0):
  """The whole report: `held_out_report`, `target_test` (unless
  `--sampling.target_test` is empty) and the seconds it took."""
  started = time.monotonic()
  report = held_out_report(run, logit_fn)
  report["seconds_held_out"] = time.monotonic() - started
  report["calibration_in_use"] = list(calibration) if calibration is not None else None
  report["target_test"] = (target_test(run, logit_fn, calibration, sampling.target_test,
                                       sampling.target_test_samples, step)
                           if sampling.target_test else None)
  report["seconds"] = time.monotonic() - started
  return report


def _short(value):
  return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def console_line(report, discriminator="the run's"):
  """The report as one console line."""
  fields = [f"held-out AUC {report['auc']:.3f} +- {report['auc_se']:.3f}"]
  if report["test_auc"] is not None:
    fields[0] += f" (test split {report['test_auc']:.3f})"
  slope, intercept = report["calibration"]
  fields.append(f"calibration d_c = {slope:.3g} d {intercept:+.3g}")
  fields.append(f"ECE {report['ece']:.3f} (noise floor {report['ece_floor']:.3f}, "
                f"raw {report['ece_raw']:.3f})")
  line = f"Energy health of {discriminator} discriminator: " + ", ".join(fields)
  test = report["target_test"]
  if test is not None:
    v = test["verdict"]
    if v["metric"] is None:
      line += "; target test: no quality metric among the evaluators"
    else:
      values = ", ".join(_short(x) for x in v["values"])
      sizes = ",".join(str(n) for n in v["sizes"])
      noise = (f"paired gain {_short(v['gain'])} +- {_short(v['noise'])}"
               if v.get("paired") else f"noise +- {_short(v['noise'])}")
      line += f"; target test {v['metric']} at N={sizes}: {values} ({noise})"
      line += _other_metrics(test["rows"])
      if v["improves"] is False:
        line += (f": not better at N={v['sizes'][-1]} than at N={v['sizes'][0]} beyond "
                 "the noise, so no MCMC kernel can help with this discriminator")
      elif v["improves"]:
        line += ": improves with N, so sampling exp(d_c) can help"
  return line + f" [{report['seconds']:.1f} s{_share(report)}]"


#: Share of the sampling time above which the console line says how to cut the cost.
COSTLY_SHARE = 0.1


def _share(report):
  """', 21% of the sampling time: ...' after a sampling run; '' otherwise."""
  share = report.get("share_of_sampling_time")
  if share is None:
    return ""
  text = f", {100 * share:.1f}% of the sampling time"
  if share > COSTLY_SHARE:
    text += ("; its cost is fixed, so for short runs lower "
             "--sampling.target_test_samples or set --sampling.health_report=false")
  return text


#: Other metrics the console line shows from the smallest to the largest N.
SHOWN_METRICS = (("fid", "FID"), ("inception_fid", "iFID"), ("label_kl", "label KL"),
                 ("modes", "modes"))


def _other_metrics(rows):
  """', FID 33.4 -> 39.9, label KL 0.009 -> 0.041': what else changes with N."""
  shown = ""
  for name, label in SHOWN_METRICS:
    first, last = _find(rows[0], name), _find(rows[-1], name)
    if first is not None and last is not None:
      shown += f", {label} {_short(first)} -> {_short(last)}"
  return shown


def write_summaries(log_dir, report):
  """TensorBoard scalars of the report: `health/*` at step 0, `target_test/*` with
  the number of candidates N as the step."""
  writer = tf.summary.create_file_writer(log_dir)
  with writer.as_default():
    for name in ("auc", "auc_se", "test_auc", "auc_gap", "ece", "ece_floor", "ece_raw",
                 "logistic_loss", "seconds"):
      if report.get(name) is not None:
        tf.summary.scalar(f"health/{name}", float(report[name]), step=0)
    slope, intercept = report["calibration"]
    tf.summary.scalar("health/calibration_slope", slope, step=0)
    tf.summary.scalar("health/calibration_intercept", intercept, step=0)
    test = report.get("target_test")
    for row in (test or {}).get("rows", []):
      tf.summary.scalar("target_test/mean_logit", row["mean_logit"], step=row["n"])
      tf.summary.scalar("target_test/weights_ess", row["weights_ess"], step=row["n"])
      for evaluator, values in row["metrics"].items():
        for name, value in values.items():
          tf.summary.scalar(f"target_test/{evaluator}/{name}", value, step=row["n"])
  writer.close()
