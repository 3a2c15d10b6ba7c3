"""The ML core: the model, its optimizers, the jitted training and evaluation steps, device placement.

Pure functions of arrays and configs. In the package's order the core sits just above the shared vocabulary
(`jaxmlp.names`, `jaxmlp.errors`, `jaxmlp.config`, `jaxmlp.files`) and imports nothing else of jaxmlp.
"""
