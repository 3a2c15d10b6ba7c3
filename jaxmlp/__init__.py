"""jaxmlp: a pure-functional Flax MLP trained with jitted optax steps."""

__version__ = "0.1.0"
