"""A module split into a package keeps one patch target per name.

Tests and benches patch a name on the package (`monkeypatch.setattr(importers, "BULK_MIN_ROWS", 1)`,
`mock.patch("campaigns.services.knowledge_base_available")`), as they did on the one module before the
split; the code reads the name in the submodule that defines or imports it. `forward_patches(__name__,
modules)` at the end of a package's __init__ makes setting a name on the package set it in every one of
those modules that holds it too."""

import sys
import types
from collections.abc import Sequence
from typing import Any


def forward_patches(package_name: str, modules: Sequence[types.ModuleType]) -> None:
    class _SplitPackage(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if not name.startswith("__"):
                for module in modules:
                    if name in vars(module):
                        setattr(module, name, value)
            super().__setattr__(name, value)

    sys.modules[package_name].__class__ = _SplitPackage
