"""Sphinx configuration of the jaxmlp site: `make docs` builds it into build/html/.

The notebooks are rendered from their committed, executed .ipynb files (`make notebooks` writes them in
the full setting), not executed again: the site shows the numbers the notebooks' text discusses, builds in
seconds and offline, and CI checks separately that every notebook still runs (QUICK=1 make notebooks) and
that each .ipynb matches its MyST source (tests/test_notebooks.py).
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
