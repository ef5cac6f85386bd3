"""The public surface: everything in __all__ exists, is documented, and leaks no internals."""

from __future__ import annotations

import inspect

import pytest

import smsbridge
import smsbridge.testing

MODULES = [smsbridge, smsbridge.testing]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_is_exact_and_sorted(module: object) -> None:
    """__all__ names only what exists, without duplicates, in sorted order."""
    names = module.__all__  # type: ignore[attr-defined]
    assert len(names) == len(set(names))
    assert list(names) == sorted(names)
    for name in names:
        assert hasattr(module, name), name


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_all_equals_the_public_names(module: object) -> None:
    """What the module shows without an underscore is exactly __all__ (submodules aside)."""
    public = {
        name
        for name in dir(module)
        if not name.startswith("_")
        and name != "annotations"
        and not inspect.ismodule(getattr(module, name))
    }
    assert public == set(module.__all__) - {"__version__"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_public_name_and_method_has_a_docstring(module: object) -> None:
    """Classes, functions and their public methods all carry a docstring."""
    missing = []
    for name in module.__all__:  # type: ignore[attr-defined]
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                if not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    assert missing == []


def test_error_tree_has_one_root() -> None:
    """Every exported exception derives from SmsBridgeError (warnings aside)."""
    errors = [
        getattr(smsbridge, n)
        for n in smsbridge.__all__
        if inspect.isclass(getattr(smsbridge, n))
        and issubclass(getattr(smsbridge, n), BaseException)
        and not issubclass(getattr(smsbridge, n), Warning)
    ]
    assert len(errors) >= 15
    assert all(issubclass(e, smsbridge.SmsBridgeError) for e in errors)
