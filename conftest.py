"""Root pytest configuration: the docstring examples of the package run as tests."""

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("torch") is None:
    # the torch adapter's examples need the optional ``torch`` extra
    collect_ignore_glob.append("tensorapprox/nn/torch.py")
