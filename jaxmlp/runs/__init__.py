"""Runs: a training run on disk (its folder, checkpoints, history), the loop that drives it, and its evaluation.

In the package's order runs sit above the core and data, which they use, and below presentation (`jaxmlp.show`).
"""
