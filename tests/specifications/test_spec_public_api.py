"""The public surface: every ``__all__`` is sorted, complete and importable."""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

import cqrs_ddd_specifications

MODULES = [
    "cqrs_ddd_specifications.builder",
    "cqrs_ddd_specifications.exceptions",
    "cqrs_ddd_specifications.fields",
    "cqrs_ddd_specifications.operators",
    "cqrs_ddd_specifications.query_options",
    "cqrs_ddd_specifications.serialization",
    "cqrs_ddd_specifications.specification",
]


def _public_definitions(module: ModuleType) -> set[str]:
    """Names defined (not imported) in ``module`` that do not start with an underscore."""
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        defined = inspect.isclass(value) or inspect.isfunction(value)
        if defined and value.__module__ == module.__name__:
            names.add(name)
    return names


@pytest.mark.parametrize("name", MODULES)
def test_module_all_is_sorted_complete_and_importable(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported)
    assert _public_definitions(module) <= set(exported)
    for item in exported:
        assert hasattr(module, item), item


def test_package_reexports_every_module_export_except_the_dict_functions() -> None:
    package = set(cqrs_ddd_specifications.__all__)
    assert list(cqrs_ddd_specifications.__all__) == sorted(cqrs_ddd_specifications.__all__)
    for name in MODULES:
        module = importlib.import_module(name)
        exported = set(module.__all__)
        if name.endswith(".serialization"):
            assert not exported & package
            continue
        assert exported <= package, exported - package
    for item in package:
        assert getattr(cqrs_ddd_specifications, item) is not None


def test_exception_tree() -> None:
    from cqrs_ddd_core.exceptions import CqrsDddError
    from cqrs_ddd_specifications import exceptions as exc

    assert issubclass(exc.SpecificationError, CqrsDddError)
    assert issubclass(exc.SpecificationError, ValueError)
    for cls in (
        exc.UnknownOperatorError,
        exc.InvalidFieldError,
        exc.InvalidOperandError,
        exc.MalformedSpecificationError,
        exc.InvalidQueryOptionsError,
        exc.SpecificationEvaluationError,
    ):
        assert issubclass(cls, exc.SpecificationError)
        assert cls.__name__ in (exc.__doc__ or "")
    assert issubclass(exc.SpecificationEvaluationError, TypeError)
