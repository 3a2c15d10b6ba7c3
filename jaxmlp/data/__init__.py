"""Data: datasets as arrays, the IDX file format, and the verified downloads that fill the cache.

In the package's order data sits beside the core, just above the shared vocabulary (`jaxmlp.names`,
`jaxmlp.errors`, `jaxmlp.config`, `jaxmlp.files`), and imports nothing else of jaxmlp.
"""
