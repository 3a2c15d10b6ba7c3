"""Sphinx configuration of the jaxmlp site: `make docs` builds it into build/html/.

The notebooks are rendered from their committed, executed .ipynb files (`make notebooks` writes them in
the full setting), not executed again: the site shows the numbers the notebooks' text discusses, builds in
seconds and offline, and CI checks separately that every notebook still runs (QUICK=1 make notebooks) and
that each .ipynb matches its MyST source (tests/test_notebooks.py).

The site reads offline: MathJax 3 comes from the sphinx-mathjax-offline package into _static/mathjax/, links
into the repository's files and folders lead to source views, and every figure opens full size on click
(docs/_ext/offline_site.py). `make docs` builds with -W: a dead link or any other warning fails the build.
tests/test_site.py checks the result in Chromium with the network blocked.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "jaxmlp"
author = "the jaxmlp authors"
extensions = [
    "myst_nb",
    "sphinx-mathjax-offline",  # MathJax 3 served from the site's _static/mathjax/: formulas render with no network
    "offline_site",  # docs/_ext: links into the repository's files go to source views; figures open full size
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # render the committed outputs
exclude_patterns = [
    "notebooks/*.md",  # the MyST twins of the .ipynb pages (same docname)
    "notebooks/data/**",
    "studies/*/results.json",
]
html_theme = "sphinx_book_theme"
html_title = "jaxmlp"
html_theme_options = {
    "repository_url": "",
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
