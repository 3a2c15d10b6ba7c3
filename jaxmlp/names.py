"""The names a run's options choose from, in one module that imports nothing.

`config.py` validates options against these, and `cli.py` imports `config.py`, so `jaxmlp --help` and every option
error are answered before JAX, Flax or optax is imported (seconds). The modules that act on a name import it from
here: `core.model` maps each activation to its function, `core.optim` each optimizer to its optax transform.
"""

DOWNLOADABLE = ("mnist", "fashion_mnist", "kmnist")  # datasets in TFDS's registry of URLs and sha256 sums
DATASETS = DOWNLOADABLE + ("digits",)  # and scikit-learn's bundled 8x8 digits
NORMALIZATIONS = ("scale", "standardize")  # pixel scaling
ACTIVATIONS = ("relu", "gelu", "tanh", "silu")
NORMS = ("none", "batch", "layer")  # the layer after each hidden Linear
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
