"""Prepared calls: a tuned route planned once per input configuration.

Once :mod:`sepconv.nn._autotune` has chosen a route for a layer and an input configuration
(shape, strides, dtype, thread count), every later call with that key does the same work: the
padding plan, the native kernel's choice and the memory-format decisions are the same each
time. The general path (``sepconv.nn._execution``: ``begin``, the steps as module calls,
``end``) redoes them on every call, about a hundred Python calls: with the kernels stubbed out
(``python benchmarks/layers_overhead.py --device cpu``) a ``SeparableConv2d`` call cost 11-14
us more host work than the naive ``nn.Sequential``, 1-3 us with a prepared call (2-core AMD
EPYC). A batch-1 MobileNet layer takes 0.3-1 ms at two threads. A prepared call does only
the convolutions, with the same operators in the same order on the same tensors, so its result
is the general path's bit for bit (``tests/test_nn_prepared.py``).

It applies to a route in the caller's memory format and to one in the other format (the
input converted in, and the result back, by the general path's operators), in training too,
where a gradient is wanted (the operators are the same, so autograd records the same graph),
to the layers' own steps (not children replaced by model surgery), plain parameters and more than
one input channel. Before each run it checks that nothing it planned with has changed: the
children, their padding, and the weight and bias tensors (the same objects, of the same
dtype, device, shape and ``requires_grad``); a change gives ``None`` and the general path
runs. What the cache key already covers (hooks, tracing, compiling, dispatch modes, forced
routes, whether gradients are enabled and wanted for the input) is
checked by the caller, :func:`sepconv.nn._autotune.tuned_call`, on every call.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import _execution as ex
from . import _pointwise_mm

__all__ = ["prepare", "fused"]

#: a prepared call: the layer's output, or None where what it was planned with has changed
Prepared = Callable[[Tensor], "Tensor | None"]
_CL = torch.channels_last


def _plain_parameters(module: nn.Module) -> tuple[Tensor, Tensor | None] | None:
    """``(weight, bias)`` where both are plain entries of the parameter dict, else None."""
    params = module._parameters
    if "weight" not in params or "bias" not in params or params["weight"] is None:
        return None
    return params["weight"], params["bias"]


def _depthwise_step(
    step: nn.Module, x: Tensor, native: bool, training: bool
) -> Callable[[Tensor, Tensor, Tensor | None], Tensor] | None:
    """``f(x, weight, bias)``: the depthwise step as :func:`sepconv.nn._execution.depthwise`
    runs it on inputs like ``x`` under route ``native``, in training (a gradient wanted) or
    inference, or None."""
    padding = step._padding
    weight = step._parameters["weight"]
    groups = int(step.groups)
    stride, dilation = padding.stride, padding.dilation
    if native:
        chosen = ex.native_choice(x, weight, padding, 2)  # under the route (see prepare)
        if chosen is not None:
            from . import _dispatch

            kernel, pads = _dispatch.native.depthwise_conv2d, chosen[2]
            fallback = _depthwise_step(step, x, False, training)
            if fallback is None:
                return None
            if not training:  # the kernel's parameters worked out once
                planned = _dispatch.native.planned_conv2d(
                    x,
                    weight,
                    step._parameters["bias"],
                    stride,
                    _dispatch.native._pads(pads),
                    dilation,
                )
                if planned is not None:
                    return planned

            def run_native(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
                y = kernel(x, weight, bias, stride, pads, dilation, backward="native")
                return fallback(x, weight, bias) if y is None else y

            return run_native
    # in inference on the CPU ex.zero_taps_pay holds (prepare declines a single channel)
    return ex.planned_conv(padding, tuple(x.shape[2:]), groups, 2, not training, step)


def _checked(step: nn.Module) -> Callable[[], tuple[Tensor, Tensor | None] | None]:
    """A check that ``step``'s padding and parameters are those planned with: their tensors
    then, else None."""
    padding = step._padding
    params = step._parameters
    weight, bias = params["weight"], params["bias"]
    stamp = (weight.dtype, weight.device, weight.shape, weight.requires_grad)

    def current() -> tuple[Tensor, Tensor | None] | None:
        w, b = params.get("weight"), params.get("bias")
        if (
            w is not weight
            or b is not bias
            or step._padding is not padding
            or (w.dtype, w.device, w.shape, w.requires_grad) != stamp
        ):
            return None
        return w, b

    return current


def _separable_checked(
    modules: dict, depthwise: nn.Module, pointwise: nn.Module
) -> Callable[[], tuple[Tensor, Tensor | None, Tensor, Tensor | None] | None]:
    """A check that a separable layer's two steps and their parameters are those planned
    with (:func:`_checked` for the depthwise step; the same children, the same pointwise
    tensors of the same dtype, device and shape): ``(dw, dw_bias, pw, pw_bias)`` then, else
    None."""
    depthwise_now = _checked(depthwise)
    params = pointwise._parameters
    weight, bias = params["weight"], params["bias"]
    stamp = (weight.dtype, weight.device, weight.shape)

    def current() -> tuple[Tensor, Tensor | None, Tensor, Tensor | None] | None:
        tensors = depthwise_now()
        w, b = params.get("weight"), params.get("bias")
        if (
            tensors is None
            or modules.get("depthwise") is not depthwise
            or modules.get("pointwise") is not pointwise
            or w is not weight
            or b is not bias
            or (w.dtype, w.device, w.shape) != stamp
        ):
            return None
        return (*tensors, w, b)

    return current


def _between(modules: dict) -> tuple[list[Tensor], tuple[float, float]] | None:
    """What a separable layer applies between its steps, as the fused kernel takes it: the
    tensors of a batch norm in eval mode with running statistics (folded into the depthwise
    weights), and the clamp of a ReLU, ReLU6 or Hardtanh activation; None for anything else."""
    norm, act = modules.get("norm"), modules.get("act")
    tensors: list[Tensor] = []
    if norm is not None:
        if (
            type(norm) is not nn.BatchNorm2d
            or norm.training
            or norm.running_mean is None
            or norm.running_var is None
        ):
            return None
        tensors = [norm.weight, norm.bias, norm.running_mean, norm.running_var]
    if act is None or type(act) is nn.Identity:
        return tensors, (-math.inf, math.inf)
    if type(act) is nn.ReLU:
        return tensors, (0.0, math.inf)
    if type(act) in (nn.ReLU6, nn.Hardtanh):
        return tensors, (float(act.min_val), float(act.max_val))
    return None


def _folded(weight: Tensor, bias: Tensor | None, norm: Any) -> tuple[Tensor, Tensor | None]:
    """A convolution's weight and bias with the batch norm in eval mode that follows it
    folded in (in float64: ``w * g / sqrt(v + eps)``, ``(b - m) * g / sqrt(v + eps) +
    beta``); unchanged without one."""
    if norm is None:
        return weight, bias
    with torch.no_grad():
        scale = (norm.running_var.double() + norm.eps).rsqrt()
        if norm.weight is not None:
            scale = scale * norm.weight.double()
        shift = -norm.running_mean.double() * scale
        if bias is not None:
            shift = shift + bias.double() * scale
        if norm.bias is not None:
            shift = shift + norm.bias.double()
        return (weight.double() * scale.view(-1, 1, 1, 1)).float(), shift.float()


def _pack_folded(
    dw: Tensor,
    dwb: Tensor | None,
    pw: Tensor,
    pwb: Tensor | None,
    norm: Any,
    clamp: tuple[float, float],
    after: tuple[Any, tuple[float, float]] = (None, (-math.inf, math.inf)),
) -> Any:
    """The fused kernel's weights: a batch norm in eval mode between the steps folded into the
    depthwise step, one after the layer (``after``: the norm and the output's clamp) into the
    pointwise step."""
    from . import _fused

    dw, dwb = _folded(dw, dwb, norm)
    pw, pwb = _folded(pw, pwb, after[0])
    return _fused.pack(dw, dwb, pw, pwb, clamp, after[1])


def _norm_stamps(*norms: Any) -> tuple:
    """The batch norms' tensors and ``eps`` (dictionary lookups: this runs at every call)."""
    out: tuple = ()
    for norm in norms:
        if norm is not None:
            params, buffers = norm._parameters, norm._buffers
            out += (params.get("weight"), params.get("bias"), buffers.get("running_mean"))
            out += (buffers.get("running_var"), norm.eps)
    return out


def _same(now: tuple, then: tuple) -> bool:
    """Whether the stamps of :func:`_norm_stamps` match: the same tensor objects (a tensor
    replaced by another, even at the same address, is a change) and the same ``eps``."""
    return len(now) == len(then) and all(
        a is b if isinstance(b, Tensor) or b is None else a == b for a, b in zip(now, then)
    )


def _bounds(*acts: Any) -> tuple:
    """The clamp bounds of activations (a Hardtanh's may change after planning)."""
    return tuple((getattr(a, "min_val", None), getattr(a, "max_val", None)) for a in acts)


def fused(layer: nn.Module, x: Tensor, after: dict | None = None) -> Prepared | None:
    """A call of a separable layer by the fused depthwise-pointwise kernel
    (:mod:`sepconv.nn._fused`) for inputs like ``x``, or None where it does not apply: a 2-D
    layer of the library's own steps, with nothing between them but a batch norm in eval mode
    (folded into the depthwise weights) and a ReLU, ReLU6 or Hardtanh, depth multiplier 1,
    zero padding, float32 CPU tensors, no gradient wanted. The result comes back in the
    caller's memory format. The weights are packed when planned and again whenever one of the
    tensors they come from has been changed in place or given new data (its version counter
    or its storage moved), so a ``load_state_dict``, an optimizer step or ``p.data = t`` is
    seen; an in-place edit through ``p.data``, which PyTorch does not count, is not.

    ``after``: the modules of a parent that follow the layer (``'norm'`` and ``'act'``, as
    MobileNet's block has them), applied by the same call, the batch norm folded into the
    pointwise weights and the activation a clamp of the output (the same kinds as between the
    steps); None where they are not of those kinds."""
    from . import _fused
    from .modules import KerasPaddingConv, _DepthwiseConvNd, _PointwiseConvNd, _SeparableConvNd

    if not (
        isinstance(layer, _SeparableConvNd)
        and x.dim() == 4
        and x.dtype is torch.float32
        and x.is_cpu
        and _fused.available()
    ):
        return None
    modules = layer._modules
    depthwise, pointwise = modules.get("depthwise"), modules.get("pointwise")
    between = _between(modules)
    if (
        between is None
        or type(depthwise).forward is not KerasPaddingConv.forward
        or not isinstance(depthwise, _DepthwiseConvNd)
        or type(depthwise)._run is not _DepthwiseConvNd._run
        or type(pointwise).forward is not _PointwiseConvNd.forward
    ):
        return None
    depthwise_parameters, pointwise_parameters = (
        _plain_parameters(depthwise),
        _plain_parameters(pointwise),
    )
    if depthwise_parameters is None or pointwise_parameters is None:
        return None
    norm, act = modules.get("norm"), modules.get("act")
    padding = depthwise._padding
    (dw, dwb), (pw, pwb) = depthwise_parameters, pointwise_parameters
    extra, clamp = between
    later = _between(after) if after is not None else ([], (-math.inf, math.inf))
    if later is None:
        return None
    after_norm, after_act = (None, None) if after is None else (after.get("norm"), after.get("act"))
    tensors = [t for t in (dw, dwb, pw, pwb, *extra, *later[0]) if t is not None]
    if (
        padding.mode != "zeros"
        or dw.shape[0] != x.shape[1]
        or any(t.dtype is not torch.float32 or not t.is_cpu or t.is_inference() for t in tensors)
        or ex.needs_grad(x, dw)
        or ex.needs_grad(x, pw)
    ):
        return None
    spatial = (int(x.shape[2]), int(x.shape[3]))
    padding.plan(spatial)  # checks that the kernel fits
    (top, bottom), (left, right) = padding.pads(spatial)
    pads, stride, dilation = (top, bottom, left, right), padding.stride, padding.dilation
    steps_now = _separable_checked(modules, depthwise, pointwise)
    state: list = [None, None]  # versions packed, the planned kernel call
    bounds = _bounds(act, after_act)  # a Hardtanh's
    stamps = _norm_stamps(norm, after_norm)

    def run_fused(x: Tensor) -> Tensor | None:
        if (
            steps_now() is None
            or modules.get("norm") is not norm
            or modules.get("act") is not act
            or (norm is not None and norm.training)
            or _bounds(act, after_act) != bounds
            or not _same(_norm_stamps(norm, after_norm), stamps)
            or after is not None
            and (
                after.get("norm") is not after_norm
                or after.get("act") is not after_act
                or (after_norm is not None and after_norm.training)
            )
            or torch.is_grad_enabled()
            and any(t.requires_grad for t in (x, *tensors))
        ):
            return None
        versions = tuple((t._version, t.data_ptr()) for t in tensors)
        if versions != state[0]:
            packed = _pack_folded(dw, dwb, pw, pwb, norm, clamp, (after_norm, later[1]))
            state[0], state[1] = versions, _fused.planned(x, packed, stride, pads, dilation)
        return None if state[1] is None else state[1](x)

    return run_fused


def prepare(layer: nn.Module, route: tuple, x: Tensor) -> Prepared | None:
    """A prepared call of ``layer`` for inputs like ``x`` under ``route``, or None
    where the general path must run (see the module's docstring). Called with ``route``
    forced (:func:`sepconv.nn._autotune.route`), as the native kernel's choice reads it."""
    if route[1] == "fused":
        return fused(layer, x)
    if x.dim() != 4 or int(x.shape[1]) < 2:
        return None
    from ._spatial import SpatiallySeparableConv2d

    steps = _spatial_steps if isinstance(layer, SpatiallySeparableConv2d) else _steps
    caller = "cl" if not x.is_contiguous() and x.is_contiguous(memory_format=_CL) else "nchw"
    if route[0] != caller:
        if caller == "nchw":
            if not _enters_channels_last(layer, x):
                return _contiguous(steps(layer, route, x, nchw_out=False))  # caller's format
            # run channels-last: ex.begin's conversion, the NCHW result written out
            return steps(layer, route, x.contiguous(memory_format=_CL), nchw_out=True)
        # a channels-last caller run in NCHW (sepconv.nn._autotune._run): converted in and out
        inner = steps(layer, route, x.contiguous(), nchw_out=False)
        if inner is None:
            return None
        nchw = torch.contiguous_format

        def run_in_nchw(x: Tensor) -> Tensor | None:
            y = inner(ex.convert(x, nchw))
            return None if y is None else y.contiguous(memory_format=_CL)

        return run_in_nchw
    call = steps(layer, route, x, nchw_out=False)
    return _contiguous(call) if caller == "nchw" else call


def _contiguous(call: Prepared | None) -> Prepared | None:
    """``call`` with its result contiguous, as :func:`sepconv.nn._execution.end` returns an
    NCHW caller's (channels-last weights, as ``layer.to(memory_format=torch.channels_last)``
    leaves them, make PyTorch's convolution answer in channels-last)."""
    if call is None:
        return None

    def run_contiguous(x: Tensor) -> Tensor | None:
        y = call(x)
        return None if y is None else y.contiguous()

    return run_contiguous


def _passes(layer: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """A spatially separable layer's two passes in the order they run, where both are its
    own (not replaced by model surgery), else None."""
    from ._spatial import _PassConv2d
    from .modules import KerasPaddingConv

    modules = layer._modules
    names = ("column", "row") if layer.order == "column_first" else ("row", "column")
    passes = tuple(modules.get(name) for name in names)
    if not all(
        isinstance(p, _PassConv2d)
        and type(p).forward is KerasPaddingConv.forward
        and type(p)._run is KerasPaddingConv._run
        for p in passes
    ):
        return None
    return passes  # type: ignore[return-value]


def _enters_channels_last(layer: nn.Module, x: Tensor) -> bool:
    """Whether the general path's :func:`sepconv.nn._execution.begin` converts this NCHW
    ``x`` to channels-last under the route forced (not for float64: ``ex.fast``)."""
    from ._spatial import SpatiallySeparableConv2d
    from .modules import _DepthwiseConvNd, _SeparableConvNd

    if isinstance(layer, SpatiallySeparableConv2d):
        passes = _passes(layer)
        weight = None if passes is None else passes[0]._parameters.get("weight")
        return weight is not None and ex.fast(x, 2, weight)
    step = layer._modules.get("depthwise") if isinstance(layer, _SeparableConvNd) else layer
    if not isinstance(step, _DepthwiseConvNd) or not step._fast_path:
        return False
    weight = step._parameters.get("weight")
    return weight is not None and ex.fast(x, 2, weight, step._padding)


def _spatial_steps(layer: nn.Module, route: tuple, x: Tensor, nchw_out: bool) -> Prepared | None:
    """:func:`_steps` for a spatially separable layer: its two passes' convolutions as
    :func:`sepconv.nn._execution.conv` runs them on inputs like ``x`` (padding planned once;
    on the channels-last route the weights' channels-last copies,
    :func:`sepconv.nn._execution.channels_last_weight`)."""
    passes = _passes(layer)
    if passes is None or any(_plain_parameters(p) is None for p in passes):
        return None
    if int(passes[0].out_channels) < 2:  # ex.conv restrides a one-channel input
        return None
    fast = (
        route[0] == "cl"
        and x.is_contiguous(memory_format=_CL)
        and ex.fast(x, 2, passes[0]._parameters["weight"])
    )
    plans, checks = [], []
    probe = torch.empty(x.shape, dtype=x.dtype, device="meta")
    for step in passes:
        plan = ex.planned_conv(step._padding, tuple(probe.shape[2:]), int(step.groups), 2, False)
        weight = step._parameters["weight"]
        probe = plan(probe, torch.empty(weight.shape, dtype=weight.dtype, device="meta"), None)
        plans.append(plan)
        checks.append(_checked(step))
    (first, second), (plan1, plan2), (now1, now2) = passes, plans, checks
    modules, order = layer._modules, layer.order
    names = ("column", "row") if order == "column_first" else ("row", "column")
    cl_weight = ex.channels_last_weight

    def run_spatial(x: Tensor) -> Tensor | None:
        one, two = now1(), now2()
        if (
            one is None
            or two is None
            or layer.order != order
            or modules.get(names[0]) is not first
            or modules.get(names[1]) is not second
        ):
            return None
        if nchw_out:
            x = ex.convert(x, _CL)
        w1, w2 = (cl_weight(one[0], first), cl_weight(two[0], second)) if fast else (one[0], two[0])
        y = plan2(plan1(x, w1, one[1]), w2, two[1])
        return y.contiguous() if nchw_out else y

    return run_spatial


def _steps(layer: nn.Module, route: tuple, x: Tensor, nchw_out: bool) -> Prepared | None:
    """:func:`prepare`'s call for inputs like ``x`` in the route's format. ``nchw_out``: the
    caller's input is NCHW and converted to ``x``'s channels-last in the call (as
    :func:`sepconv.nn._execution.begin` does), the result comes back NCHW (the pointwise step
    writes it directly, as the general path's)."""
    from .modules import (
        KerasPaddingConv,
        _DepthwiseConvNd,
        _norm_and_activation,
        _PointwiseConvNd,
        _SeparableConvNd,
    )

    if isinstance(layer, _SeparableConvNd):
        modules = layer._modules
        depthwise, pointwise = modules.get("depthwise"), modules.get("pointwise")
        if not (
            type(depthwise).forward is KerasPaddingConv.forward
            and isinstance(depthwise, _DepthwiseConvNd)
            and type(pointwise).forward is _PointwiseConvNd.forward
        ):
            return None
    elif isinstance(layer, _DepthwiseConvNd) and type(layer).forward is KerasPaddingConv.forward:
        modules, depthwise, pointwise = {}, layer, None
    else:
        return None
    if type(depthwise)._run is not _DepthwiseConvNd._run or _plain_parameters(depthwise) is None:
        return None
    training = ex.needs_grad(x, depthwise._parameters["weight"])
    step = _depthwise_step(depthwise, x, route[1], training)
    if step is None:
        return None
    if pointwise is None:
        depthwise_now = _checked(depthwise)

        def run_depthwise(x: Tensor) -> Tensor | None:
            tensors = depthwise_now()
            if tensors is None:
                return None
            if nchw_out:
                return step(ex.convert(x, _CL), *tensors).contiguous()
            return step(x, *tensors)

        return run_depthwise
    if _plain_parameters(pointwise) is None:
        return None
    steps_now = _separable_checked(modules, depthwise, pointwise)
    by_mm = len(route) > 2 and route[2] == "mm"
    mixing = _pointwise_mm.pointwise if by_mm else F.conv2d

    def run_separable(x: Tensor) -> Tensor | None:
        tensors = steps_now()
        if tensors is None:
            return None
        dw, dwb, w, b = tensors
        if nchw_out:  # the pointwise step writes the NCHW result (as the general path's)
            y = _norm_and_activation(modules, step(ex.convert(x, _CL), dw, dwb))
            return ex.pointwise(y, w, b, 2, True, True, by_mm=by_mm).contiguous()
        y = _norm_and_activation(modules, step(x, dw, dwb))
        return mixing(y, w, b)

    return run_separable
