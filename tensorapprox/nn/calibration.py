"""Real, offline text for calibrating and evaluating compressed language models.

Two kinds of text from the Python standard library, so that evaluation text
differs in kind from calibration text: the first lines of docstrings of
functions and classes (terse API summaries) and sentences of the reference
manual's topics in :mod:`pydoc_data.topics` (explanatory prose).
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings

__all__ = ["docstring_first_lines", "reference_sentences", "CALIBRATION_MODULES"]

# Standard-library modules whose docstrings calibrate: the first eight are the
# issue's examples; the others widen the vocabulary. Calibrating a MiniLM at
# p = 0.5 on 128 lines of the first eight gave a mean cosine of 0.753 on the
# reference-manual sentences, on 1024 lines of all of them 0.831:
# what limits the compressed model is how varied the calibration text is.
CALIBRATION_MODULES = (
    "os", "json", "re", "collections", "itertools", "functools", "pathlib", "subprocess",
    "typing", "string", "textwrap", "datetime", "math", "random", "statistics", "decimal", "fractions",
    "shutil", "tempfile", "argparse", "logging", "threading", "socket", "csv", "unittest", "inspect",
    "ast", "io", "heapq", "bisect", "copy", "struct", "zipfile", "tarfile", "urllib.parse",
    "http.client", "email.message", "xml.etree.ElementTree", "asyncio", "concurrent.futures",
    "multiprocessing", "queue", "sched", "selectors", "signal", "time", "calendar", "locale", "gettext",
    "codecs", "unicodedata", "difflib", "pprint", "enum", "dataclasses", "contextlib", "abc", "numbers",
    "operator",
)


def docstring_first_lines(modules=CALIBRATION_MODULES, n: int = 128) -> list[str]:
    """First lines of the docstrings of public members of ``modules``.

    Deterministic: modules in the given order, members sorted by name
    (submodules skipped: they are members only once imported),
    round-robin over the modules, duplicates and lines under four words
    dropped.

    Parameters
    ----------
    modules : sequence of str, default CALIBRATION_MODULES
        Names of importable modules whose public members are read.
    n : int, default 128
        Maximum number of lines to return.

    Returns
    -------
    list of str
        At most ``n`` distinct first lines (fewer if the modules do not
        have that many; empty when ``n <= 0``).

    Raises
    ------
    ImportError
        If a name in ``modules`` cannot be imported (raised by
        :func:`importlib.import_module`). The arguments are not otherwise
        validated.

    Examples
    --------
    >>> from tensorapprox.nn.calibration import docstring_first_lines
    >>> lines = docstring_first_lines(n=10)
    >>> len(lines)
    10
    >>> all(len(line.split()) >= 4 for line in lines)
    True
    """
    per = []
    for mod_name in modules:
        mod = importlib.import_module(mod_name)
        lines = []
        for name in sorted(dir(mod)):
            if name.startswith("_"):
                continue
            with warnings.catch_warnings():  # reading a deprecated alias (typing.io) warns
                warnings.simplefilter("ignore", DeprecationWarning)
                member = getattr(mod, name, None)
                # a submodule is an attribute of its package only once something
                # has imported it: reading it made the lines depend on that
                doc = None if inspect.ismodule(member) else inspect.getdoc(member)
            if not doc:
                continue
            first = doc.strip().splitlines()[0].strip()
            if len(first.split()) >= 4 and "(" not in first[:1]:
                lines.append(first)
        per.append(lines)
    out, seen, i = [], set(), 0
    while len(out) < n and any(i < len(p) for p in per):
        for p in per:
            if i < len(p) and p[i] not in seen and len(out) < n:
                seen.add(p[i])
                out.append(p[i])
        i += 1
    return out


def reference_sentences(n: int = 200, min_words: int = 6, max_words: int = 40) -> list[str]:
    """Prose sentences of the language reference topics in :mod:`pydoc_data.topics`.

    Code blocks, headings and indented lines are skipped; topics are taken
    in sorted order, round-robin, so the sentences span many topics.

    Parameters
    ----------
    n : int, default 200
        Maximum number of sentences to return.
    min_words : int, default 6
        Shortest sentence kept, in words.
    max_words : int, default 40
        Longest sentence kept, in words.

    Returns
    -------
    list of str
        At most ``n`` distinct sentences, each ending with a period (fewer
        if the topics do not have that many; empty when ``n <= 0``).

    Raises
    ------
    ImportError
        If :mod:`pydoc_data` is not available (some minimal Python
        builds omit it). The arguments are not otherwise validated.

    Examples
    --------
    >>> from tensorapprox.nn.calibration import reference_sentences
    >>> sentences = reference_sentences(n=20, min_words=6, max_words=40)
    >>> len(sentences)
    20
    >>> all(6 <= len(s.split()) <= 40 and s.endswith(".") for s in sentences)
    True
    """
    from pydoc_data.topics import topics

    per = []
    for key in sorted(topics):
        paras, cur = [], []
        for line in topics[key].splitlines():
            if not line.strip() or line.startswith(" ") or set(line.strip()) <= set("*=-~^"):
                if cur:
                    paras.append(" ".join(cur))
                cur = []
                continue
            cur.append(line.strip())
        if cur:
            paras.append(" ".join(cur))
        sents = []
        for p in paras:
            for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", p):
                words = s.split()
                if min_words <= len(words) <= max_words and s.endswith(".") and ">>>" not in s:
                    sents.append(s)
        per.append(sents)
    out, seen, i = [], set(), 0
    while len(out) < n and any(i < len(p) for p in per):
        for p in per:
            if i < len(p) and p[i] not in seen and len(out) < n:
                seen.add(p[i])
                out.append(p[i])
        i += 1
    return out
