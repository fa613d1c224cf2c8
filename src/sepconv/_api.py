"""What ``dir()`` shows of a public module: its API, not the names it imports for its own use.

Each public module ends with ``__dir__ = public_dir(globals())`` (PEP 562, as NumPy's
namespaces do): ``dir(module)`` and tab completion then list ``__all__`` and the module's
public submodules, never ``np``, ``math``, ``Any`` or helpers imported from elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

__all__ = ["public_dir"]


def public_dir(namespace: dict[str, Any], extra: Iterable[str] = ()) -> Callable[[], list[str]]:
    """A module-level ``__dir__`` for the module whose ``globals()`` is ``namespace``.

    Parameters
    ----------
    namespace : dict
        The module's ``globals()``; its ``__all__`` is read at each call.
    extra : iterable of str
        Further names to list, e.g. submodules loaded on first access.

    Returns
    -------
    callable
        ``__dir__() -> list[str]``: ``__all__``, ``extra`` and the public submodules already
        imported, sorted.

    Examples
    --------
    >>> import sepconv.cost
    >>> "math" in dir(sepconv.cost), "conv" in dir(sepconv.cost)
    (False, True)
    """
    prefix = namespace["__name__"] + "."
    extra = tuple(extra)

    def __dir__() -> list[str]:
        submodules = [
            name
            for name, value in namespace.items()
            if not name.startswith("_")
            and isinstance(value, ModuleType)
            and value.__name__.startswith(prefix)
        ]
        return sorted({*namespace.get("__all__", ()), *extra, *submodules})

    return __dir__
