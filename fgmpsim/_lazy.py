"""Module attributes resolved on first use (PEP 562), so importing a package never imports its heavy modules
(numpy, pandas, ml_dtypes, torch) until a name that needs them is used."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(package: str, namespace: dict[str, Any], names: Mapping[str, str],
                    subpackages: tuple[str, ...] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` whose globals are ``namespace``: ``names`` maps each public
    name to the module that defines it, ``subpackages`` are imported as attributes. A resolved name is cached in
    ``namespace``. A name must not also be a submodule of ``package``: importing the submodule would bind the
    module to that name, hiding the lazy value."""

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
        elif name in subpackages:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names, *subpackages})

    return __getattr__, __dir__
