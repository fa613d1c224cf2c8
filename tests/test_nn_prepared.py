"""Prepared calls (sepconv.nn._prepared): a tuned inference route planned once gives the
general path's result bit for bit, and anything it was planned with changing sends the call
back to the general path."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import sepconv.nn as snn
from sepconv.nn import _autotune

CL = torch.channels_last
ROUTES = [("nchw", False), ("nchw", True), ("cl", False), ("cl", True)]


def _layers() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        snn.SeparableConv2d(6, 10, 3, padding="same"),
        snn.SeparableConv2d(6, 10, 3, 2, padding="same", bias=False),  # zero taps (even sizes)
        snn.SeparableConv2d(6, 10, (3, 5), padding="same", depth_multiplier=2),
        snn.SeparableConv2d(6, 10, 3, padding=((1, 2), (0, 1))),  # padded copy
        snn.SeparableConv2d(6, 10, 3, dilation=2, norm_layer=nn.BatchNorm2d, activation=nn.ReLU),
        snn.DepthwiseConv2d(6, 3, 2, padding="same"),
        snn.DepthwiseConv2d(6, 3, padding="same", dilation=2, depth_multiplier=3),
        snn.DepthwiseConv2d(6, 3, padding="valid", bias=False),
        snn.SpatiallySeparableConv2d(6, 10, 5, padding="same", intermediate_channels=4),
        snn.SpatiallySeparableConv2d(6, 10, (3, 4), 2, padding="same", order="row_first"),
    ]


def _tuned(monkeypatch: pytest.MonkeyPatch, route: tuple[str, bool]) -> None:
    monkeypatch.setattr(_autotune, "_tune", lambda *args, **kwargs: route)


def _general(layer: nn.Module, x: torch.Tensor, route: tuple[str, bool]) -> torch.Tensor:
    with torch.no_grad():
        return _autotune._run(route, x, layer._forward)


@pytest.mark.parametrize("index", range(10))
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_prepared_call_equals_the_general_path_bit_for_bit(monkeypatch, index, route, dtype):
    _tuned(monkeypatch, route)
    layer = _layers()[index].to(dtype).eval()
    x = torch.randn(2, 6, 12, 10, dtype=dtype)
    if route[0] == "cl":
        x = x.contiguous(memory_format=CL)
    with torch.no_grad():
        first, second = layer(x), layer(x)
    (call,) = layer.__dict__["_sepconv_prepared"].values()
    assert call is not None  # the route runs in the caller's format: prepared
    want = _general(layer, x, route)
    assert torch.equal(first, want) and torch.equal(second, want)
    assert second.is_contiguous(memory_format=CL if route[0] == "cl" else torch.contiguous_format)


@pytest.mark.parametrize("index", range(10))
@pytest.mark.parametrize("route", [*ROUTES, ("nchw", True, "mm"), ("cl", False, "mm")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_route_in_the_other_format_is_prepared_bit_for_bit(monkeypatch, index, route, dtype):
    """An NCHW caller on a channels-last route (converted in, the pointwise step writing NCHW;
    float64 stays NCHW, as the general path's) and a channels-last caller on an NCHW route
    (converted in and out), as the general path."""
    _tuned(monkeypatch, route)
    layer = _layers()[index].to(dtype).eval()
    x = torch.randn(2, 6, 12, 10, dtype=dtype)
    if route[0] == "nchw":
        x = x.contiguous(memory_format=CL)
    with torch.no_grad():
        first, second = layer(x), layer(x)
    (call,) = layer.__dict__["_sepconv_prepared"].values()
    assert call is not None
    want = _general(layer, x, route)
    assert torch.equal(first, want) and torch.equal(second, want)
    caller = CL if route[0] == "nchw" else torch.contiguous_format
    assert second.is_contiguous(memory_format=caller)


@pytest.mark.parametrize("index", [0, 1, 2, 3, 5, 6, 8, 9])
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("converted", [False, True], ids=["caller_format", "other_format"])
def test_prepared_training_call_gives_the_general_paths_gradients(
    monkeypatch, index, route, converted
):
    _tuned(monkeypatch, route)
    layer = _layers()[index].double()
    x = torch.randn(2, 6, 12, 10, dtype=torch.float64)
    if (route[0] == "cl") != converted:
        x = x.contiguous(memory_format=CL)
    x.requires_grad_(True)
    params = [x, *layer.parameters()]

    def grads(run):
        y = run()
        return [y.detach(), *torch.autograd.grad(y, params, torch.ones_like(y))]

    first = grads(lambda: layer(x))
    got = grads(lambda: layer(x))
    (call,) = layer.__dict__["_sepconv_prepared"].values()
    assert call is not None
    want = grads(lambda: _autotune._run(route, x, layer._forward))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(first, want, strict=True))
    layer.depthwise.weight.requires_grad_(False) if index < 5 else None
    with torch.no_grad():  # inference after training: planned anew (zero taps, no graph)
        assert torch.equal(layer(x), _general(layer, x, route))


@pytest.mark.parametrize("index", [0, 3, 5, 8])
@pytest.mark.parametrize("route", [*ROUTES, ("cl", "fused")])
@pytest.mark.parametrize("caller", ["nchw", "cl"])
@pytest.mark.parametrize("grad", [False, True])
def test_channels_last_weights_keep_the_callers_format(monkeypatch, index, route, caller, grad):
    """After ``layer.to(memory_format=torch.channels_last)`` PyTorch's convolution answers an
    NCHW input in channels-last; the layers still return the caller's format, on every
    route, prepared or not, with the result of the layer left NCHW."""
    _tuned(monkeypatch, route)
    layer = _layers()[index].eval()
    moved = copy.deepcopy(layer).to(memory_format=CL)
    x = torch.randn(2, 6, 12, 10)
    fmt = CL if caller == "cl" else torch.contiguous_format
    x = x.contiguous(memory_format=fmt).requires_grad_(grad)
    with torch.set_grad_enabled(grad):
        want = layer(x)
        for _ in range(3):  # planned, then prepared
            got = moved(x)
            assert got.is_contiguous(memory_format=fmt)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_changes_after_preparing_are_seen(monkeypatch):
    _tuned(monkeypatch, ("nchw", False))
    layer = _layers()[0].eval()
    x = torch.randn(2, 6, 12, 10)
    with torch.no_grad():
        layer(x)
        layer.depthwise.weight.mul_(2)  # in place: the same tensor, new values
        assert torch.equal(layer(x), _general(layer, x, ("nchw", False)))
        layer.depthwise.weight = nn.Parameter(torch.randn_like(layer.depthwise.weight))
        assert torch.equal(layer(x), _general(layer, x, ("nchw", False)))
        layer.pointwise.bias = None
        assert torch.equal(layer(x), _general(layer, x, ("nchw", False)))
        layer.depthwise.padding = "valid"  # new padding: the output shrinks
        assert layer(x).shape == (2, 10, 10, 8)
        assert torch.equal(layer(x), _general(layer, x, ("nchw", False)))
        replaced = nn.Conv2d(6, 10, 1)
        layer.pointwise = replaced  # model surgery: the general path calls the new child
        assert torch.equal(layer(x), replaced(layer.depthwise(x)))


def test_hooks_added_after_preparing_see_every_call(monkeypatch):
    _tuned(monkeypatch, ("nchw", False))
    layer = _layers()[0].eval()
    x = torch.randn(2, 6, 12, 10)
    seen = []
    with torch.no_grad():
        layer(x)
        layer.pointwise.register_forward_hook(lambda *args: seen.append(1))
        layer(x)
    assert seen == [1]


def test_weight_norm_parametrized_steps_are_not_prepared(monkeypatch):
    _tuned(monkeypatch, ("nchw", False))
    layer = _layers()[0].eval()
    torch.nn.utils.parametrizations.weight_norm(layer.depthwise)
    x = torch.randn(2, 6, 12, 10)
    with torch.no_grad():
        got = layer(x)
    assert list(layer.__dict__["_sepconv_prepared"].values()) == [None]
    assert torch.equal(got, _general(layer, x, ("nchw", False)))
