"""The model registry: names to builder functions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .._checks import SepconvTypeError, SepconvValueError, describe

__all__ = ["register", "list_models", "create_model"]

_BUILDERS: dict[str, Callable[..., Any]] = {}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def register(name: str, builder: Callable[..., Any] | None = None) -> Any:
    """Register a model builder under ``name``; usable as a decorator.

    Parameters
    ----------
    name : str
        Lower-case letters, digits and underscores, starting with a letter, not yet registered.
    builder : callable, optional
        A function returning an ``nn.Module`` from keyword arguments. Without it, ``register``
        returns a decorator.

    Returns
    -------
    callable
        ``builder`` itself (or the decorator that registers and returns it).

    Raises
    ------
    ValueError
        If ``name`` is malformed or already registered.

    Examples
    --------
    >>> from sepconv import models
    >>> @models.register("my_tiny_net")
    ... def my_tiny_net(**kwargs):
    ...     import torch
    ...     return torch.nn.Linear(4, 2)
    >>> "my_tiny_net" in models.list_models()
    True
    >>> models.register("my_tiny_net", my_tiny_net)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `name` 'my_tiny_net' is already registered; ...
    >>> models.unregister("my_tiny_net")
    """
    if not isinstance(name, str):
        raise SepconvTypeError(f"`name` must be a string, got {describe(name)}")
    if not _NAME.match(name):
        raise SepconvValueError(
            f"`name` must be lower-case letters, digits and underscores starting with a letter, "
            f"got {name!r}"
        )
    if name in _BUILDERS:
        raise SepconvValueError(
            f"`name` {name!r} is already registered; choose another name or call "
            f"unregister({name!r}) first"
        )

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(fn):
            raise SepconvTypeError(f"`builder` must be callable, got {describe(fn)}")
        if name in _BUILDERS:
            raise SepconvValueError(f"`name` {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    if builder is not None:
        return decorate(builder)
    return decorate


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (raises ``ValueError`` if it is not registered)."""
    _lookup(name)
    del _BUILDERS[name]


def list_models() -> list[str]:
    """Names of the registered models, sorted.

    Examples
    --------
    >>> from sepconv import models
    >>> models.list_models()
    ['mnist_conv', 'mnist_separable', 'mobilenet_v1', 'mobilenet_v1_conv']
    """
    return sorted(_BUILDERS)


def _lookup(name: str) -> Callable[..., Any]:
    if not isinstance(name, str):
        raise SepconvTypeError(f"`name` must be a model name (a string), got {describe(name)}")
    try:
        return _BUILDERS[name]
    except KeyError:
        known = ", ".join(sorted(_BUILDERS)) or "none"
        raise SepconvValueError(
            f"`name` must be a registered model, got {name!r}; known models: {known}"
        ) from None


def create_model(name: str, **kwargs: Any) -> Any:
    """Build the registered model ``name`` with keyword arguments ``kwargs``.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.
    **kwargs
        Passed to the builder, e.g. ``width_multiplier=0.5`` for ``'mobilenet_v1'``.

    Returns
    -------
    torch.nn.Module
        A new model in training mode, with a ``default_input_size`` attribute ``(C, H, W)``.

    Raises
    ------
    ValueError
        If ``name`` is not registered (the message lists the known names).

    Examples
    --------
    >>> from sepconv import models
    >>> net = models.create_model("mobilenet_v1", width_multiplier=0.25, num_classes=10)
    >>> net.default_input_size
    (3, 224, 224)
    >>> models.create_model("mobilenet_v3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sepconv._checks.SepconvValueError: `name` must be a registered model, got 'mobilenet_v3'; ...
    """
    return _lookup(name)(**kwargs)
