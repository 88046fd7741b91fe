"""Every example in a docstring of the three packages runs, and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import hf_endpoint
import langchain_hf_endpoint
import llama_index_hf_endpoint

PACKAGES = (hf_endpoint, langchain_hf_endpoint, llama_index_hf_endpoint)


def modules_with_examples():
    names = []
    for package in PACKAGES:
        found = pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
        for name in [package.__name__, *(info.name for info in found)]:
            if name.endswith("__main__"):
                continue
            if ">>>" in (importlib.util.find_spec(name).loader.get_source(name) or ""):
                names.append(name)
    return names


MODULES = modules_with_examples()


def test_docstring_examples_are_found():
    assert {
        "hf_endpoint.config.settings",
        "hf_endpoint.client._embedding",
        "langchain_hf_endpoint.embeddings",
    } <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
