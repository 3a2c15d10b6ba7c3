"""Presentation: plots and figures, the autograd explanations, the notebooks' helpers and the studies.

In the package's order presentation sits on top of the core, data and runs, which it may import; only the
command line (`jaxmlp.cli`, `jaxmlp.__main__`) is above it.
"""
