"""Registries: lazy built-in entries, plug-in registration, errors that list what is registered."""

from __future__ import annotations

import sys

import pytest

from dualvgr.core.errors import SpecError
from dualvgr.core.registry import Registry


def test_builtin_entries_are_imported_only_when_looked_up():
    registry = Registry("thing", "section.kind", {"json": "json:dumps"})
    assert "json" in registry and registry.names() == ["json"]
    assert registry.get("json") is sys.modules["json"].dumps


def test_unknown_name_lists_the_registered_ones_and_suggests_the_closest():
    registry = Registry("data set", "dataset.kind", {"msvd-qa": "json:dumps", "svqa": "json:loads"})
    with pytest.raises(SpecError) as error:
        registry.get("svqaa")
    assert str(error.value) == (
        "'dataset.kind' is 'svqaa', which is no registered data set; did you mean 'svqa'? (registered: msvd-qa, "
        "svqa; a plug-in module listed under 'plugins' can register more)"
    )


def test_a_taken_name_is_refused_unless_replaced_on_purpose():
    registry = Registry("model", "model.name", {"dualvgr": "json:dumps"})
    with pytest.raises(SpecError, match="model 'dualvgr' is registered already \\(json:dumps\\)"):
        registry.register("dualvgr", object())
    replacement = object()
    registry.register("dualvgr", replacement, replace=True)
    assert registry.get("dualvgr") is replacement
    registry.unregister("dualvgr")
    assert "dualvgr" not in registry
