"""Root pytest configuration: the docstring examples of the package run as tests."""

import importlib.util

collect_ignore_glob = []
if importlib.util.find_spec("torch") is None:
    # the torch adapter's examples need the optional ``torch`` extra
    collect_ignore_glob.append("tensorapprox/nn/torch.py")


# docstring examples that run the Dask route: skipped without the ``dask`` extra
_NEEDS_DASK = {"tensorapprox.tucker.st_hosvd", "tensorapprox.completion.altmin.altmin_complete"}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or blocked installation
        return False


def pytest_collection_modifyitems(config, items):
    if _installed("dask"):
        return
    import pytest

    skip = pytest.mark.skip(reason="the example needs the 'dask' extra")
    for item in items:
        if item.name in _NEEDS_DASK:
            item.add_marker(skip)
