"""The salts of the random streams, all in one place so that no two streams share a
key by accident.

Every random draw of the package is stateless: its key combines the run's `--seed`
(and, for a stream indexed by step or epoch, that index) with one of these salts, so
that a run restarted from a checkpoint draws exactly what an uninterrupted one would
(docs/design.md section 2.2). The values are part of every number a run produces:
changing one changes the data, the samples or the chains of its stream.

Integer salts key `tf.random.experimental.stateless_*` draws; the key's layout is
given with each. String salts are those of `tfp.random.split_seed` inside the latent
samplers.
"""

# ----------------------------------------------------------------- data
#: The fixed training set of a Gaussian mixture: key `(seed, salt)`.
MIXTURE_FIXED_SET = 1
#: The epoch order of a finite training set (mixtures and images):
#: key `(4 seed + salt, epoch)`.
DATA_SHUFFLE = 2
#: Fresh mixture points of each step (infinite data): key `(4 seed + salt, step)`.
MIXTURE_STREAM = 3
#: The held-out image examples drawn when no seed is given: key `(0, salt)`.
IMAGE_HELD_OUT = 5
#: Stacked-MNIST: the fixed training triples, the triples drawn for each step, and
#: the held-out triples drawn when no seed is given.
STACKED_MNIST_FIXED = 11
STACKED_MNIST_STREAM = 12
STACKED_MNIST_EXAMPLES = 13

# ----------------------------------------------------------------- game
#: The interpolation weights of a gradient penalty, folded into the step's seed; far
#: from the replica indices folded into the latents' stream.
GRADIENT_PENALTY = 1 << 20

# ----------------------------------------------------------------- evaluation
#: The model samples of an evaluation: key `(seed, salt)`.
EVALUATION = 7
#: The grey backdrop of the scatter plot: the first points of a mixture's fixed
#: training set, hence the same salt.
SCATTER_BACKDROP = MIXTURE_FIXED_SET

# ----------------------------------------------------------------- trained runs
#: Calibration of the discriminator: held-out real data `(seed, salt)` and model
#: samples `(seed, salt + 1)`.
CALIBRATION = 11
#: Discriminator fine-tuning: the data order `seed + salt` and the fakes of update i
#: `(seed + salt, i)`.
FINETUNE = 13
#: The chains of `--mode=sample`: key `(seed, salt)`.
SAMPLING = 13
#: The held-out split of the training images: a stateless shuffle keyed
#: `(seed, salt)` (data without a finite training split hold out fresh examples drawn
#: with the calibration's key instead).
HELD_OUT_SPLIT = 101
#: The target test's candidate draws `(seed + salt, chunk)` and their Gumbel noise
#: `(seed + salt + 1, chunk)`.
TARGET_TEST = 103
#: `--mode=prepare`: the fine-tuning data order `seed + salt`, the fakes of update i
#: `(seed + salt, i)`, and the fixed fakes of the early stopping `(seed, salt + 1)`.
PREPARE = 105

# ----------------------------------------------------------------- latent samplers
#: `sample_latents`: the initial states and the per-step seeds of the chains.
SAMPLE_LATENTS = "sample_latents"
#: The Wang-Landau kernel's inner kernel.
WANG_LANDAU = "wang_landau"
#: The joint kernel's generator move and latent move.
JOINT_GENERATOR = "joint_generator"
#: The independence proposal's latent and generator draws.
INDEPENDENCE_PROPOSAL = "independence_proposal"
