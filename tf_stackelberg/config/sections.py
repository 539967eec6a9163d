"""The run configuration: small dataclasses, one per section, each checking itself.

Every setting, its default and its check live here and nowhere else. Command-line flags
are generated from these fields (`tf_stackelberg.config.flags`), named `--SECTION.FIELD`
(`--trainer.train_steps`), plus the run-level `--mode`, `--model_dir`, `--seed` and
`--export_dir`. Values resolve as defaults -> `--flagfile` -> command-line flags, as in
TF Model Garden, and the resolved nested configuration is written next to the
checkpoints (`flags.json`).

A section declares with `defines_run` whether its settings define the run (data, model,
loss, game): those must not change when a run resumes. The others (trainer length,
evaluation cadence, sampling, runtime) may differ between invocations on the same run.
"""

import dataclasses
import math
from typing import Any, ClassVar, Dict, Tuple

from tf_stackelberg.common import reach
from tf_stackelberg.common.errors import ConfigError


def _field(default, help_text, choices=None, check=None, limit=None):
  """A setting: default, help text, allowed values, a named check and a limit.

  `check` is one of 'positive', 'nonnegative', 'fraction' ([0, 1)), 'widths' (a
  non-empty list of positive integers), 'positive_list' (a possibly empty list of
  positive numbers), 'at_least_2' or None. `limit` is
  `(largest value, why)`: larger values are refused before any work starts instead
  of exhausting memory or time later.
  """
  return dataclasses.field(default=default, metadata={
      "help": help_text, "choices": choices, "check": check, "limit": limit})


# Limits of sizes that are allocated at once (see `_field`'s `limit`).
_MAX_POINTS = 10_000_000
_MAX_BATCH = 65536
_MAX_EVAL_SAMPLES = 10_000_000
_MAX_CHAINS = 1_000_000
_MAX_CHAIN_STEPS = 250_000_000  # 1 GB of float32 energies

# check name -> (test, what the value must be).
_CHECKS = {
    "positive": (lambda v: v > 0, "must be positive"),
    "nonnegative": (lambda v: v >= 0, "must be >= 0"),
    "fraction": (lambda v: 0.0 <= v < 1.0, "must be in [0, 1)"),
    "widths": (lambda v: bool(v) and all(w > 0 for w in v),
               "must be a non-empty list of positive widths"),
    "at_least_2": (lambda v: v >= 2, "must be at least 2"),
    "positive_list": (lambda v: all(w > 0 for w in v),
                      "must be a list of positive numbers"),
}


def _shown(value):
  return (",".join(map(str, value)) or "nothing") if isinstance(value, tuple) else value


def _check_value(flag, value, metadata):
  choices, check, limit = metadata["choices"], metadata["check"], metadata["limit"]
  # No setting means anything as inf or nan; they would pass "positive" or an
  # ordering check and fail deep inside the run.
  numbers = value if isinstance(value, tuple) else (value,)
  if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
    raise ConfigError(f"{flag}={_shown(value)} must be finite")
  if choices and value not in choices:
    raise ConfigError(f"{flag}={value!r} is not one of {', '.join(choices)}")
  if check is not None:
    test, requirement = _CHECKS[check]
    if not test(value):
      raise ConfigError(f"{flag} {requirement}, got {_shown(value)}")
  if limit is not None:
    largest, why = limit
    values = value if isinstance(value, tuple) else (value,)
    if any(v > largest for v in values):
      raise ConfigError(f"{flag}={_shown(value)} is above the limit of {largest:,} "
                        f"({why})")


@dataclasses.dataclass(frozen=True)
class Section:
  """Base of the sections: field checks and the flag name of each field."""

  name: ClassVar[str] = ""
  defines_run: ClassVar[bool] = True
  #: Fields of a run-defining section that may still change when a run resumes
  #: (where data is found, not what it is).
  free_on_resume: ClassVar[Tuple[str, ...]] = ()

  def flag(self, field_name: str) -> str:
    """The command-line flag of `field_name`, e.g. '--trainer.train_steps'."""
    return f"--{self.name}.{field_name}"

  def validate(self):
    """Checks every field; raises `ConfigError` naming the first bad flag."""
    for field in dataclasses.fields(self):
      _check_value(self.flag(field.name), getattr(self, field.name), field.metadata)


@dataclasses.dataclass(frozen=True)
class DataConfig(Section):
  """What to learn."""
  name: ClassVar[str] = "data"
  free_on_resume: ClassVar[Tuple[str, ...]] = ("source", "data_dir", "offline_dir")
  dataset: str = _field("ring", "Dataset to learn (a name in the dataset registry): "
                        "ring, grid, mnist, fashion_mnist, stacked_mnist, cifar10, "
                        "celeb_a, imagenet32.")
  source: str = _field("auto", "Where image data comes from: auto (a prepared TFDS "
                       "dataset in --data.data_dir, else the offline copy in "
                       "--data.offline_dir; never the network), offline (only the "
                       "offline copy) or tfds (tfds.load, downloading if needed).",
                       ("auto", "offline", "tfds"))
  data_dir: str = _field("", "TFDS data directory, also the cache of the prepared "
                         "offline copies (default: $TFDS_DATA_DIR, else "
                         "~/tensorflow_datasets).")
  offline_dir: str = _field("", "Folder of the offline copies (mnist/, "
                            "fashion_mnist/, cifar10/; default: "
                            "$TF_STACKELBERG_DATA, else ../shared/data beside the "
                            "project).")
  size: int = _field(8000, "Examples drawn once as the fixed training set of a "
                     "synthetic dataset (ring, grid: points; stacked_mnist: digit "
                     "triples, 128000 in PacGAN); 0 draws fresh ones for every "
                     "batch.",
                     check="nonnegative", limit=(_MAX_POINTS, "held in memory"))
  image_size: int = _field(64, "Side of the celeb_a images: a 108x108 centre "
                           "crop resized to image_size x image_size (64 in DCGAN).",
                           check="positive", limit=(108, "the size of the crop"))
  shuffle: bool = _field(False, "Reshuffle the fixed set every epoch (the reference "
                         "iterates it in a fixed order).")
  ring_modes: int = _field(8, "Number of modes of the ring.", check="positive")
  ring_radius: float = _field(1.0, "Radius of the ring.", check="positive")
  ring_std: float = _field(0.01, "Standard deviation of each ring mode.",
                           check="positive")
  grid_size: int = _field(5, "Modes per side of the grid.", check="positive")
  grid_spacing: float = _field(2.0, "Distance between neighbouring grid modes.",
                               check="positive")
  grid_std: float = _field(0.05, "Standard deviation of each grid mode.",
                           check="positive")

  #: Datasets whose fixed training set --data.size sets; the image datasets always
  #: train on their whole training split, and ignore it.
  sized_datasets: ClassVar[Tuple[str, ...]] = ("ring", "grid", "stacked_mnist")

  def check_batch_size(self, batch_size):
    """Refuses a fixed set (--data.size > 0 of a sized dataset) smaller than one
    batch. Image datasets are checked against their training split once loaded
    (`DataSource.check_batch_size`), since its size is only known then."""
    if self.dataset in self.sized_datasets and 0 < self.size < batch_size:
      raise ConfigError(f"--data.size={self.size} is smaller than "
                        f"--game.batch_size={batch_size}; use a larger --data.size, "
                        "0 to draw fresh examples every step, or a smaller "
                        "--game.batch_size")


@dataclasses.dataclass(frozen=True)
class ModelConfig(Section):
  """The generators and the discriminator."""
  name: ClassVar[str] = "model"
  #: The generator prior reweights trained generators: eval, sample and export may
  #: set it on any run (docs/design.md section 14.6).
  free_on_resume: ClassVar[Tuple[str, ...]] = ("generator_prior",)
  generator: str = _field("mlp", "Generator architecture (a name in the generator "
                          "registry): 'mlp' is K MLP generators in one ensemble, "
                          "'multi_branch' the one-generator baseline, 'dcgan' K "
                          "convolutional DCGAN generators.")
  discriminator: str = _field("mlp", "Discriminator architecture (a name in the "
                              "discriminator registry): 'mlp' or 'dcgan'.")
  num_generators: int = _field(8, "K, the number of generators (1 = plain GAN).",
                               check="positive")
  latent_dim: int = _field(2, "Dimension of the latent z ~ p0 "
                           "(--model.latent_distribution).", check="positive")
  latent_distribution: str = _field("normal", "Latent prior p0 of the generators: "
                                    "normal is N(0, I), uniform is U[-1, 1]^latent_dim "
                                    "(the CIFAR-10 setting of the Stackelberg GAN "
                                    "paper). Training, the model's samples and the "
                                    "latent samplers all use it.", ("normal", "uniform"))
  generator_hidden: Tuple[int, ...] = _field((32,), "Hidden widths of each mlp "
                                             "generator.", check="widths")
  generator_batchnorm: bool = _field(False, "BatchNorm in the generators: in the mlp "
                                     "generators after every hidden layer but the "
                                     "first (epsilon --model.batchnorm_epsilon), as "
                                     "the MNIST seeds; in the dcgan generators after "
                                     "the projection of z and every transposed "
                                     "convolution but the last (epsilon 1e-5), as "
                                     "the standard DCGAN.")
  generator_output: str = _field("tanh", "Output activation of the generators.",
                                 ("tanh", "linear"))
  num_branches: int = _field(8, "Branches of the multi-branch generator.",
                             check="positive")
  branch_hidden: Tuple[int, ...] = _field((128, 256, 512, 1024),
                                          "Hidden widths of each branch.", check="widths")
  batchnorm_epsilon: float = _field(0.8, "BatchNorm epsilon of the branches and of "
                                    "the mlp generators' BatchNorm.",
                                    check="positive")
  generator_channels: Tuple[int, ...] = _field(
      (256, 128), "Feature-map widths of each dcgan generator, from the first map "
      "(the projection of z) down; each is followed by a 5x5 stride-2 transposed "
      "convolution, the last one to the data's channels.", check="widths",
      limit=(16384, "one 5x5 kernel of two such widths holds 6.7 billion weights"))
  generator_base_size: int = _field(8, "Height and width of the first feature map of "
                                    "the dcgan generators: it times 2 to the number "
                                    "of --model.generator_channels must be the image "
                                    "size (8 for 32x32 with two widths, 7 for 28x28, "
                                    "4 for 64x64 with four).", check="positive",
                                    limit=(1024, "larger than any image"))
  discriminator_hidden: Tuple[int, ...] = _field(
      (512, 256), "Hidden widths of the mlp discriminator.", check="widths")
  discriminator_channels: Tuple[int, ...] = _field(
      (128, 256, 512), "Widths of the 5x5 stride-2 convolutions of the dcgan "
      "discriminator.", check="widths",
      limit=(16384, "one 5x5 kernel of two such widths holds 6.7 billion weights"))
  discriminator_batchnorm: bool = _field(True, "BatchNorm (epsilon 1e-5) after every "
                                         "convolution of the dcgan discriminator.")
  spectral_norm: bool = _field(False, "Spectral normalisation of every convolution "
                               "and dense layer of the dcgan discriminator (SNGAN); "
                               "needs --model.discriminator_batchnorm=false.")
  init: str = _field("pytorch", "Initialisation of the dcgan models: 'pytorch' draws "
                     "every weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) "
                     "as PyTorch's default layers; 'dcgan' draws weights from "
                     "N(0, 0.02) with zero biases (Radford et al.).",
                     ("pytorch", "dcgan"))
  ema_decay: float = _field(0.0, "Decay of an exponential moving average of the "
                            "generators' weights that evaluation, sampling and export "
                            "use instead of the trained weights (0 = none; typical "
                            "0.999).", check="fraction")
  leaky_relu_slope: float = _field(0.2, "Negative slope of the LeakyReLUs.",
                                   check="nonnegative")
  generator_prior: str = _field("uniform", "p(k), the weight of each generator in the "
                                "model's mixture, for eval, sample and export of a "
                                "trained run (training weighs every generator "
                                "alike): uniform, or geometric2 (p(k) proportional "
                                "to 2^k, the skewed positive control of "
                                "docs/design.md section 14.6).",
                                ("uniform", "geometric2"))


@dataclasses.dataclass(frozen=True)
class LossConfig(Section):
  """The loss family of each game and the generator-classifier term."""
  name: ClassVar[str] = "loss"
  family: str = _field("non_saturating", "Loss family of each of the K games (a name "
                       "in the loss registry): non_saturating, hinge, wasserstein "
                       "(with gradient penalty), least_squares.")
  classifier_weight: float = _field(0.0, "beta: weight of the K-way classifier term "
                                    "that pushes generators apart (0 = no head).",
                                    check="nonnegative")
  gradient_penalty: float = _field(10.0, "lambda of the gradient penalty of the "
                                   "wasserstein family.", check="nonnegative")


@dataclasses.dataclass(frozen=True)
class GameConfig(Section):
  """How the players are updated."""
  name: ClassVar[str] = "game"
  update_order: str = _field("g_first", "Order of the updates in one step: generators "
                             "then discriminator (reference MoG/MNIST scripts), "
                             "discriminator first (reference CIFAR script), or both "
                             "from the same point.", ("g_first", "d_first",
                                                      "simultaneous"))
  shared_z: bool = _field(True, "One latent batch shared by all generators (reference) "
                          "instead of an independent batch per generator.")
  batch_size: int = _field(64, "Global batch size (real points per step; each "
                           "generator makes this many fakes).", check="positive",
                           limit=(_MAX_BATCH, "K batches of fakes are held at once"))
  learning_rate: float = _field(2e-4, "Adam learning rate of both players (unless "
                                "set per player below).", check="positive")
  generator_learning_rate: float = _field(0.0, "Adam learning rate of the generators "
                                          "(0: --game.learning_rate).",
                                          check="nonnegative")
  discriminator_learning_rate: float = _field(0.0, "Adam learning rate of the "
                                              "discriminator (0: "
                                              "--game.learning_rate).",
                                              check="nonnegative")
  beta_1: float = _field(0.5, "Adam beta_1.", check="fraction")
  beta_2: float = _field(0.999, "Adam beta_2.", check="fraction")


@dataclasses.dataclass(frozen=True)
class TrainerConfig(Section):
  """How long to train and how often to save; may change when a run resumes."""
  name: ClassVar[str] = "trainer"
  defines_run: ClassVar[bool] = False
  train_steps: int = _field(25000, "Total training steps (a resumed run continues to "
                            "it).", check="positive",
                            limit=(2**31 - 1, "steps are counted in int32 by Keras"))
  steps_per_execution: int = _field(100, "Train steps per compiled call.",
                                    check="positive")
  keep_checkpoints: int = _field(3, "Checkpoints kept in the model directory.",
                                 check="positive")


@dataclasses.dataclass(frozen=True)
class EvalConfig(Section):
  """Evaluation cadence and size; may change when a run resumes."""
  name: ClassVar[str] = "eval"
  defines_run: ClassVar[bool] = False
  every: int = _field(1000, "Steps between evaluations, checkpoints and summaries "
                      "(a run also evaluates at its last step).", check="positive")
  num_samples: int = _field(10000, "Model samples per evaluation (drawn in batches of "
                            "10,000).", check="positive",
                            limit=(_MAX_EVAL_SAMPLES, "evaluation time"))
  evaluators: Tuple[str, ...] = _field((), "Evaluators to run (names in the evaluator "
                                       "registry); empty: the dataset's own.")
  checkpoints: str = _field("latest", "Checkpoints --mode=eval evaluates: the latest, "
                            "or all kept ones, oldest first (learning curves of "
                            "evaluators added after training, in "
                            "MODEL_DIR/eval_curves.json and TensorBoard).",
                            ("latest", "all"))
  classifier_dir: str = _field("", "Folder of the evaluation classifiers that "
                               "tools/train_classifier.py trains (DATASET.keras; "
                               "default: $TF_STACKELBERG_CLASSIFIERS, else "
                               "~/.cache/tf_stackelberg/classifiers).")
  inception_weights: str = _field("", "Keras InceptionV3 weights file (.h5) for the "
                                  "'inception' evaluator; never downloaded.")
  report_dir: str = _field("", "Directory --mode=eval writes its reports, images and "
                           "curves into ('' = the run directory, --model_dir); set, "
                           "the run directory is only read.")
  manifold_samples: int = _field(3000, "Samples and real images (a fixed random "
                                 "subset of each; 0 = all) of the feature evaluators' "
                                 "precision, recall, density and coverage, whose cost "
                                 "grows with its square.", check="nonnegative",
                                 limit=(_MAX_EVAL_SAMPLES, "evaluation time"))
  bootstrap: int = _field(20, "Bootstrap resamples of the samples' features behind "
                          "the confidence intervals of FID and KID (0 = none, else "
                          "at least 2).", check="nonnegative", limit=(10000,
                          "each resample costs a covariance and KID's weighted sums"))

  def validate(self):
    super().validate()
    if self.bootstrap == 1:
      raise ConfigError(f"{self.flag('bootstrap')}=1 gives no spread: set 0 (no "
                        "intervals) or at least 2 resamples")


@dataclasses.dataclass(frozen=True)
class SamplingConfig(Section):
  """Latent MCMC on a trained run (--mode=sample and the exported mcmc_sample)."""
  name: ClassVar[str] = "sampling"
  defines_run: ClassVar[bool] = False
  sampler: str = _field("wl", "Latent sampler (a name in the sampler registry): wl, "
                        "rep, ddls, mh, isir, none.")
  output_dir: str = _field("", "Output directory of --mode=sample (default: "
                           "MODEL_DIR/samples_SAMPLER).")
  num_samples: int = _field(10000, "Chains (one sample each); all chains advance "
                            "together.", check="positive",
                            limit=(_MAX_CHAINS, "every chain is held in memory"))
  steps: int = _field(640, "MCMC steps per chain.", check="positive")
  step_size: float = _field(0.01, "Initial Langevin step size.", check="positive",
                            limit=(10.0, "latents are N(0, I) or U[-1, 1]: a longer "
                                   "step is never accepted"))
  joint: bool = _field(True, "Also move the generator index k by Metropolis-Hastings.")
  wl_bins: int = _field(50, "Wang-Landau energy bins.", check="at_least_2",
                        limit=(100000, "the bias has one entry per bin and chain"))
  wl_t0: float = _field(300.0, "SAMC gain constant: gain t0 / max(t0, t).",
                        check="positive")
  wl_energy_range: Tuple[float, ...] = _field((), "Fixed energy range LO,HI; empty "
                                              "sets it from a warm-up.")
  wl_resample: bool = _field(True, "Resample by the importance weights to target the "
                             "unbiased distribution.")
  calibrate: bool = _field(True, "Calibrate the discriminator logit before sampling.")
  # Samplers for image GANs (docs/design.md section 14.3).
  temperature: float = _field(1.0, "Temperature T of the discriminator term: the "
                              "chains target p0(z) exp(d_c(G(z)) / T); T < 1 "
                              "sharpens towards D, T > 1 flattens towards the prior.",
                              check="positive")
  isir_proposals: int = _field(8, "Fresh prior proposals per step of the isir "
                               "sampler (each one G+D evaluation).", check="positive",
                               limit=(4096, "every proposal is evaluated each step"))
  record_steps: Tuple[int, ...] = _field((), "Chain steps (0 = the generator's own "
                                         "samples) at which --mode=sample also "
                                         "evaluates the chains' states, e.g. "
                                         "0,10,25,50,100,200; at most --sampling.steps.")

  # A GAN trained elsewhere (docs/design.md section 14.5).
  generator_file: str = _field("", "Generator trained elsewhere, to sample instead of "
                               "a run: a Keras model file (.keras, .h5) or a "
                               "SavedModel directory with a serving signature, "
                               "mapping z [B, --sampling.latent_dim] to samples of "
                               "--data.dataset's shape. Needs "
                               "--sampling.discriminator_file.")
  discriminator_file: str = _field("", "Discriminator of --sampling.generator_file "
                                   "(same formats), mapping samples to one logit "
                                   "each, [B] or [B, 1].")
  latent_dim: int = _field(0, "Latent size of --sampling.generator_file (required "
                           "with it).", check="nonnegative")
  latent_prior: str = _field("normal", "Latent distribution of "
                             "--sampling.generator_file: normal (N(0, I)) or uniform "
                             "(U[-1, 1]^latent_dim).", ("normal", "uniform"))

  # The energy health report and the prepared discriminator (docs/design.md 14.1).
  held_out_fraction: float = _field(0.1, "Share of the training images held out, by "
                                    "the seed, from discriminator preparation: its "
                                    "early stopping, the calibration and the energy "
                                    "health report use them; in (0, 0.5]. Mixtures "
                                    "hold out fresh points instead.")
  health_report: bool = _field(True, "Write the energy health report (held-out AUC, "
                               "calibration, ECE, target test) with --mode=sample.")
  target_test: Tuple[int, ...] = _field((1, 4, 16, 64), "Candidates N of the target "
                                        "test: each output picks one of N generator "
                                        "draws by softmax(d_c); empty: no test.",
                                        check="positive_list",
                                        limit=(4096, "N x the outputs are generated"))
  target_test_samples: int = _field(2000, "Outputs M of the target test at every N "
                                    "(the evaluators score them).", check="at_least_2",
                                    limit=(_MAX_CHAINS, "N x M samples are generated"))
  discriminator: str = _field("auto", "Discriminator of --mode=sample and "
                              "--mode=diagnose: the prepared one of the run's newest "
                              "step when there is one (auto), the run's (run), or "
                              "the prepared one, required (prepared).",
                              ("auto", "run", "prepared"))
  prepared_dir: str = _field("", "Folder of the prepared discriminators, one "
                             "step_N folder each (default: "
                             "MODEL_DIR/prepared_discriminator).")
  prepare_method: str = _field("finetune", "What --mode=prepare prepares: the run's "
                               "discriminator fine-tuned on the frozen generators "
                               "(finetune), or a density ratio over the class "
                               "probabilities of a classifier it trains, used in "
                               "the discriminator's place (class_ratio; labelled "
                               "images only; docs/design.md 14.7).",
                               ("finetune", "class_ratio"))
  ratio_classifier_epochs: int = _field(3, "Training epochs of the classifier of "
                                        "--sampling.prepare_method=class_ratio.",
                                        check="positive", limit=(1000, "time"))
  ratio_head_epochs: int = _field(20, "Largest number of training epochs of the "
                                  "ratio head of --sampling.prepare_method="
                                  "class_ratio (it stops early on the held-out "
                                  "split).", check="positive", limit=(1000, "time"))
  prepare_learning_rate: float = _field(1e-5, "Adam learning rate of "
                                        "--mode=prepare's fine-tuning.",
                                        check="positive", limit=(1.0, "Adam diverges"))
  prepare_steps: int = _field(1000, "Largest number of fine-tuning updates of "
                              "--mode=prepare (0: no fine-tuning).",
                              check="nonnegative")
  prepare_batch_size: int = _field(256, "Real and generated examples per fine-tuning "
                                   "update.", check="positive",
                                   limit=(_MAX_BATCH, "held at once"))
  prepare_eval_every: int = _field(100, "Updates between held-out losses of the early "
                                   "stopping.", check="positive")
  prepare_patience: int = _field(3, "Held-out losses without improvement before the "
                                 "fine-tuning stops (the best weights are kept).",
                                 check="positive")
  sn_warmup: int = _field(100, "Power iterations of every spectrally normalised layer "
                          "before the calibration of --mode=prepare.",
                          check="nonnegative", limit=(100000, "time"))

  def validate(self):
    super().validate()
    fraction = self.held_out_fraction
    if not 0.0 < fraction <= 0.5:
      raise ConfigError(f"{self.flag('held_out_fraction')} must be in (0, 0.5], got "
                        f"{fraction}")
    record = self.record_steps
    if record and (min(record) < 0 or max(record) > self.steps or
                   list(record) != sorted(set(record))):
      raise ConfigError(f"{self.flag('record_steps')}={_shown(record)} must be "
                        f"increasing steps between 0 and {self.flag('steps')}="
                        f"{self.steps}")
    self._check_external()
    visits = self.num_samples * self.steps
    if visits > _MAX_CHAIN_STEPS:
      raise ConfigError(
          f"{self.flag('num_samples')} x {self.flag('steps')} = {visits:,} is above the "
          f"limit of {_MAX_CHAIN_STEPS:,} (the energy of every chain at every step is "
          "kept for the diagnostics)")
    energy_range = self.wl_energy_range
    if energy_range and (len(energy_range) != 2 or energy_range[0] >= energy_range[1]):
      raise ConfigError(f"{self.flag('wl_energy_range')} must be two increasing "
                        f"numbers LO,HI, got {','.join(map(str, energy_range))}")

  def _check_external(self):
    """The flags of a GAN trained elsewhere come together."""
    if bool(self.generator_file) != bool(self.discriminator_file):
      given, missing = (("generator_file", "discriminator_file") if self.generator_file
                        else ("discriminator_file", "generator_file"))
      raise ConfigError(f"{self.flag(given)} needs {self.flag(missing)} too")
    if self.generator_file and not self.latent_dim:
      raise ConfigError(f"{self.flag('generator_file')} needs "
                        f"{self.flag('latent_dim')}, the generator's latent size")
    if self.latent_dim and not self.generator_file:
      raise ConfigError(f"{self.flag('latent_dim')} applies only with "
                        f"{self.flag('generator_file')} (a run's latent size is "
                        "--model.latent_dim)")


@dataclasses.dataclass(frozen=True)
class RuntimeConfig(Section):
  """Where and how the computation runs; may change when a run resumes."""
  name: ClassVar[str] = "runtime"
  defines_run: ClassVar[bool] = False
  strategy: str = _field("auto", "tf.distribute strategy: auto (MirroredStrategy with "
                         "more than one GPU or with --runtime.cpu_devices > 1, else "
                         "the default strategy), mirrored, multi_worker "
                         "(MultiWorkerMirroredStrategy, cluster from TF_CONFIG), tpu "
                         "(TPUStrategy on --runtime.tpu), or default.",
                         ("auto", "mirrored", "multi_worker", "tpu", "default"))
  cpu_devices: int = _field(0, "If > 1, split the CPU into this many logical devices "
                            "(to run the multi-replica paths without accelerators).",
                            check="nonnegative")
  tpu: str = _field("", "TPU of --runtime.strategy=tpu: a name or grpc://HOST:PORT "
                    "address for TPUClusterResolver ('' = the TPU of this host or "
                    "Cloud TPU VM). The address, or for a name the Google Cloud "
                    "metadata server, must accept a connection within 10 s.")
  cluster_timeout_s: float = _field(300.0, "Seconds a worker of "
                                    "--runtime.strategy=multi_worker waits for the "
                                    "other tasks of its TF_CONFIG cluster to start "
                                    "(it says which ones it waits for) before it "
                                    "gives up with exit status 1.", check="positive")
  precision: str = _field("float32", "Keras dtype policy of the models: float32, "
                          "mixed_bfloat16 or mixed_float16 (with loss scaling). "
                          "Weights, logits, losses and energies stay float32.",
                          ("float32", "mixed_bfloat16", "mixed_float16"))
  sync_batch_norm: bool = _field(False, "With several replicas, BatchNorm uses the "
                                 "statistics of the global batch (all-reduced) instead "
                                 "of each replica's own share.")
  jit_compile: bool = _field(True, "Compile the train step and the samplers with XLA "
                             "(faster for the mixture MLPs and the MCMC on CPU).")
  deterministic: bool = _field(True, "Enable TF op determinism: same seed, same run.")

  def validate(self):
    super().validate()
    if self.tpu.startswith("grpc://"):
      try:
        reach.split_address(self.tpu[len("grpc://"):])
      except ValueError:
        raise ConfigError(f"{self.flag('tpu')}={self.tpu} is not grpc://HOST:PORT "
                          "with a port in 1-65535 (a TPU worker listens on "
                          "8470)") from None


SECTIONS = (DataConfig, ModelConfig, LossConfig, GameConfig, TrainerConfig, EvalConfig,
            SamplingConfig, RuntimeConfig)


@dataclasses.dataclass(frozen=True)
class Config:
  """All settings of a run: run-level fields and one attribute per section."""

  mode: str = _field("train", "What to run (a name in the mode registry): train, "
                     "eval, export, sample, prepare, diagnose.")
  model_dir: str = _field("runs/default", "Run directory: checkpoints, TensorBoard "
                          "logs, resolved flags, metrics and figures.")
  seed: int = _field(0, "Seed of the whole run (weights, data order, latents).",
                     check="nonnegative")
  export_dir: str = _field("", "SavedModel directory of --mode=export (default: "
                           "MODEL_DIR/saved_model).")
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  loss: LossConfig = dataclasses.field(default_factory=LossConfig)
  game: GameConfig = dataclasses.field(default_factory=GameConfig)
  trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
  eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)
  sampling: SamplingConfig = dataclasses.field(default_factory=SamplingConfig)
  runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)

  # Run-level fields that may differ between invocations on one run.
  RUN_FIELDS_FREE_ON_RESUME: ClassVar[Tuple[str, ...]] = ("mode", "model_dir",
                                                          "export_dir")

  def sections(self):
    """The section objects, in flag order."""
    return [getattr(self, s.name) for s in SECTIONS]

  def validate(self, num_replicas: int = 1) -> "Config":
    """Checks every section and the rules that span sections; returns self."""
    for field in run_fields():
      _check_value(f"--{field.name}", getattr(self, field.name), field.metadata)
    if not self.model_dir.strip():
      raise ConfigError("--model_dir must name a directory, got an empty value")
    for section in self.sections():
      section.validate()
    data, model, game = self.data, self.model, self.game
    data.check_batch_size(game.batch_size)
    if game.batch_size % num_replicas:
      raise ConfigError(f"--game.batch_size={game.batch_size} is not divisible by the "
                        f"{num_replicas} replicas of the distribution strategy")
    if self.loss.classifier_weight > 0 and model.num_generators < 2:
      raise ConfigError("--loss.classifier_weight > 0 needs --model.num_generators "
                        ">= 2")
    if self.mode == "train" and model.generator_prior != "uniform":
      raise ConfigError(f"--model.generator_prior={model.generator_prior} reweights "
                        "the generators of a trained run (eval, sample, export); "
                        "training weighs every generator alike: leave it uniform")
    if self.sampling.generator_file and self.mode != "sample":
      raise ConfigError("--sampling.generator_file is read by --mode=sample only, "
                        f"not --mode={self.mode}")
    return self

  def replace(self, **values) -> "Config":
    """A copy with `values` changed; keys are flag names ('trainer.train_steps')."""
    return from_dict(to_nested(values), base=self)

  def to_dict(self) -> Dict[str, Any]:
    """The nested settings as plain data (tuples as lists), e.g. for flags.json."""
    return _plain(dataclasses.asdict(self))

  def run_settings(self) -> Dict[str, Any]:
    """The settings that define the run (compared when a run resumes)."""
    values = {f.name: getattr(self, f.name) for f in run_fields()
              if f.name not in self.RUN_FIELDS_FREE_ON_RESUME}
    values.update({s.name: {k: v for k, v in dataclasses.asdict(s).items()
                            if k not in s.free_on_resume}
                   for s in self.sections() if s.defines_run})
    return _plain(values)


def run_fields():
  """The run-level (non-section) fields of `Config`."""
  return [f for f in dataclasses.fields(Config)
          if f.name not in {s.name for s in SECTIONS}]


def _plain(value):
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, tuple):
    return list(value)
  return value


def to_nested(values: Dict[str, Any]) -> Dict[str, Any]:
  """{'trainer.train_steps': 5, 'seed': 1} -> {'trainer': {'train_steps': 5}, ...}."""
  nested = {}
  for key, value in values.items():
    section, _, field = key.rpartition(".")
    if section:
      nested.setdefault(section, {})[field] = value
    else:
      nested[field] = value
  return nested


def _fill(cls, values, where, base):
  if not isinstance(values, dict):
    raise ConfigError(f"{where}: expected a mapping of settings, got {values!r}")
  known = {f.name: f for f in dataclasses.fields(cls)}
  unknown = sorted(set(values) - set(known))
  if unknown:
    prefix = f"{where}." if where else ""
    raise ConfigError("unknown settings: " + ", ".join(prefix + u for u in unknown))
  fixed = {}
  for name, value in values.items():
    section = next((s for s in SECTIONS if s.name == name), None) if cls is Config else None
    if section is not None:
      fixed[name] = _fill(section, value, name, getattr(base, name))
    else:
      fixed[name] = tuple(value) if isinstance(value, list) else value
  return dataclasses.replace(base, **fixed)


def from_dict(values: Dict[str, Any], base: Config = None) -> Config:
  """A `Config` from nested plain data (as in flags.json); lists become tuples.

  Settings missing from `values` keep their value in `base` (default: the defaults);
  unknown names raise `ConfigError`.
  """
  return _fill(Config, values, "", base if base is not None else Config())
