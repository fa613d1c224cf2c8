"""Timed routes (sepconv.nn._autotune): every route computes the layer, the choice is kept,
and timing never shows: not to hooks, not to batch-norm statistics, not in gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sepconv.nn as snn
from sepconv.nn import _autotune
from sepconv.nn import functional as SF

CL = torch.channels_last
ROUTES = [
    ("nchw", False),
    ("nchw", True),
    ("cl", False),
    ("cl", True),
    ("cl", "fused"),
    ("nchw", True, "mm"),
    ("cl", False, "mm"),
]


def _reference(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with snn.use_autotune(False), snn.use_native_depthwise(False):
        return layer(x.contiguous())


def _layers() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        snn.SeparableConv2d(6, 10, 3, 2, padding="same"),
        snn.SeparableConv2d(6, 10, (3, 5), padding="same", depth_multiplier=2),
        snn.DepthwiseConv2d(6, 3, padding="same", dilation=2),
        snn.DepthwiseConv2d(6, 3, 2, padding="same", padding_mode="reflect"),
        snn.SpatiallySeparableConv2d(6, 10, 3, padding="same"),
    ]


@pytest.mark.parametrize("index", range(5))
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_route_computes_the_layer(index, route, channels_last):
    layer = _layers()[index]
    x = torch.randn(2, 6, 11, 10)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    want = _reference(layer, x)
    with torch.no_grad():
        got = _autotune._run(route, x, layer._forward)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got.is_contiguous(memory_format=CL if channels_last else torch.contiguous_format)


@pytest.mark.parametrize("route", [("nchw", False, "mm"), ("cl", True, "mm"), ("cl", False)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("prepared", [False, True])
def test_training_routes_give_the_plain_gradients(route, channels_last, prepared):
    """The pointwise step by matrix products (and the other training routes), through the
    general path and the prepared call: the plain composition's output and gradients."""
    from sepconv.nn import _prepared

    torch.manual_seed(2)
    layer = snn.SeparableConv2d(6, 10, 3, 2, padding="same")
    twin = snn.SeparableConv2d(6, 10, 3, 2, padding="same")
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(3, 6, 11, 10)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    call = None
    if prepared:  # prepared calls run in the caller's format
        route = ("cl" if channels_last else "nchw", *route[1:])
        call = _prepared.prepare(layer, route, a)
        assert call is not None
    got = call(a) if call is not None else _autotune._run(route, a, layer._forward)
    with snn.use_autotune(False), snn.use_native_depthwise(False):
        want = twin(b)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    grad = torch.randn(want.shape)
    got.backward(grad)
    want.backward(grad)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
    for p, q in zip(layer.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("bias", [False, True])
def test_pointwise_by_matrix_products(channels_last, batch, bias):
    from sepconv.nn import _pointwise_mm

    g = torch.Generator().manual_seed(4)
    x = torch.randn(batch, 5, 4, 6, dtype=torch.float64, generator=g)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    x.requires_grad_(True)
    w = torch.randn(7, 5, 1, 1, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(7, dtype=torch.float64, generator=g, requires_grad=True) if bias else None
    y = _pointwise_mm.pointwise(x, w, b)
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w, b))
    assert y.is_contiguous(memory_format=CL if channels_last else torch.contiguous_format)
    inputs = (x, w, b) if bias else (x, w)
    assert torch.autograd.gradcheck(
        lambda *t: _pointwise_mm.pointwise(*t[:2], *t[2:] or [None]), inputs
    )
    assert torch.autograd.gradgradcheck(
        lambda *t: _pointwise_mm.pointwise(*t[:2], *t[2:] or [None]), inputs
    )


def test_the_choice_is_timed_once_and_kept(monkeypatch):
    layer = snn.SeparableConv2d(8, 16, 3, padding="same")
    timed = []
    original = _autotune._tune

    def spy(*args, **kwargs):
        timed.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_autotune, "_tune", spy)
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        first = layer(x)
        second = layer(x)
        layer(x.contiguous(memory_format=CL))  # another key: timed again
    assert len(timed) == 2
    assert first.equal(second)
    (route,) = {
        r for k, r in layer._sepconv_routes.items() if k[0] == x.shape and k[1] == x.stride()
    }
    assert route in ROUTES
    _autotune.clear()
    assert "_sepconv_routes" not in layer.__dict__


def test_timed_once_more_when_warm(monkeypatch):
    """At the RETUNE_AT-th call of a configuration the routes are timed again and the new
    choice kept (planned anew), once; the outputs stay the same to rounding."""
    layer = snn.SeparableConv2d(8, 16, 3, padding="same")
    choices = iter([("nchw", False), ("cl", False)])
    timed = []

    def fake(*args, **kwargs):
        timed.append(1)
        return next(choices)

    monkeypatch.setattr(_autotune, "_tune", fake)
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        first = layer(x)
        for _ in range(_autotune.RETUNE_AT - 2):
            layer(x)
        key = next(iter(layer._sepconv_routes))
        assert len(timed) == 1 and layer._sepconv_routes[key] == ("nchw", False)
        again = layer(x)  # the RETUNE_AT-th call
        assert len(timed) == 2 and layer._sepconv_routes[key] == ("cl", False)
        for _ in range(5):
            later = layer(x)
    assert len(timed) == 2
    torch.testing.assert_close(again, first)
    torch.testing.assert_close(later, first)
    assert later.is_contiguous()


def test_switched_off_by_the_context_and_the_environment(monkeypatch):
    layer = snn.DepthwiseConv2d(4, 3, padding="same")
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad(), snn.use_autotune(False):
        layer(x)
    assert "_sepconv_routes" not in layer.__dict__
    monkeypatch.setenv("SEPCONV_AUTOTUNE", "0")
    monkeypatch.setattr(_autotune, "_FROM_ENVIRONMENT", [])  # read again (once a process)
    with torch.no_grad():
        layer(x)
    assert "_sepconv_routes" not in layer.__dict__
    with torch.no_grad(), snn.use_autotune(True):
        layer(x)
    assert layer._sepconv_routes
    with pytest.raises(TypeError, match="enabled"):
        with snn.use_autotune("yes"):
            pass


@pytest.mark.parametrize(
    "value, on",
    [
        ("0", False),
        ("false", False),
        ("OFF", False),
        ("no", False),
        ("1", True),
        ("True", True),
        (" yes ", True),
        ("on", True),
        ("", True),
    ],
)
def test_environment_switch_values(monkeypatch, value, on):
    """SEPCONV_AUTOTUNE takes the usual spellings of a switch; anything else is an error that
    names the variable (it was silently on)."""
    monkeypatch.setenv("SEPCONV_AUTOTUNE", value)
    monkeypatch.setattr(_autotune, "_FROM_ENVIRONMENT", [])
    assert _autotune._enabled() is on
    monkeypatch.setenv("SEPCONV_AUTOTUNE", "0" if on else "1")
    assert _autotune._enabled() is on  # read once


def test_environment_switch_refuses_other_values(monkeypatch):
    monkeypatch.setenv("SEPCONV_AUTOTUNE", "maybe")
    monkeypatch.setattr(_autotune, "_FROM_ENVIRONMENT", [])
    with pytest.raises(ValueError, match="SEPCONV_AUTOTUNE='maybe'"):
        _autotune._enabled()


def test_forced_native_choice_is_not_timed():
    layer = snn.DepthwiseConv2d(4, 3, padding="same")
    with torch.no_grad(), snn.use_native_depthwise(False):
        layer(torch.randn(1, 4, 8, 8))
    assert "_sepconv_routes" not in layer.__dict__


def test_hooks_see_one_call():
    layer = snn.SeparableConv2d(4, 6, 3, padding="same")
    seen = []
    layer.depthwise.register_forward_hook(lambda *_: seen.append(1))
    with torch.no_grad():
        layer(torch.randn(1, 4, 8, 8))
    assert seen == [1]


@pytest.mark.parametrize("grad", [True, False])
def test_batch_norm_statistics_updated_once_in_training(grad):
    """Also without gradients: batch-norm re-estimation runs training mode under no_grad."""
    layer = snn.SeparableConv2d(4, 6, 3, padding="same", norm_layer=nn.BatchNorm2d)
    layer.train()
    with torch.set_grad_enabled(grad):
        layer(torch.randn(3, 4, 8, 8))
    assert int(layer.norm.num_batches_tracked) == 1


def test_gradients_are_those_of_one_call():
    torch.manual_seed(1)
    layer = snn.SeparableConv2d(5, 7, 3, 2, padding="same")
    twin = snn.SeparableConv2d(5, 7, 3, 2, padding="same")
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(2, 5, 10, 9)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    layer(a).square().sum().backward()
    assert layer._sepconv_routes  # timed forward and backward
    with snn.use_autotune(False), snn.use_native_depthwise(False):
        twin(b).square().sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
    for p, q in zip(layer.parameters(), twin.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-5)


def test_unbatched_and_non_float_inputs_are_not_timed():
    layer = snn.SeparableConv2d(4, 6, 3, padding="same")
    with torch.no_grad():
        layer(torch.randn(4, 8, 8))
    assert "_sepconv_routes" not in layer.__dict__


def test_switches_check_their_argument_when_called():
    for switch in (snn.use_autotune, snn.use_native_depthwise):
        with pytest.raises(TypeError, match="enabled"):
            switch("no")  # refused at the call, not only on entering the block


@pytest.mark.parametrize("channels_last", [False, True])
def test_every_route_returns_the_input_gradient_in_the_callers_format(channels_last):
    """A route that converts the input hands its gradient back in the caller's memory format
    (so that a leaf's gradient is not copied again outside the timed call), equal across
    routes; gradcheck through the conversion."""
    torch.manual_seed(0)
    layer = snn.SeparableConv2d(6, 10, 3, 2, padding="same").double()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 6, 12, 10, dtype=torch.float64).contiguous(memory_format=fmt)
    grads = []
    for route in [("nchw", False), ("cl", False), ("nchw", True), ("cl", True)]:
        leaf = x.clone().requires_grad_(True)
        y = _autotune._run(route, leaf, layer._forward)
        (grad,) = torch.autograd.grad(y.square().sum(), leaf)  # as a timed route sees it
        assert grad.is_contiguous(memory_format=fmt)
        grads.append(grad)
    for g in grads[1:]:
        torch.testing.assert_close(g, grads[0])
    from sepconv.nn import _execution as ex

    other = torch.contiguous_format if channels_last else torch.channels_last
    leaf = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ex.convert(t, other).sin(), (leaf,))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("margin, keeps_plain", [(1.02, True), (1.10, False)])
def test_the_plain_route_is_kept_unless_another_is_clearly_faster(
    monkeypatch, channels_last, margin, keeps_plain
):
    """A route other than the plain composition's (the caller's format, PyTorch's depthwise)
    is chosen only when its time is below the plain one's by more than PREFER_PLAIN."""
    plain = ("cl" if channels_last else "nchw", False)
    other = ("nchw" if channels_last else "cl", False)

    def timed(route, x, forward, inputs, fused=None):
        seconds = {plain: margin, other: 1.0}.get(route, 5.0)
        return seconds * 1e-3, forward(x)

    monkeypatch.setattr(_autotune, "_timed", timed)
    layer = snn.SeparableConv2d(4, 6, 3, padding="same").eval()
    x = torch.randn(2, 4, 9, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        layer(x)
    (chosen,) = layer.__dict__["_sepconv_routes"].values()
    assert chosen == (plain if keeps_plain else other)
    assert _autotune.PREFER_PLAIN < 1.10


def test_a_route_beating_the_plain_one_is_timed_again_against_it(monkeypatch):
    """A route that beat the plain composition's in the first rounds only because the plain
    one was slowed then (a burst of load on a shared machine) is timed again beside it, and
    the plain route kept when the second timing shows it as fast."""
    plain, other = ("nchw", False), ("cl", False)
    calls = {plain: 0}

    def timed(route, x, forward, inputs, fused=None):
        if route == plain:
            calls[plain] += 1
            slowed = calls[plain] <= 1 + _autotune.MAX_ROUNDS  # warm-up and the first rounds
            return (2.0 if slowed else 0.9) * 1e-3, forward(x)
        return (1.0 if route == other else 5.0) * 1e-3, forward(x)

    monkeypatch.setattr(_autotune, "_timed", timed)
    layer = snn.SeparableConv2d(4, 6, 3, padding="same").eval()
    with torch.no_grad():
        layer(torch.randn(2, 4, 9, 9))
    (chosen,) = layer.__dict__["_sepconv_routes"].values()
    assert chosen == plain
    assert calls[plain] > 1 + _autotune.MAX_ROUNDS  # timed again


def test_the_warm_timing_keeps_the_best_times_of_the_first(monkeypatch):
    """The routes are timed again at the RETUNE_AT-th call; a burst of load through that
    timing's rounds of the fastest route does not displace it: each route's best time over
    both timings decides."""
    plain, other = ("nchw", False), ("cl", False)
    burst = [False]

    def timed(route, x, forward, inputs, fused=None):
        if route == other:
            return (3.0 if burst[0] else 0.5) * 1e-3, forward(x)
        return (1.0 if route == plain else 5.0) * 1e-3, forward(x)

    monkeypatch.setattr(_autotune, "_timed", timed)
    layer = snn.SeparableConv2d(4, 6, 3, padding="same").eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        for call in range(1, _autotune.RETUNE_AT + 1):
            burst[0] = call == _autotune.RETUNE_AT
            layer(x)
    (chosen,) = layer.__dict__["_sepconv_routes"].values()
    assert chosen == other
    (timing,) = layer.__dict__["_sepconv_shared"].values()
    assert timing.times[other] == 0.5e-3 and timing.times[plain] == 1e-3 and timing.retuned


def test_the_warm_timing_leaves_out_routes_twice_as_slow(monkeypatch):
    """The warm timing at the RETUNE_AT-th call times only the routes within RETIME_WITHIN
    of the fastest so far (and two at least); the choice still rests on every route's best."""
    speed = {("nchw", False): 1.0, ("cl", False): 1.5, ("nchw", True): 2.5, ("cl", True): 4.0}
    seen: list[list[tuple]] = [[]]

    def timed(route, x, forward, inputs, fused=None):
        seen[-1].append(route)
        return speed.get(route[:2], 9.0) * 1e-3, forward(x)

    monkeypatch.setattr(_autotune, "_timed", timed)
    layer = snn.DepthwiseConv2d(4, 3, padding="same").eval()
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        for call in range(1, _autotune.RETUNE_AT + 1):
            if call == _autotune.RETUNE_AT:
                seen.append([])
            layer(x)
    first, warm = set(seen[0]), set(seen[1])
    assert ("cl", True) in first and ("nchw", True) in first
    assert warm == {("nchw", False), ("cl", False)}
    (chosen,) = layer.__dict__["_sepconv_routes"].values()
    assert chosen == ("nchw", False)
    # the fastest alone within the factor: the next fastest is timed beside it
    speed[("cl", False)] = 3.0
    _autotune._SHARED.clear()
    seen[:] = [[]]
    layer = snn.DepthwiseConv2d(4, 3, padding="same").eval()
    with torch.no_grad():
        for call in range(1, _autotune.RETUNE_AT + 1):
            if call == _autotune.RETUNE_AT:
                seen.append([])
            layer(x)
    assert set(seen[1]) == {("nchw", False), ("nchw", True)}


def test_routes_far_slower_leave_the_first_rounds(monkeypatch):
    """At the first call, a route beyond DROP_BEYOND times the fastest's best after a round
    leaves the rounds (timed in the warm-up and the first round only), one beyond WARMUP_DROP
    in the warm-up is not timed further; the two fastest, within CLOSE of each other, get
    every round; the choice is unchanged."""
    speed = {("nchw", False): 1.0, ("cl", False): 1.02, ("nchw", True): 3.0, ("cl", True): 1.6}
    calls: dict[tuple, int] = {}

    def timed(route, x, forward, inputs, fused=None):
        calls[route] = calls.get(route, 0) + 1
        return speed.get(route[:2], 9.0) * 1e-3, forward(x)

    monkeypatch.setattr(_autotune, "_timed", timed)
    layer = snn.DepthwiseConv2d(4, 3, padding="same").eval()
    with torch.no_grad():
        layer(torch.randn(2, 4, 9, 9))
    assert _autotune.DROP_BEYOND < 1.6 < 3.0 < _autotune.WARMUP_DROP
    assert calls[("nchw", False)] == calls[("cl", False)] == 1 + _autotune.MAX_ROUNDS
    if ("nchw", True) in calls:  # the native kernel built
        assert calls[("nchw", True)] == calls[("cl", True)] == 2
    (chosen,) = layer.__dict__["_sepconv_routes"].values()
    assert chosen == ("nchw", False)
    # beyond WARMUP_DROP in the warm-up: not timed further; the fastest alone then runs its
    # ROUNDS rounds (none is close to it)
    speed.update({("cl", False): 5.0, ("nchw", True): 5.0, ("cl", True): 5.0})
    calls.clear()
    _autotune._SHARED.clear()
    layer = snn.DepthwiseConv2d(4, 3, padding="same").eval()
    with torch.no_grad():
        layer(torch.randn(2, 4, 9, 9))
    assert calls[("cl", False)] == 1 and calls[("nchw", False)] == 1 + _autotune.ROUNDS
    (chosen,) = layer.__dict__["_sepconv_routes"].values()
    assert chosen == ("nchw", False)


@pytest.mark.parametrize("channels_last", [False, True])
def test_3d_layers_time_their_routes(monkeypatch, channels_last):
    """DepthwiseConv3d and SeparableConv3d time their routes as the 2-D layers do: NCDHW and
    channels_last_3d with PyTorch's depthwise convolution, and NCDHW with the native 3-D
    kernel (for a channels_last_3d caller, converted there and back); the fastest is kept
    and later calls run it, in the caller's format, with PyTorch's result."""
    from sepconv.nn import _native_depthwise as native

    if not native.available():
        pytest.skip("the native depthwise kernel is not built here")
    seen: list[tuple] = []
    speed = {("nchw", True): 0.5}

    def timed(route, x, forward, inputs, fused=None):
        seen.append(route)
        return speed.get(route, 1.0) * 1e-3, _autotune._run(route, x, forward)

    calls = []
    original = native.depthwise_conv3d

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_autotune, "_timed", timed)
    monkeypatch.setattr(native, "depthwise_conv3d", spy)
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    x = torch.randn(2, 6, 4, 7, 9).contiguous(memory_format=fmt)
    for layer in (
        snn.DepthwiseConv3d(6, 3, padding="same").eval(),
        snn.SeparableConv3d(6, 5, 3, padding="same").eval(),
    ):
        del seen[:]
        with torch.no_grad():
            layer(x)
            assert {("nchw", False), ("cl", False), ("nchw", True)} <= set(seen)
            assert ("cl", True) not in seen
            (chosen,) = layer.__dict__["_sepconv_routes"].values()
            assert chosen == ("nchw", True)
            del calls[:]
            y = layer(x)
            assert calls and y.is_contiguous(memory_format=fmt)
            with SF.plain_composition():
                expected = layer(x)
        torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_layers_of_one_configuration_share_their_timing(monkeypatch):
    """Layers of the same configuration on inputs of the same key are timed once in a process
    (MobileNet's five 512 -> 512 blocks): the second layer takes the first's route without
    timing, its warm timing is not repeated, and it follows the route the first's warm timing
    chose; a layer of another configuration (stride 2) or in another mode is timed itself."""
    plain, other = ("nchw", False), ("cl", False)
    warm = [False]
    counted: list[int] = []

    def timed(route, x, forward, inputs, fused=None):
        counted.append(x.shape[-1])
        fast = route == (plain if warm[0] else other)
        return (0.5 if fast else 2.0) * 1e-3, forward(x)

    monkeypatch.setattr(_autotune, "_timed", timed)
    first, second = (snn.SeparableConv2d(4, 6, 3, padding="same").eval() for _ in range(2))
    x = torch.randn(2, 4, 9, 9)
    with torch.no_grad():
        first(x)
        n_first = len(counted)
        assert n_first > 0
        second(x)
        assert len(counted) == n_first  # not timed again
        assert list(second.__dict__["_sepconv_routes"].values()) == [other]
        warm[0] = True
        for _ in range(_autotune.RETUNE_AT - 1):
            first(x)
        n_warm = len(counted)
        assert n_warm > n_first and list(first.__dict__["_sepconv_routes"].values()) == [plain]
        for _ in range(_autotune.RETUNE_AT):
            second(x)
        assert len(counted) == n_warm  # the warm timing not repeated
        assert list(second.__dict__["_sepconv_routes"].values()) == [plain]
        strided = snn.SeparableConv2d(4, 6, 3, stride=2, padding="same").eval()
        strided(x)
        assert len(counted) > n_warm
        n_strided = len(counted)
        third = snn.SeparableConv2d(4, 6, 3, padding="same")  # training mode
        third(x)
        assert len(counted) > n_strided


@pytest.mark.parametrize("index", range(5))
def test_layers_pickle_and_copy_after_calls(index):
    """``torch.save``, ``pickle`` and ``copy.deepcopy`` of a layer that has run: its per-call
    caches (timed routes, prepared calls, which hold closures) are left out and rebuilt."""
    import copy
    import pickle

    layer = _layers()[index].eval()
    x = torch.randn(2, 6, 11, 10)
    with torch.no_grad():
        y = layer(x)
        for clone in (
            pickle.loads(pickle.dumps(layer)),
            copy.deepcopy(layer),
            torch.load(_saved(layer), weights_only=False),
        ):
            assert not any(key in clone.__dict__ for key in _autotune.CACHES)
            torch.testing.assert_close(clone(x), y, rtol=1e-5, atol=1e-5)


def _saved(module: nn.Module):
    import io

    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("tuned", [False, True])
def test_an_empty_batch(stride, channels_last, training, tuned):
    """A batch of 0 gives an empty output of the right shape and format through every route
    (before, the pointwise step's reshape failed on it), and gradients flow."""
    layer = snn.SeparableConv2d(16, 24, 3, stride=stride, padding="same").train(training)
    x = torch.randn(0, 16, 9, 9)
    if channels_last:
        x = x.contiguous(memory_format=CL)
    side = 9 if stride == 1 else 5
    with snn.use_autotune(tuned):
        for _ in range(_autotune.RETUNE_AT + 1):  # the first timing, the second, then kept
            if training:
                y = layer(x.requires_grad_(True))
                y.sum().backward()
            else:
                with torch.no_grad():
                    y = layer(x)
            assert y.shape == (0, 24, side, side)
    assert (x.grad is not None) == training


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_an_input_of_another_dtype_is_a_clear_error(dtype):
    layer = snn.SeparableConv2d(4, 8, 3, padding="same")
    with pytest.raises(TypeError, match=r"`input` has dtype .* layer's parameters are"):
        layer(torch.randn(1, 4, 8, 8, dtype=dtype))
    if dtype == torch.bfloat16:
        with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast casts: no error
            assert layer(torch.randn(1, 4, 8, 8, dtype=dtype)).dtype == torch.bfloat16


@pytest.mark.parametrize("grad", [False, True])
def test_matrix_product_pointwise_is_timed(monkeypatch, grad):
    """Inference and training alike, a separable layer's two fastest routes are timed again
    beside the same routes with the pointwise step by matrix products."""
    timed: list = []
    original = _autotune._rounds

    def spy(routes, *args, **kwargs):
        timed.extend(routes)
        return original(routes, *args, **kwargs)

    monkeypatch.setattr(_autotune, "_rounds", spy)
    torch.manual_seed(0)
    layer = snn.SeparableConv2d(8, 16, 3, padding="same")
    x = torch.randn(2, 8, 12, 12)
    with torch.set_grad_enabled(grad), snn.use_autotune(True):
        y = layer(x)
    assert any(len(r) > 2 and r[2] == "mm" for r in timed)
    assert not any(r[1] == "fused" and len(r) > 2 for r in timed)
    torch.testing.assert_close(y, _reference(layer, x), rtol=1e-5, atol=1e-5)
