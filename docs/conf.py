"""Sphinx configuration of the tensorapprox documentation.

Build (offline, warnings are errors), from the repository root::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Nothing is fetched from the network: math is rendered by a MathJax copy that
the ``sphinx-mathjax-offline`` package ships, and there is no intersphinx.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # document the checkout, also when it is not installed

import tensorapprox  # noqa: E402

# --------------------------------------------------------------------------- #
# project
# --------------------------------------------------------------------------- #
project = "tensorapprox"
author = "the tensorapprox developers"
copyright = "the tensorapprox developers"
release = tensorapprox.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx-mathjax-offline",  # MathJax served from _static: math renders without internet
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.json", "auto_examples/*.md5"]
default_role = "py:obj"  # `name` in a docstring links to the object when it can

# Docstrings write the observed index set as |Omega| (plain-text friendly);
# in reStructuredText that is a substitution reference, defined here.
rst_prolog = r"""
.. |Omega| replace:: \|Ω\|
.. |Omega_i| replace:: \|Ω\ :sub:`i`\|
"""

# --------------------------------------------------------------------------- #
# API reference: autodoc + autosummary + numpydoc
# --------------------------------------------------------------------------- #
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc sections give the types
autodoc_member_order = "bysource"
autodoc_default_options = {"show-inheritance": False}
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# every numpydoc check but three (the build runs with -W, so a docstring
# that drifts from its signature or its format fails it): no extended
# summary (ES01) or See Also (SA01) is required, and Examples (EX01) are
# not required of properties and attributes -- every public function, class
# and method has them, which the doctests run. The result classes document
# their fields as Attributes, not Parameters.
numpydoc_validation_checks = {"all", "ES01", "SA01", "EX01"}
# (module constants carry a one-line docstring that GL02 would reject)
numpydoc_validation_exclude = {r"Result$", r"\.[A-Z][A-Z0-9_]+$"}

# --------------------------------------------------------------------------- #
# gallery: every examples/plot_*.py is run, its figures captured
# --------------------------------------------------------------------------- #
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the examples are small: BLAS threads only add noise

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "doc_module": ("tensorapprox",),
    "reference_url": {"tensorapprox": None},  # link calls in the examples to this API reference
    "backreferences_dir": "api/backreferences",
    "remove_config_comments": True,
    "min_reported_time": 0,
    "show_memory": False,
    "download_all_examples": False,
    "capture_repr": (),
    # the timing pages load jQuery/DataTables from a CDN: not written, the
    # pages must work offline (each example page states its own run time)
    "write_computation_times": False,
    "matplotlib_animations": False,
}


def _example_figures_outside_the_source(app):
    """Point ``TENSORAPPROX_FIGURES`` (where the examples save their PNGs) into the build folder.

    The examples write a PNG of their own when they run; during the build that
    file goes to ``<doctree dir>/example-figures`` instead of next to the
    scripts (the gallery shows the figures sphinx-gallery captured itself).
    """
    folder = Path(app.doctreedir) / "example-figures"
    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TENSORAPPROX_FIGURES"] = str(folder)


class CliHelp(SphinxDirective):
    """``.. cli-help:: [SUBCOMMAND]`` -- the ``--help`` text of the command line, made at build time."""

    optional_arguments = 1

    def run(self):
        import argparse

        from tensorapprox.cli import build_parser

        os.environ["COLUMNS"] = "88"  # argparse wraps to the terminal width
        parser = build_parser()
        if self.arguments:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = sub.choices[self.arguments[0]]
        text = parser.format_help().rstrip()
        node = nodes.literal_block(text, text)
        node["language"] = "text"
        return [node]


def _summary_safe_ellipsis(app, what, name, obj, options, lines):
    """Keep autosummary from cutting a summary line inside ``literal`` text.

    autosummary ends the one-line summary at the first period followed by a
    space, also inside inline literals such as ``G x_1 U_1 ... x_d U_d``;
    the first paragraph writes such an ellipsis as one character instead.
    """
    started = False
    for i, line in enumerate(lines):
        if not line.strip():
            if started:
                break
            continue
        started = True
        lines[i] = line.replace("... ", "\u2026 ")


def setup(app):
    app.connect("autodoc-process-docstring", _summary_safe_ellipsis)
    # before sphinx-gallery (priority 500) runs the examples on builder-inited
    app.connect("builder-inited", _example_figures_outside_the_source, priority=100)
    app.add_directive("cli-help", CliHelp)


# --------------------------------------------------------------------------- #
# HTML
# --------------------------------------------------------------------------- #
html_theme = "furo"
html_title = f"tensorapprox {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_copy_source = False
