"""Measured routes: each CPU layer call runs the way that was fastest for its inputs here.

A 2-D layer call on a CPU tensor can run several ways that compute the same function (to
rounding): in the caller's memory format or converted to the other one (NCHW or
channels-last, converted back at the end), with its depthwise step by PyTorch's
``F.conv2d(groups=C)`` or by the native kernel (``sepconv.nn._native_depthwise``), and, for a
separable layer in inference, both steps in one pass of the fused kernel
(``sepconv.nn._fused``, prepared by ``sepconv.nn._prepared.fused``). Which is
fastest depends on the processor, the thread count, the shape and the memory format in ways no
fixed rule captures: on a 2-core AMD EPYC at 2 threads, a 1x1 convolution of 1024 channels at
7x7 takes 2.0 ms in channels-last and 0.59 ms in NCHW, while 32 -> 64 channels at 112x112, batch
8, take 2.0 ms in channels-last and 3.7 ms in NCHW (``benchmarks/layers.py``).

So, like ``torch.backends.cudnn.benchmark``, the first call of a layer configuration on a new
input (shape, strides, dtype, thread count, whether gradients are wanted) times each route a
few times, interleaved, and keeps the fastest (the plain composition's route, the caller's
format with PyTorch's depthwise, unless another is faster by more than ``PREFER_PLAIN``);
later calls with the same key run it directly.
In training (a gradient wanted for the input or a weight) a route is timed forward and
backward together (``torch.autograd.grad``, which leaves ``.grad`` alone). A separable
layer's two fastest routes are timed again beside the same routes with their pointwise step
by matrix products (``sepconv.nn._pointwise_mm``, a route's third element ``"mm"``; not the
fused route, whose pointwise step is its own). A layer whose
children keep state in training mode (a batch norm) is not timed in training mode: it runs
:mod:`sepconv.nn._dispatch`'s modelled choice, as everything does where timing does not
apply (unbatched or non-CPU inputs, graph recording, ``torch.compile``, a
``TorchDispatchMode``, and inside :func:`use_native_depthwise` blocks, which force the
choice). :func:`use_autotune` turns timing off (or on) for a block, and ``SEPCONV_AUTOTUNE=0``
for the process (read once, at the first layer call that consults it).

Examples
--------
>>> import torch
>>> from sepconv.nn import SeparableConv2d, use_autotune
>>> layer = SeparableConv2d(8, 16, 3, padding="same").eval()
>>> x = torch.randn(2, 8, 12, 12)
>>> with torch.no_grad():
...     timed = layer(x)  # first call: each route timed, the fastest kept
...     again = layer(x)  # runs the kept route
...     with use_autotune(False):
...         modelled = layer(x)
>>> bool(torch.allclose(timed, modelled, rtol=1e-5, atol=1e-5))
True
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
import weakref
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _torch_module
from torch.utils._python_dispatch import _get_current_dispatch_mode as _dispatch_mode

from .._checks import SepconvTypeError
from .._extensions import switch as env_switch
from . import _prepared

__all__ = ["use_autotune", "route", "tuned_call", "fused_with", "clear", "without_caches"]

#: a route: (memory format the layer runs in, whether the depthwise step may run natively, or
#: "fused": depthwise and pointwise steps together by the fused kernel, sepconv.nn._fused),
#: and optionally "mm": the pointwise step by matrix products (sepconv.nn._pointwise_mm)
Route = tuple
#: the route forced inside a timed or tuned call (read by ``_execution``)
_ROUTE: contextvars.ContextVar[Route | None] = contextvars.ContextVar("sepconv_route", default=None)
_ENABLED: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "sepconv_autotune", default=None
)
#: keys kept per layer at most (a layer that sees many shapes clears and starts over)
MAX_KEYS = 64
#: layers whose routes were timed, to forget them all (weak: layers are not kept alive)
_LAYERS: weakref.WeakSet[nn.Module] = weakref.WeakSet()
#: timed rounds per route (interleaved), up to MAX_ROUNDS while the two fastest are within
#: CLOSE of each other; one round when a call takes longer than SLOW_S
ROUNDS = 3
MAX_ROUNDS = 9
CLOSE = 1.05
SLOW_S = 0.05
#: the plain composition's route is kept unless another is faster by more than this factor
PREFER_PLAIN = 1.03
#: the call of a configuration at which its routes are timed once more, and the new choice
#: kept: the first timing runs in a cold process (pages faulted in, caches and clocks not yet
#: settled) and can rank routes within a few tens of percent of each other wrongly (measured:
#: batch 1, channels-last, 1024 -> 1024 channels at 7x7, the fused route timed 1.9 ms at the
#: first call and 1.0 ms later, the one kept 2.3 ms)
RETUNE_AT = 8
_CL = torch.channels_last
#: a key not yet prepared (None: prepared as "the general path")
_UNPREPARED = object()


def use_autotune(enabled: bool | None) -> contextlib.AbstractContextManager[None]:
    """Time the layers' execution routes (``True``), or not (``False``), inside this block.

    A context manager: ``with use_autotune(False): ...`` (a call without ``with`` changes
    nothing). For the whole process, set ``SEPCONV_AUTOTUNE=0`` in the environment (read
    once, at the first layer call that consults it).

    ``None`` restores the default: on, unless the environment sets ``SEPCONV_AUTOTUNE=0``.
    Without timing a call runs the route that the measured cost model of
    ``sepconv.nn._dispatch`` predicts (constants written by ``python benchmarks/layers.py
    --calibrate``). Routes agree to rounding (1e-5 relative in float32).

    Raises ``TypeError`` when ``enabled`` is not True, False or None.

    Examples
    --------
    >>> import torch
    >>> from sepconv.nn import DepthwiseConv2d, use_autotune
    >>> layer = DepthwiseConv2d(4, 3, padding="same")
    >>> with use_autotune(False), torch.no_grad():
    ...     y = layer(torch.randn(1, 4, 9, 9))
    >>> tuple(y.shape)
    (1, 4, 9, 9)
    """
    return switch(_ENABLED, enabled)


def switch(
    variable: contextvars.ContextVar[bool | None], enabled: bool | None
) -> contextlib.AbstractContextManager[None]:
    """A ``with`` block in which ``variable`` is ``enabled`` (True, False or None), the
    argument checked at the call (the one body of the public switches of ``sepconv.nn``)."""
    if enabled is not None and not isinstance(enabled, bool):
        raise SepconvTypeError(
            f"`enabled` must be True, False or None, got {enabled!r} ({type(enabled).__name__})"
        )
    return _block(variable, enabled)


@contextlib.contextmanager
def _block(variable: contextvars.ContextVar[bool | None], enabled: bool | None) -> Iterator[None]:
    token = variable.set(enabled)
    try:
        yield
    finally:
        variable.reset(token)


#: what a layer keeps between calls (timed routes, prepared calls, a zero-tapped kernel, a
#: channels-last weight): left out of its pickle and its deep copies, which time and prepare anew
CACHES = (
    "_sepconv_routes",
    "_sepconv_prepared",
    "_sepconv_tapped",
    "_sepconv_cl_weight",
    "_sepconv_calls",
    "_sepconv_shared",
)


def without_caches(state: dict) -> dict:
    """A layer's ``__dict__`` for pickling (``torch.save``, ``copy.deepcopy``): the per-call
    caches (:data:`CACHES`, which hold closures) left out."""
    if any(key in state for key in CACHES):
        state = {key: value for key, value in state.items() if key not in CACHES}
    return state


def clear() -> None:
    """Forget every timed choice (the next call of each configuration times again)."""
    for layer in list(_LAYERS):
        layer.__dict__.pop("_sepconv_routes", None)
        layer.__dict__.pop("_sepconv_prepared", None)
        layer.__dict__.pop("_sepconv_calls", None)
        layer.__dict__.pop("_sepconv_shared", None)
    _SHARED.clear()


def route() -> Route | None:
    """The route forced for the call in progress, or None."""
    return _ROUTE.get()


#: SEPCONV_AUTOTUNE as read at the first call that asked (a process-wide setting; reading
#: the environment costs about a microsecond a call, most of a call's key)
_FROM_ENVIRONMENT: list[bool] = []


def _enabled() -> bool:
    setting = _ENABLED.get()
    if setting is None:
        if not _FROM_ENVIRONMENT:
            _FROM_ENVIRONMENT.append(env_switch("SEPCONV_AUTOTUNE"))
        return _FROM_ENVIRONMENT[0]
    return setting


def _key(layer: nn.Module, x: Tensor) -> tuple | None:
    """The cache key of a call that may be timed, or None where timing does not apply.

    Keys are kept per layer instance (every route computes the layer's function, so a layer
    changed after timing still computes right, at worst by a slower route).
    """
    ex = sys.modules[__package__ + "._execution"]  # imports this module: loaded by now

    if (
        _ROUTE.get() is not None
        or type(x) is not Tensor
        or x.dim() not in (4, 5)
        or not x.is_cpu
        or x.dtype not in (torch.float32, torch.float64)
        or not _enabled()
        or ex._NATIVE.get() is not None
        or torch.compiler.is_compiling()
        or ex.plain_requested()
        or _dispatch_mode() is not None
    ):
        return None
    if _hooked(layer):
        return None  # hooks would see the timed calls
    grad = torch.is_grad_enabled()
    if layer.training:  # with or without gradients, a training-mode batch norm updates its
        for child in layer._modules.values():  # statistics at every call: timing would repeat
            if (  # that (direct buffers first: the generator costs microseconds a call)
                child is not None
                and child.training
                and (child._buffers or (child._modules and next(child.buffers(), None) is not None))
            ):
                return None
    return (x.shape, x.stride(), x.dtype, x.requires_grad, grad, torch.get_num_threads())


def _hooked(layer: nn.Module) -> bool:
    """Whether a forward hook (the layer's, a child's or a global one) would see calls."""
    if _torch_module._global_forward_hooks or _torch_module._global_forward_pre_hooks:
        return True
    if layer._forward_hooks or layer._forward_pre_hooks:
        return True
    for m in layer._modules.values():
        if m is not None and (m._forward_hooks or m._forward_pre_hooks):
            return True
    return False


def _channels_last(x: Tensor) -> torch.memory_format:
    """The channels-last memory format of a 4-D (``channels_last``) or 5-D tensor."""
    return _CL if x.dim() == 4 else torch.channels_last_3d


def _run(chosen: Route, x: Tensor, forward: Callable[[Tensor], Tensor]) -> Tensor:
    token = _ROUTE.set(chosen)
    try:
        cl = _channels_last(x)
        if chosen[0] == "nchw" and not x.is_contiguous() and x.is_contiguous(memory_format=cl):
            ex = sys.modules[__package__ + "._execution"]
            return forward(ex.convert(x, torch.contiguous_format)).contiguous(memory_format=cl)
        return forward(x)
    finally:
        _ROUTE.reset(token)


def _timed(
    chosen: Route,
    x: Tensor,
    forward: Callable[[Tensor], Tensor],
    inputs: list[Tensor],
    fused: Callable[[Tensor], Tensor | None] | None = None,
) -> tuple[float, Tensor]:
    start = time.perf_counter()
    y = fused(x) if chosen[1] == "fused" and fused is not None else None
    if y is None:
        y = _run(chosen, x, forward)
    if inputs:
        torch.autograd.grad(y, inputs, torch.ones_like(y), allow_unused=True)
    return time.perf_counter() - start, y


class _Timing:
    """The timing of one configuration (a layer's signature and an input's key): the route
    chosen, each route's best time over its timings, whether it was timed again warm."""

    __slots__ = ("route", "times", "retuned")

    def __init__(self) -> None:
        self.route: Route = ("nchw", False)
        self.times: dict[Route, float] = {}
        self.retuned = False


#: timings shared by the layers of one configuration (MobileNet's five 512 -> 512 blocks at
#: 14x14 are timed once, not five times), by (signature, key); cleared past MAX_SHARED
_SHARED: dict[tuple, _Timing] = {}
MAX_SHARED = 1024


def _signature(layer: nn.Module) -> tuple:
    """What a layer's routes and their speeds depend on besides the input: its class and
    configuration, its children's (their ``repr``, which of them train), and its parameters'
    and buffers' shapes, dtypes and whether they want gradients; not their values (every
    route computes the layer's function)."""
    return (
        type(layer),
        repr(layer),
        tuple(m.training for m in layer.modules()),
        tuple((n, tuple(p.shape), p.dtype, p.requires_grad) for n, p in layer.named_parameters()),
        tuple((n, tuple(b.shape), b.dtype) for n, b in layer.named_buffers()),
    )


def _timing(
    layer: nn.Module, x: Tensor, forward: Callable[[Tensor], Tensor], native_ok: bool, key: tuple
) -> _Timing:
    """The timing of this layer's configuration on inputs of ``key``: another layer's of the
    same signature where one was timed in this process, else timed now."""
    signature = (_signature(layer), key)
    entry = _SHARED.get(signature)
    if entry is None:
        entry = _Timing()
        entry.route = _tune(layer, x, forward, native_ok, key, entry.times)
        if len(_SHARED) >= MAX_SHARED:
            _SHARED.clear()
        _SHARED[signature] = entry
    return entry


def tuned_call(
    layer: nn.Module, x: Tensor, forward: Callable[[Tensor], Tensor], native_ok: bool
) -> Tensor:
    """``forward(x)`` by the fastest route for this layer and input (timed on first use).

    ``native_ok``: the layer has a depthwise step the native kernel may run (zero padding).
    """
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return forward(x)
    key = _key(layer, x)
    if key is None:
        return forward(x)
    routes = layer.__dict__.get("_sepconv_routes")
    if routes is None:
        routes = layer.__dict__["_sepconv_routes"] = {}
        _LAYERS.add(layer)
    chosen = routes.get(key)
    calls = layer.__dict__.get("_sepconv_calls")
    if calls is None:
        calls = layer.__dict__["_sepconv_calls"] = {}
    prepared = layer.__dict__.get("_sepconv_prepared")  # the route planned once
    if prepared is None:  # (sepconv.nn._prepared)
        prepared = layer.__dict__["_sepconv_prepared"] = {}
    shared = layer.__dict__.get("_sepconv_shared")  # this layer's timings, by key
    if shared is None:
        shared = layer.__dict__["_sepconv_shared"] = {}
    entry = shared.get(key)
    if entry is None:
        if chosen is not None:  # a route set on the layer itself: kept, not timed
            entry = shared[key] = _Timing()
            entry.route, entry.retuned = chosen, True
            calls[key] = RETUNE_AT
        else:
            if len(routes) >= MAX_KEYS:
                routes.clear()
                prepared.clear()
                calls.clear()
                shared.clear()
            entry = shared[key] = _timing(layer, x, forward, native_ok, key)
    if chosen != entry.route:  # a first call, or another layer timed their configuration again
        chosen = routes[key] = entry.route
        prepared.pop(key, None)
    count = calls.get(key, 0)
    if count < RETUNE_AT:
        calls[key] = count = count + 1
        if count == RETUNE_AT and not entry.retuned:  # timed once more, warm (see RETUNE_AT)
            entry.retuned = True
            retuned = _tune(layer, x, forward, native_ok, key, entry.times)
            if retuned != chosen:
                chosen = routes[key] = entry.route = retuned
                prepared.pop(key, None)
    call = prepared.get(key, _UNPREPARED)
    if call is _UNPREPARED:
        token = _ROUTE.set(chosen)
        try:
            call = prepared[key] = _prepared.prepare(layer, chosen, x)
        finally:
            _ROUTE.reset(token)
    if call is not None:
        y = call(x)
        if y is not None:
            return y
        del prepared[key]  # planned with what has changed since: planned anew next time
    return _run(chosen, x, forward)


def fused_with(layer: nn.Module, x: Tensor, after: dict) -> Tensor | None:
    """``after["act"](after["norm"](layer(x)))`` in one call of the fused kernel, where the
    route timed for this layer and input on an earlier call is the fused one and ``after``'s
    modules are a batch norm in eval mode and a ReLU, ReLU6 or Hardtanh that nothing observes
    (:func:`sepconv.nn._prepared.fused`); None otherwise (the caller runs the modules). A
    parent such as MobileNet's block calls it: the output is then written once, not three
    times."""
    key = _key(layer, x)
    routes = layer.__dict__.get("_sepconv_routes")
    if key is None or routes is None or routes.get(key, ("", None))[1] != "fused":
        return None
    calls = layer.__dict__.get("_sepconv_calls")
    count = RETUNE_AT if calls is None else calls.get(key, RETUNE_AT)
    if count == RETUNE_AT - 1:
        return None  # the layer's own call (tuned_call), where its routes are timed again
    if count < RETUNE_AT:
        calls[key] = count + 1
    ex = sys.modules[__package__ + "._execution"]
    if not ex.unobserved(layer, *(m for k, m in after.items() if k in ("norm", "act") and m)):
        return None
    prepared = layer.__dict__.get("_sepconv_prepared")
    if prepared is None:
        prepared = layer.__dict__["_sepconv_prepared"] = {}
    pkey = (*key, "after")
    call = prepared.get(pkey, _UNPREPARED)
    if call is _UNPREPARED:
        call = prepared[pkey] = _prepared.fused(layer, x, after)
    if call is None:
        return None
    y = call(x)
    if y is None:
        del prepared[pkey]  # planned with what has changed since: planned anew next time
    return y


def _rounds(
    routes: list[Route],
    x: Tensor,
    forward: Callable[[Tensor], Tensor],
    inputs: list[Tensor],
    fused: Callable[[Tensor], Tensor | None] | None = None,
) -> dict[Route, float]:
    """Each route's best time: interleaved rounds after a warm-up, ROUNDS of them, up to
    MAX_ROUNDS while the two fastest are within CLOSE (one round for slow calls); routes
    beyond WARMUP_DROP times the fastest in the warm-up are not timed further (their warm-up
    time kept); after each of the first ROUNDS rounds, routes beyond DROP_BEYOND times the
    fastest's best leave the rounds, after the later ones those beyond CLOSE (the two fastest
    stay)."""
    warm = {r: _timed(r, x, forward, inputs, fused)[0] for r in routes}  # warm-up: page
    slow = min(warm.values()) > SLOW_S  # faults, oneDNN primitive creation
    # a route beyond WARMUP_DROP times the fastest in the warm-up keeps that (cold) time
    best = {r: t if t > WARMUP_DROP * min(warm.values()) else float("inf") for r, t in warm.items()}
    running = [r for r in routes if best[r] == float("inf")]
    for done in range(1 if slow else MAX_ROUNDS):
        for r in running:
            best[r] = min(best[r], _timed(r, x, forward, inputs, fused)[0])
        first, second = [*sorted(best[r] for r in running), float("inf")][:2]
        if done + 1 >= ROUNDS and second > CLOSE * first:
            break  # the fastest is clear; close contenders get more rounds
        ranked = sorted(running, key=best.__getitem__)
        limit = DROP_BEYOND if done + 1 < ROUNDS else CLOSE  # the later rounds: close ones
        running = ranked[:2] + [r for r in ranked[2:] if best[r] <= limit * first]
    return best


#: a route whose warm-up call took beyond this factor of the fastest's warm-up is not timed
#: further (a cold call, first-call costs included, so a wider margin than DROP_BEYOND's; 3-D
#: training at 54 channels of 16 x 56 x 56: PyTorch's routes 10-15 x the native one)
WARMUP_DROP = 4.0
#: a route whose best time in the first-call rounds is beyond this factor of the fastest's
#: leaves them (it is far from winning; its later rounds only made the first call slower:
#: MobileNetV1 at batch 8 spent 3.3 s of a 3.6 s first call timing routes, the slowest of
#: them NCHW routes at 2.5-4.5 times the fastest; 2-core AMD EPYC)
DROP_BEYOND = 1.5


#: the warm timing (RETUNE_AT) takes the routes whose best time so far is within this factor of
#: the fastest's (a cold first timing ranks routes within a few tens of percent of each other
#: wrongly; see RETUNE_AT): MobileNetV1's 8th call at batch 8 took 2.4 s instead of 3.2 (1.9
#: with 1.3; 2-core AMD EPYC, benchmarks/mobilenet.py)
RETIME_WITHIN = 1.5


def _within(route: Route, times: dict[Route, float]) -> bool:
    """Whether ``route`` is to be timed: not timed before, or within RETIME_WITHIN of the
    fastest so far."""
    return not times or times.get(route, 0.0) <= RETIME_WITHIN * min(times.values())


def _contenders(routes: list[Route], times: dict[Route, float]) -> list[Route]:
    """``routes`` to time: all of them the first time, then those not timed before or whose
    best time so far is within RETIME_WITHIN of the fastest's."""
    kept = [r for r in routes if _within(r, times)]
    if len(kept) < 2:  # interleaved rounds compare two at least: the next fastest as well
        rest = sorted((r for r in routes if r not in kept), key=times.__getitem__)
        kept += rest[: 2 - len(kept)]
    return kept


def _tune(
    layer: nn.Module,
    x: Tensor,
    forward: Callable[[Tensor], Tensor],
    native_ok: bool,
    key: tuple,
    times: dict[Route, float],
) -> Route:
    """The fastest route for ``layer`` on ``x``. ``times``: each route's best time in earlier
    timings of this configuration, updated here; the choice rests on the best of all of them
    (a burst of load on a shared machine through one timing's rounds of a route is undone by
    another timing's: measured, batch 1, NCHW, 1024 -> 1024 at 7x7, the warm timing once kept
    a route that ran 1.4 x the fused one chosen at the first call)."""
    from . import _native_depthwise as native

    routes: list[Route] = [("nchw", False), ("cl", False)]
    if native_ok and native.available():  # 3-D: the kernel reads NCDHW rows only
        routes += [("nchw", True), ("cl", True)] if x.dim() == 4 else [("nchw", True)]
    inputs: list[Tensor] = []
    if key[-2]:  # gradients enabled: time forward and backward together
        inputs = [p for p in layer.parameters() if p.requires_grad]
        if x.requires_grad:
            x = x.detach().requires_grad_(True)
            inputs.append(x)
    fused = None if inputs else _prepared.fused(layer, x)
    if fused is not None:  # inference: the fused depthwise-pointwise kernel as well
        routes.append(("cl", "fused"))
    every = routes
    retiming = bool(times)  # the warm timing (RETUNE_AT): best times of the first one kept
    routes = _contenders(routes, times)
    with torch.random.fork_rng(devices=[]):  # a dropout child must not move the seed
        best = _rounds(routes, x, forward, inputs, fused)
        if "pointwise" in layer._modules and x.dim() == 4:  # (2-D: _pointwise_mm)
            # the pointwise step by matrix products as well (BLAS's sgemm and oneDNN's 1x1
            # convolution each win at some shapes: batch 1, NCHW, 256 -> 256 at 28x28, 0.85
            # ms against 1.78 for the convolution after the native depthwise step), after the
            # two fastest routes (timed again beside them); not for the fused one
            leaders = sorted(routes, key=best.__getitem__)[:2]
            extra = [r + ("mm",) for r in leaders if r[1] != "fused"]
            extra = [r for r in extra if _within(r, times)]
            if extra:
                best.update(_rounds([*leaders, *extra], x, forward, inputs, fused))
            every = [*every, *(r + ("mm",) for r in every if r[1] != "fused")]
    for r, seconds in best.items():
        times[r] = min(times.get(r, float("inf")), seconds)
    routes = [r for r in every if r in times]  # with those timed only before
    best = {r: times[r] for r in routes}
    fastest = min(routes, key=best.__getitem__)
    # The route a plain composition takes (the caller's format, PyTorch's depthwise) is kept
    # unless another one is faster by more than timing noise: a near-tie measured on the
    # first call can go either way later.
    plain: Route = (
        "cl"
        if not x.is_contiguous() and x.is_contiguous(memory_format=_channels_last(x))
        else "nchw",
        False,
    )
    # Confirmed against the plain route by more interleaved rounds of the two (best times
    # kept): on a shared machine a burst of load that lasts through all of a route's first
    # rounds can rank it wrongly (measured: batch 1, NCHW, 128 -> 128 at 56x56, a
    # channels-last route kept that ran 1.6 x the plain one afterwards). Not in the warm
    # timing: the first one confirmed a plain route that lost, and one that won is retimed.
    if best[plain] > PREFER_PLAIN * best[fastest] and not retiming:
        with torch.random.fork_rng(devices=[]):
            again = _rounds([plain, fastest], x, forward, inputs, fused)
        best[plain] = times[plain] = min(best[plain], again[plain])
        best[fastest] = times[fastest] = min(best[fastest], again[fastest])
    return plain if best[plain] <= PREFER_PLAIN * best[fastest] else fastest
