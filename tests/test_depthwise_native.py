"""The native depthwise convolution against torch.nn.functional.conv2d(groups=C)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sepconv.nn import _dispatch
from sepconv.nn import _native_depthwise as native

needs_native = pytest.mark.skipif(
    not native.available(), reason="the native depthwise kernel is not built here"
)
CL = torch.channels_last


def reference(x, weight, bias, stride, pads, dilation):
    top, bottom, left, right = pads
    return F.conv2d(
        F.pad(x, (left, right, top, bottom)), weight, bias, stride, 0, dilation, x.shape[1]
    )


def arrange(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "nchw":
        return x.contiguous()
    if layout == "cl":
        return x.contiguous(memory_format=CL)
    if layout == "rows":  # W unit stride, rows and planes further apart than dense
        big = torch.zeros(x.shape[0], x.shape[1] + 1, x.shape[2] + 2, x.shape[3] + 3, dtype=x.dtype)
        big[:, : x.shape[1], 1 : 1 + x.shape[2], 2 : 2 + x.shape[3]] = x
        return big[:, : x.shape[1], 1 : 1 + x.shape[2], 2 : 2 + x.shape[3]]
    # 'odd': neither W nor C has unit stride (the kernel gets a contiguous copy)
    return x.transpose(2, 3).contiguous().transpose(2, 3)


def close(actual, expected, rel):
    scale = max(float(expected.detach().abs().max()), 1.0)
    torch.testing.assert_close(actual, expected, rtol=rel, atol=rel * scale)


cases = st.fixed_dictionaries(
    {
        "n": st.integers(1, 3),
        "c": st.integers(1, 12),
        "m": st.integers(1, 3),
        "h": st.integers(1, 19),
        "w": st.integers(1, 40),
        "kh": st.integers(1, 5),
        "kw": st.integers(1, 5),
        "sh": st.integers(1, 3),
        "sw": st.integers(1, 3),
        "dh": st.integers(1, 3),
        "dw": st.integers(1, 3),
        "pads": st.tuples(*[st.integers(0, 4)] * 4),
        "layout": st.sampled_from(["nchw", "cl", "rows", "odd"]),
        "dtype": st.sampled_from([torch.float32, torch.float64]),
        "bias": st.booleans(),
    }
)


def build(case, seed=0):
    g = torch.Generator().manual_seed(seed)
    top, bottom, left, right = case["pads"]
    if (
        case["h"] + top + bottom < (case["kh"] - 1) * case["dh"] + 1
        or case["w"] + left + right < (case["kw"] - 1) * case["dw"] + 1
    ):
        return None
    dt = case["dtype"]
    x = torch.randn(case["n"], case["c"], case["h"], case["w"], generator=g, dtype=dt)
    weight = torch.randn(case["c"] * case["m"], 1, case["kh"], case["kw"], generator=g, dtype=dt)
    bias = torch.randn(case["c"] * case["m"], generator=g, dtype=dt) if case["bias"] else None
    return arrange(x, case["layout"]), weight, bias


@needs_native
@pytest.mark.parametrize("avx512", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_whole_small_planes(avx512, dtype):
    """Stride-1 'same' layers on small NCHW planes (the whole-plane masked paths: AVX-512, and
    AVX2 where AVX-512 is absent or off): every plane size up to 17 x 17, odd kernels, depth
    multipliers 1 and 2, with and without a bias; and 3 x 3 at stride 2 on the same planes."""
    g = torch.Generator().manual_seed(3)
    native._use_avx512(avx512)
    try:
        for h in range(1, 18):
            for w in (1, 2, 3, 7, 8, 9, 14, 16, 17):
                for k, m in ((3, 1), (5, 2), (1, 1), (7, 1)):
                    x = torch.randn(2, 3, h, w, generator=g, dtype=dtype)
                    weight = torch.randn(3 * m, 1, k, k, generator=g, dtype=dtype)
                    bias = torch.randn(3 * m, generator=g, dtype=dtype) if k == 3 else None
                    p = k // 2
                    y = native.depthwise_conv2d(x, weight, bias, 1, p, 1)
                    expected = reference(x, weight, bias, (1, 1), (p, p, p, p), (1, 1))
                    close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)
                for pads, m in ((((0, 1), (0, 1)), 1), (((1, 1), (1, 1)), 2), ((1, 0), 1)):
                    # 3 x 3 at stride 2 (rows of at most a vector: the AVX2 narrow path)
                    x = torch.randn(3, 2, h, w, generator=g, dtype=dtype)
                    weight = torch.randn(2 * m, 1, 3, 3, generator=g, dtype=dtype)
                    flat = (*pads[0], *pads[1]) if isinstance(pads[0], tuple) else (1, 1, 0, 0)
                    if h + flat[0] + flat[1] < 3 or w + flat[2] + flat[3] < 3:
                        continue
                    y = native.depthwise_conv2d(x, weight, None, 2, pads, 1)
                    expected = reference(x, weight, None, (2, 2), flat, (1, 1))
                    close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)
    finally:
        native._use_avx512(True)


@needs_native
@pytest.mark.parametrize("avx512", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size, stride", [(7, 1), (14, 1), (3, 1), (14, 2), (28, 2), (9, 2)])
def test_values_beside_a_view_stay_out(size, stride, avx512, dtype):
    """The whole-plane and narrow stride-2 paths read past a plane's edges (plain loads whose
    padding lanes are cleared) wherever that memory lies inside the tensor: channels beside a
    view, holding NaN and infinity, and the tensor's first and last planes (read with masked
    loads) leave the result equal to F.conv2d on a copy of the view."""
    g = torch.Generator().manual_seed(size * 10 + stride)
    full = torch.randn(3, 6, size, size, generator=g, dtype=dtype)
    full[:, 0] = float("nan")
    full[:, 5] = float("inf")
    full[1, 2, 0, 0] = float("-inf")  # inside the view: spreads to its own neighbours only
    weight = torch.randn(4, 1, 3, 3, generator=g, dtype=dtype)
    bias = torch.randn(4, generator=g, dtype=dtype)
    pads = 1 if stride == 1 else ((0, 1), (0, 1))
    flat = (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1)
    native._use_avx512(avx512)
    try:
        for x in (full[:, 1:5], full.reshape(18, 1, size, size)[:4].reshape(1, 4, size, size)):
            y = native.depthwise_conv2d(x, weight, bias, stride, pads)
            expected = reference(x.contiguous(), weight, bias, (stride, stride), flat, (1, 1))
            torch.testing.assert_close(y, expected, equal_nan=True)
        x = full[:, 1:5].contiguous()  # its first and last planes at the tensor's ends
        y = native.depthwise_conv2d(x, weight, bias, stride, pads)
        torch.testing.assert_close(y, reference(x, weight, bias, (stride, stride), flat, (1, 1)))
    finally:
        native._use_avx512(True)


@needs_native
@pytest.mark.parametrize("avx512", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_whole_planes_with_more_or_fewer_output_rows(avx512, dtype):
    """Output rows as wide as the input's but more or fewer of them (padding above and below
    that differs from the kernel's reach, dilation): the whole-plane paths read the input
    plane, not as many elements as the output has, so NaN in the channels beside the view and
    its own rows past the end never reach the result."""
    g = torch.Generator().manual_seed(5)
    for h in (1, 2, 3, 5, 7, 14):
        for w in (1, 2, 3, 7, 9):
            for kh, dh, top, bottom in (
                (3, 1, 0, 0),
                (3, 1, 2, 2),
                (2, 1, 0, 1),
                (2, 2, 1, 2),
                (1, 1, 0, 3),
                (3, 2, 0, 1),
            ):
                if h + top + bottom < (kh - 1) * dh + 1:
                    continue
                full = torch.randn(2, 4, h, w, generator=g, dtype=dtype)
                full[:, 0] = float("nan")
                full[:, 3] = float("nan")
                x = full[:, 1:3]
                weight = torch.randn(2, 1, kh, 3, generator=g, dtype=dtype)
                pads = ((top, bottom), (1, 1))
                y = native.depthwise_conv2d(x, weight, None, 1, pads, (dh, 1))
                if y is None:
                    continue
                expected = reference(
                    x.contiguous(), weight, None, (1, 1), (top, bottom, 1, 1), (dh, 1)
                )
                close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)


@needs_native
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases, avx512=st.booleans())
def test_forward_matches_conv2d(case, avx512):
    """Every forward path: the AVX-512 rows where the processor has them, and the portable
    row-ring, whole-plane and channels-last paths."""
    built = build(case)
    if built is None:
        return
    x, weight, bias = built
    before = x.clone()
    stride, dilation = (case["sh"], case["sw"]), (case["dh"], case["dw"])
    pads = case["pads"]
    native._use_avx512(avx512)
    try:
        y = native.depthwise_conv2d(x, weight, bias, stride, (pads[:2], pads[2:]), dilation)
    finally:
        native._use_avx512(True)
    expected = reference(x, weight, bias, stride, pads, dilation)
    assert y is not None and y.shape == expected.shape and y.dtype == x.dtype
    close(y, expected, 1e-5 if x.dtype == torch.float32 else 1e-12)
    assert torch.equal(x, before)
    if case["layout"] == "cl" and x.shape[1] > 1 and x.shape[2] * x.shape[3] > 1:
        assert y.is_contiguous(memory_format=CL)
    elif case["layout"] in ("nchw", "rows"):
        assert y.is_contiguous()


@needs_native
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases, backward=st.sampled_from(["native", "torch"]))
def test_gradients_match_conv2d(case, backward):
    built = build({**case, "dtype": torch.float64})
    if built is None:
        return
    x, weight, bias = built
    stride, dilation, pads = (case["sh"], case["sw"]), (case["dh"], case["dw"]), case["pads"]
    leaves = [t.detach().clone().requires_grad_(True) for t in (x, weight)]
    ref_leaves = [t.detach().clone().requires_grad_(True) for t in (x, weight)]
    if bias is not None:
        leaves.append(bias.clone().requires_grad_(True))
        ref_leaves.append(bias.clone().requires_grad_(True))
    y = native.depthwise_conv2d(
        leaves[0],
        leaves[1],
        leaves[2] if bias is not None else None,
        stride,
        (pads[:2], pads[2:]),
        dilation,
        backward=backward,
    )
    expected = reference(
        *ref_leaves[:2], ref_leaves[2] if bias is not None else None, stride, pads, dilation
    )
    grad = torch.randn(
        expected.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    if case["layout"] == "cl":
        grad = grad.contiguous(memory_format=CL)
    y.backward(grad)
    expected.backward(grad)
    for ours, theirs in zip(leaves, ref_leaves):
        close(ours.grad, theirs.grad, 1e-12)


three_by_three = st.fixed_dictionaries(
    {
        "n": st.integers(1, 2),
        "c": st.integers(1, 20),
        "h": st.integers(3, 21),
        "w": st.integers(3, 70),
        "stride": st.sampled_from([(1, 1), (2, 2), (1, 2), (2, 1)]),
        "dilation": st.sampled_from([(1, 1), (2, 2), (1, 3)]),
        "pads": st.tuples(*[st.integers(0, 3)] * 4),
        "layout": st.sampled_from(["nchw", "cl", "rows"]),
        "dtype": st.sampled_from([torch.float32, torch.float64]),
    }
)


@needs_native
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=three_by_three, avx512=st.booleans())
def test_three_by_three_gradients(case, avx512):
    """The 3 x 3 gradient paths (depth multiplier 1): the input gradient at unit stride as a
    forward correlation with the turned kernel, the weight gradient with its taps in
    registers, the stride-2 interleaved input gradient; AVX-512 and portable code."""
    top, bottom, left, right = case["pads"]
    (sh, sw), (dh, dw) = case["stride"], case["dilation"]
    if case["h"] + top + bottom < 2 * dh + 1 or case["w"] + left + right < 2 * dw + 1:
        return
    dt = case["dtype"]
    g = torch.Generator().manual_seed(7)
    x = arrange(
        torch.randn(case["n"], case["c"], case["h"], case["w"], generator=g, dtype=dt),
        case["layout"],
    )
    weight = torch.randn(case["c"], 1, 3, 3, generator=g, dtype=dt)
    ours = [x.detach().clone().requires_grad_(True), weight.clone().requires_grad_(True)]
    theirs = [x.detach().clone().requires_grad_(True), weight.clone().requires_grad_(True)]
    native._use_avx512(avx512)
    try:
        y = native.depthwise_conv2d(*ours, None, (sh, sw), ((top, bottom), (left, right)), (dh, dw))
        expected = reference(*theirs, None, (sh, sw), case["pads"], (dh, dw))
        grad = torch.randn(expected.shape, generator=g, dtype=dt)
        if case["layout"] == "cl":
            grad = grad.contiguous(memory_format=CL)
        y.backward(grad)
    finally:
        native._use_avx512(True)
    expected.backward(grad)
    rel = 1e-5 if dt == torch.float32 else 1e-12
    close(ours[0].grad, theirs[0].grad, rel)
    close(ours[1].grad, theirs[1].grad, rel)


@needs_native
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize(
    "settings_", [((1, 1), ((1, 1), (1, 1)), (1, 1), 1), ((2, 1), ((0, 1), (2, 0)), (1, 2), 2)]
)
def test_gradcheck_and_second_derivative(layout, settings_):
    stride, padding, dilation, multiplier = settings_
    g = torch.Generator().manual_seed(3)
    x = arrange(torch.randn(1, 2, 5, 4, dtype=torch.float64, generator=g), layout)
    x.requires_grad_(True)
    weight = torch.randn(
        2 * multiplier, 1, 3, 2, dtype=torch.float64, generator=g, requires_grad=True
    )
    bias = torch.randn(2 * multiplier, dtype=torch.float64, generator=g, requires_grad=True)

    def fn(x, weight, bias):
        return native.depthwise_conv2d(x, weight, bias, stride, padding, dilation)

    assert torch.autograd.gradcheck(fn, (x, weight, bias))
    assert torch.autograd.gradgradcheck(fn, (x, weight, bias))


@needs_native
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_conv1d(layout, dtype):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 5, 41, dtype=dtype, generator=g)
    if layout == "cl":
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    weight = torch.randn(10, 1, 4, dtype=dtype, generator=g)
    y = native.depthwise_conv1d(x, weight, None, 2, (1, 2), 2)
    expected = F.conv1d(F.pad(x, (1, 2)), weight, None, 2, 0, 2, 5)
    close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)


@needs_native
@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_result_does_not_depend_on_threads(layout):
    g = torch.Generator().manual_seed(5)
    x = arrange(torch.randn(4, 24, 45, 47, generator=g), layout).requires_grad_(True)
    weight = torch.randn(24, 1, 3, 3, generator=g, requires_grad=True)
    grad = arrange(torch.randn(4, 24, 23, 24, generator=g), layout)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            x.grad = weight.grad = None
            y = native.depthwise_conv2d(x, weight, None, 2, 1)
            y.backward(grad)
            results.append((y.detach().clone(), x.grad.clone(), weight.grad.clone()))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


@needs_native
@pytest.mark.parametrize("layout", ["nchw", "cl"])
def test_pool_spin_changes_no_result(layout):
    """With the pool's threads spinning between calls (and the caller spinning for them), the
    results of consecutive calls at 1, 2 and 3 threads equal those of the sleeping pool, and
    calls from several Python threads at once stay right."""
    from concurrent.futures import ThreadPoolExecutor

    g = torch.Generator().manual_seed(9)
    x = arrange(torch.randn(2, 40, 30, 33, generator=g), layout)
    weight = torch.randn(80, 1, 3, 3, generator=g)
    threads = torch.get_num_threads()
    before = native._pool_spin()
    try:
        native._pool_spin(0)
        torch.set_num_threads(2)
        expected = native.depthwise_conv2d(x, weight, None, 1, 1)
        close(expected, F.conv2d(x, weight, None, 1, 1, 1, 40), 1e-5)
        assert native._pool_spin(200.0) == 0
        assert native._pool_spin() == 200.0
        for n in (1, 2, 3, 2):
            torch.set_num_threads(n)
            for _ in range(3):
                assert torch.equal(native.depthwise_conv2d(x, weight, None, 1, 1), expected)
        with ThreadPoolExecutor(3) as pool:
            results = list(
                pool.map(lambda _: native.depthwise_conv2d(x, weight, None, 1, 1), range(6))
            )
        for y in results:
            assert torch.equal(y, expected)
    finally:
        native._pool_spin(before)
        torch.set_num_threads(threads)


@needs_native
@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "10", 1e12])
def test_pool_spin_checks_its_argument(bad):
    before = native._pool_spin()
    with pytest.raises(ValueError, match="microseconds"):
        native._pool_spin(bad)
    assert native._pool_spin() == before


@needs_native
def test_not_applicable_returns_none():
    x, w = torch.randn(1, 2, 5, 5), torch.randn(2, 1, 3, 3)
    assert native.depthwise_conv2d(x.double(), w) is None  # mixed dtypes
    assert native.depthwise_conv2d(x.to(torch.int32), w.to(torch.int32)) is None
    assert native.depthwise_conv2d(x[0], w) is None  # unbatched
    assert native.depthwise_conv2d(x, torch.randn(3, 1, 3, 3)) is None  # 3 % 2 channels
    assert native.depthwise_conv2d(x, torch.randn(2, 1, 7, 7)) is None  # larger than input
    assert native.depthwise_conv2d(x, w, torch.randn(3)) is None  # bias of the wrong size
    with pytest.raises(TypeError, match="stride"):
        native.depthwise_conv2d(x, w, None, "2")
    with pytest.raises(TypeError, match="padding"):
        native.depthwise_conv2d(x, w, None, 1, "same")
    with pytest.raises(ValueError, match="backward"):
        native.depthwise_conv2d(x, w, None, 1, 1, backward="fast")


def test_disabled_by_environment():
    code = (
        "from sepconv.nn import _native_depthwise as n, _dispatch as d; import torch;"
        "x = torch.randn(1, 2, 9, 9); w = torch.randn(2, 1, 3, 3);"
        "print(n.available(), n.depthwise_conv2d(x, w),"
        " d.native_depthwise(x, w, None, 1, 1, 1))"
    )
    env = {**os.environ, "SEPCONV_NATIVE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "None", "None"]


def test_dispatch_falls_back_without_a_model(monkeypatch):
    monkeypatch.setattr(_dispatch, "_MODEL", {"models": {}})
    x, w = torch.randn(1, 2, 9, 9), torch.randn(2, 1, 3, 3)
    assert _dispatch.should_use_native(x, w, 1, 1, 1) is False
    assert _dispatch.native_depthwise(x, w, None, 1, 1, 1) is None


def test_dispatch_model_decides(monkeypatch):
    """The decision compares the fitted times: a model where the native kernel costs nothing
    picks it (where it applies), one where it costs much does not."""
    x, w = torch.randn(2, 4, 16, 16), torch.randn(4, 1, 3, 3)
    features = len(_dispatch.FEATURES)
    cheap = {
        "native": [0.0] * features,
        "torch": [1.0] * features,
        "torch_converted": [1.0] * features,
        "native_backward": [0.0] * features,
        "torch_backward": [1.0] * features,
    }
    dear = {
        "native": [1.0] * features,
        "torch": [0.0] * features,
        "torch_converted": [0.0] * features,
        "native_backward": [1.0] * features,
        "torch_backward": [0.0] * features,
    }
    for model, expected in ((cheap, native.available()), (dear, False)):
        monkeypatch.setattr(
            _dispatch,
            "_MODEL",
            {"models": {key: model for key in ("nchw/s1", "nchw/s2", "cl/s1", "cl/s2")}},
        )
        assert _dispatch.should_use_native(x, w, 1, 1, 1) is expected
        y = _dispatch.native_depthwise(x, w, None, 1, 1, 1)
        assert (y is not None) is expected
        if y is not None:
            close(y, F.conv2d(x, w, None, 1, 1, 1, 4), 1e-5)


def test_packaged_model_is_valid():
    model = _dispatch.load_model()
    assert set(model["features"]) == set(_dispatch.FEATURES)
    runs = [(_dispatch._kind_of(c), _dispatch._threads_of(c)) for c in model["calibrations"]]
    assert len(set(runs)) == len(runs)  # one calibration per kind of processor and thread count
    for calibration in model["calibrations"]:
        assert calibration["models"]
        for entry in calibration["models"].values():
            assert set(entry) == {
                "native",
                "torch",
                "torch_converted",
                "native_backward",
                "torch_backward",
            }
            assert all(len(c) == len(_dispatch.FEATURES) and min(c) >= 0 for c in entry.values())
        assert calibration["machine"]["cpu"]
        assert calibration["machine"]["kind"]


def test_calibration_nearest_to_the_thread_count(monkeypatch):
    one = {"models": {"nchw/s1": {}}, "machine": {"threads": 1}}
    four = {"models": {"nchw/s1": {}}, "machine": {"threads": 4}}
    monkeypatch.setattr(_dispatch, "_MODEL", {"calibrations": [one, four]})
    for threads, expected in ((1, one), (2, one), (3, four), (8, four)):
        monkeypatch.setattr(torch, "get_num_threads", lambda t=threads: t)
        assert _dispatch._model() is expected


def test_calibration_of_this_kind_of_processor(monkeypatch):
    """A calibration measured on another kind of processor (say, with AVX-512 where this one
    has AVX2 only) is used only where none of this kind exists."""
    kind = _dispatch.machine_kind()
    here = {"models": {"nchw/s1": {}}, "machine": {"threads": 4, "kind": kind}}
    other = {"models": {"nchw/s1": {}}, "machine": {"threads": 2, "kind": "other/isa"}}
    unknown = {"models": {"nchw/s1": {}}, "machine": {"threads": 1}}
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(_dispatch, "_MODEL", {"calibrations": [other, here, unknown]})
    assert _dispatch._model() is here
    monkeypatch.setattr(_dispatch, "_MODEL", {"calibrations": [other, unknown]})
    assert _dispatch._model() is other


def test_machine_kind_names_the_architecture():
    kind = _dispatch.machine_kind()
    assert kind == _dispatch.machine_kind()
    arch, _, isa = kind.partition("/")
    assert arch and isa in ("", "avx2", "avx512")


def test_missing_or_malformed_model_file_gives_no_model(tmp_path):
    for text in ("", "{", "[]", '{"calibrations": 3}', '{"models": 3}'):
        path = tmp_path / "model.json"
        path.write_text(text)
        assert _dispatch.load_model(str(path)) == {"calibrations": [{"models": {}}]}


@needs_native
def test_concurrent_calls_from_python_threads():
    """Calls from several Python threads at once (one uses the pool, the others run on their
    own thread) give the same results as one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    g = torch.Generator().manual_seed(6)
    xs = [torch.randn(2, 16, 40, 40, generator=g) for _ in range(6)]
    weight = torch.randn(16, 1, 3, 3, generator=g)
    expected = [F.conv2d(x, weight, None, 1, 1, 1, 16) for x in xs]
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda x: native.depthwise_conv2d(x, weight, None, 1, 1), xs))
    for y, e in zip(results, expected):
        close(y, e, 1e-5)


# --------------------------------------------------------------------------------------------
# the layers and functions through the native kernel (sepconv.nn._execution)
# --------------------------------------------------------------------------------------------
@pytest.fixture
def native_calls(monkeypatch):
    """The layouts of the inputs the native kernel ran on ('nchw' / 'cl'), in call order."""
    from sepconv.nn import _execution

    calls: list[str | None] = []
    original = native.depthwise_conv2d

    def spy(x, *args, **kwargs):
        y = original(x, *args, **kwargs)
        if y is not None:
            calls.append(native._layout(x))
        return y

    monkeypatch.setattr(native, "depthwise_conv2d", spy)
    assert _execution  # the door imports the module lazily; the spy is on the module
    return calls


def _composition(x, layer, n):
    """The plain composition a user would write with ``F.pad`` and ``F.convNd``."""
    from sepconv.padding import flat_pads

    conv = {1: F.conv1d, 2: F.conv2d}[n]
    depthwise = getattr(layer, "depthwise", layer)
    pads = flat_pads(depthwise._padding.pads(tuple(x.shape[2:])))
    y = conv(
        F.pad(x, pads),
        depthwise.weight,
        depthwise.bias,
        depthwise.stride,
        0,
        depthwise.dilation,
        x.shape[1],
    )
    if hasattr(layer, "pointwise"):
        y = conv(y, layer.pointwise.weight, layer.pointwise.bias)
    return y


layer_cases = st.fixed_dictionaries(
    {
        "n": st.sampled_from([1, 2]),
        "kind": st.sampled_from(["depthwise", "separable"]),
        "batch": st.integers(1, 3),
        "c": st.integers(1, 9),
        "m": st.integers(1, 2),
        "size": st.integers(3, 17),
        "k": st.integers(1, 5),
        "stride": st.integers(1, 3),
        "dilation": st.integers(1, 2),
        "padding": st.sampled_from(["same", "valid", 1]),
        "channels_last": st.booleans(),
        "dtype": st.sampled_from([torch.float32, torch.float64]),
        "native": st.sampled_from([True, False, None]),
        "grad": st.booleans(),
    }
)


@needs_native
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=layer_cases)
def test_layers_equal_the_composition_with_the_native_kernel_forced(case, native_calls):
    """DepthwiseConvNd and SeparableConvNd (1-D, 2-D) equal the F.pad + F.convNd composition
    with the native kernel forced on, off and left to the dispatch; forced on, it runs on the
    caller's memory format (no conversion), which the result keeps."""
    from sepconv import nn as snn

    native_calls.clear()  # the fixture lives across the examples
    n, k, d = case["n"], case["k"], case["dilation"]
    if case["size"] + (2 if case["padding"] == 1 else 0) < (k - 1) * d + 1:
        return
    torch.manual_seed(0)
    common = dict(
        stride=case["stride"],
        padding=case["padding"],
        dilation=d,
        depth_multiplier=case["m"],
        dtype=case["dtype"],
    )
    if case["kind"] == "depthwise":
        cls = snn.DepthwiseConv1d if n == 1 else snn.DepthwiseConv2d
        layer = cls(case["c"], k, bias=True, **common)
    else:
        cls = snn.SeparableConv1d if n == 1 else snn.SeparableConv2d
        layer = cls(case["c"], 5, k, depthwise_bias=True, **common)
    shape = (case["batch"], case["c"], *([case["size"]] * n))
    x = torch.randn(shape, dtype=case["dtype"])
    if case["channels_last"]:
        x = (
            x.contiguous(memory_format=CL)
            if n == 2
            else x.transpose(1, 2).contiguous().transpose(1, 2)
        )
    x.requires_grad_(case["grad"])
    before = x.detach().clone()
    with torch.set_grad_enabled(case["grad"]), snn.use_native_depthwise(case["native"]):
        y = layer(x)
    expected = _composition(x.detach(), layer, n)
    close(y.detach(), expected.detach(), 1e-5 if case["dtype"] == torch.float32 else 1e-12)
    assert torch.equal(x.detach(), before)
    if case["native"] is True:
        caller = "cl" if case["channels_last"] and case["c"] > 1 else "nchw"
        assert native_calls and native_calls[0] in (caller, "nchw" if case["c"] == 1 else caller)
    if case["native"] is False:
        assert native_calls == []
    # 1-D has no channels-last memory format in PyTorch: its convolutions (and so a float64
    # or separable layer) return (N, C, L) contiguous; the native depthwise step alone keeps a
    # channel-minor input so. With one channel or one pixel both formats hold.
    if (
        case["c"] > 1
        and y.shape[1] > 1
        and math.prod(y.shape[2:]) > 1
        and (n == 2 or (native_calls and case["kind"] == "depthwise"))
    ):
        caller_format = (
            y.transpose(1, 2).is_contiguous() if n == 1 else y.is_contiguous(memory_format=CL)
        )
        assert caller_format == case["channels_last"]
        assert y.is_contiguous() != case["channels_last"]
    if case["grad"]:
        y.sum().backward()
        x2 = x.detach().clone().requires_grad_(True)
        _composition(x2, layer, n).sum().backward()
        close(x.grad, x2.grad, 1e-5 if case["dtype"] == torch.float32 else 1e-12)


@needs_native
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("n", [1, 2])
def test_gradcheck_through_the_layer(channels_last, n, native_calls):
    """gradcheck (input, depthwise and pointwise weights and biases) through a separable layer
    whose depthwise step is the native kernel: stride 2 'same' on an even size (asymmetric
    padding)."""
    from sepconv import nn as snn

    torch.manual_seed(1)
    cls = snn.SeparableConv1d if n == 1 else snn.SeparableConv2d
    layer = cls(3, 4, 3, 2, padding="same", depth_multiplier=2, depthwise_bias=True).double()
    x = torch.randn(2, 3, *([6] * n), dtype=torch.float64)
    if channels_last:
        x = (
            x.contiguous(memory_format=CL)
            if n == 2
            else x.transpose(1, 2).contiguous().transpose(1, 2)
        )
    x.requires_grad_(True)
    params = tuple(layer.parameters())

    def fn(inp, *weights):
        names = [name for name, _ in layer.named_parameters()]
        return torch.func.functional_call(layer, dict(zip(names, weights)), (inp,))

    with snn.use_native_depthwise(True):
        assert torch.autograd.gradcheck(fn, (x, *params))
    assert native_calls and set(native_calls) == {"cl" if channels_last else "nchw"}


@needs_native
def test_dispatch_choice_reaches_the_layer(monkeypatch, native_calls):
    """Left to the dispatch's model (routes not timed), a layer runs the native kernel exactly
    where the cost model says it is faster, on an NCHW input as given (not converted to
    channels-last)."""
    from sepconv.nn import SeparableConv2d, use_autotune

    features = len(_dispatch.FEATURES)
    layer = SeparableConv2d(8, 16, 3, 2, padding="same")
    x = torch.randn(2, 8, 12, 12)
    for native_cost, expected in ((0.0, ["nchw"]), (1.0, [])):
        model = {
            "native": [native_cost] * features,
            "torch": [0.5] * features,
            "torch_converted": [0.5] * features,
            "native_backward": [1.0] * features,
            "torch_backward": [0.0] * features,
        }
        monkeypatch.setattr(
            _dispatch,
            "_MODEL",
            {"models": {key: model for key in ("nchw/s1", "nchw/s2", "cl/s1", "cl/s2")}},
        )
        native_calls.clear()
        with torch.no_grad(), use_autotune(False):
            y = layer(x)
        assert native_calls == expected
        close(y, _composition(x, layer, 2), 1e-5)
        assert y.is_contiguous()


@needs_native
def test_graphs_counters_and_other_padding_run_pytorch(native_calls):
    """Recording a graph, the plain composition, a FLOP counter (a dispatch mode), reflect
    padding and float16 keep PyTorch's operators even where the native kernel is forced."""
    from torch.utils.flop_counter import FlopCounterMode

    from sepconv.nn import DepthwiseConv2d, SeparableConv2d, use_native_depthwise
    from sepconv.nn.functional import plain_composition

    layer = SeparableConv2d(4, 6, 3, 2, padding="same", bias=False).eval()
    x = torch.randn(1, 4, 10, 10)
    with use_native_depthwise(True), torch.no_grad():
        with plain_composition():
            layer(x)
        with FlopCounterMode(display=False) as counter:
            layer(x)
        assert counter.get_total_flops() > 0
        torch.jit.trace(layer, x, check_trace=False)  # the check reruns it eagerly
        DepthwiseConv2d(4, 3, padding="same", padding_mode="reflect")(x)
        DepthwiseConv2d(4, 3, padding="same").half()(x.half())
        assert native_calls == []
        layer(x)
    assert native_calls == ["nchw"]


def test_use_native_depthwise_checks_its_argument():
    from sepconv.nn import use_native_depthwise

    with pytest.raises(TypeError, match="enabled.*'yes'"):
        with use_native_depthwise("yes"):
            pass


def test_layers_fall_back_when_disabled_by_environment():
    code = (
        "import torch, torch.nn.functional as F; from sepconv.nn import SeparableConv2d,"
        " use_native_depthwise; torch.manual_seed(0); l = SeparableConv2d(4, 6, 3, 2,"
        " padding='same'); x = torch.randn(2, 4, 9, 9)\n"
        "with use_native_depthwise(True): y = l(x)\n"
        "e = F.conv2d(F.conv2d(F.pad(x, (1, 1, 1, 1)), l.depthwise.weight, None, 2, 0, 1,"
        " 4), l.pointwise.weight, l.pointwise.bias)\n"
        "print(bool(torch.allclose(y, e, atol=1e-6)))"
    )
    env = {**os.environ, "SEPCONV_NATIVE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True"]


def test_dispatch_in_training_compares_forward_and_backward(monkeypatch):
    """With gradients wanted, the native kernel is chosen only where its forward and the
    faster gradient kernel beat PyTorch's forward and backward: a forward saving that the
    backward eats is not taken."""
    x, w = torch.randn(2, 4, 16, 16), torch.randn(4, 1, 3, 3)
    features = len(_dispatch.FEATURES)

    def model(native_s, torch_s, native_backward_s, torch_backward_s):
        entry = {
            "native": [native_s] * features,
            "torch": [torch_s] * features,
            "torch_converted": [torch_s] * features,
            "native_backward": [native_backward_s] * features,
            "torch_backward": [torch_backward_s] * features,
        }
        return {"models": {key: entry for key in ("nchw/s1", "nchw/s2", "cl/s1", "cl/s2")}}

    # forward 1 against 2; steps: native min(10, 10) = 10 against PyTorch 10 - 1 + 2 = 11
    monkeypatch.setattr(_dispatch, "_MODEL", model(1.0, 2.0, 10.0, 10.0))
    assert _dispatch.should_use_native(x, w, 1, 1, 1) is native.available()
    assert _dispatch.should_use_native(x, w, 1, 1, 1, training=True) is False
    # native gradients cheap: 4 against 11
    monkeypatch.setattr(_dispatch, "_MODEL", model(1.0, 2.0, 4.0, 10.0))
    assert _dispatch.should_use_native(x, w, 1, 1, 1, training=True) is native.available()


@needs_native
@pytest.mark.parametrize("size", [(7, 7), (14, 14), (5, 3), (8, 70), (56, 56), (9, 112)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("layout", ["nchw", "cl"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_same_padding_paths_at_mobilenet_like_shapes(size, stride, layout, dtype):
    """Keras 'same' 3x3 layers at the sizes that pick each forward path (whole small planes,
    eight-row blocks, stride-2 blocks, channels-last blocks, the portable ones)."""
    g = torch.Generator().manual_seed(0)
    x = arrange(torch.randn(2, 19, *size, generator=g, dtype=dtype), layout)
    weight = torch.randn(19, 1, 3, 3, generator=g, dtype=dtype)
    bias = torch.randn(19, generator=g, dtype=dtype)
    pads = []
    for n in size:
        total = max((-(-n // stride) - 1) * stride + 3 - n, 0)
        pads += [total // 2, total - total // 2]
    for avx512 in (True, False):
        native._use_avx512(avx512)
        try:
            y = native.depthwise_conv2d(x, weight, bias, stride, (pads[:2], pads[2:]))
        finally:
            native._use_avx512(True)
        expected = reference(x, weight, bias, (stride, stride), tuple(pads), (1, 1))
        close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("avx512", [True, False])
def test_three_by_three_rows_read_in_place(avx512, dtype):
    """3 x 3 at unit stride on NCHW planes above 256 outputs with rows wider than a vector,
    'same' or 'valid' across (the rows read in place, both ends' taps shifted in by a lane,
    a last vector overlapping the one before): every width from 5 to 40 and a few wide ones,
    odd and even heights (a last output row without a pair), padding above and below of 0
    to 3 rows (rows wholly in the padding), depth multipliers 1 to 3; equal to PyTorch."""
    g = torch.Generator().manual_seed(5)
    native._use_avx512(avx512)
    try:
        for w in [*range(5, 41), 56, 57, 63, 112]:
            h = max(3, 300 // w + w % 3)
            for pl, pt, m in ((1, 1, 1), (0, 0, 2), (1, 3, 1), (0, 2, 3), (1, 0, 1)):
                x = torch.randn(2, 3, h, w, generator=g, dtype=dtype)
                weight = torch.randn(3 * m, 1, 3, 3, generator=g, dtype=dtype)
                bias = torch.randn(3 * m, generator=g, dtype=dtype) if m != 2 else None
                pads = ((pt, pt), (pl, pl))
                y = native.depthwise_conv2d(x, weight, bias, 1, pads, 1)
                expected = reference(x, weight, bias, (1, 1), (pt, pt, pl, pl), (1, 1))
                close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)
    finally:
        native._use_avx512(True)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_three_by_three_weight_gradient_rows_read_in_place(dtype):
    """The unit-stride 3 x 3 weight gradient of NCHW rows of 4 vectors and more, 'same' or
    'valid' across (every column in vectors, the borders' taps shifted in by a lane, a last
    vector overlapping the one before with the columns already counted left out; the three
    kernel rows of an output row at once, a row in the padding read elsewhere and its sums
    put back): widths 32 to 72 and 112, padding above and below of 0 to 3 rows (output rows
    with one, two or all three kernel rows in the padding), heights 1 to 8; both gradients
    equal PyTorch's."""
    g = torch.Generator().manual_seed(6)
    for w in [*range(32, 73), 112]:
        for pl, pt, pb in ((1, 1, 1), (0, 0, 0), (1, 2, 2), (0, 1, 1), (1, 3, 0), (0, 0, 3)):
            h = 1 + w % 8 if pt + pb >= 2 else 5 + w % 4
            x = torch.randn(2, 3, h, w, generator=g, dtype=dtype, requires_grad=True)
            weight = torch.randn(3, 1, 3, 3, generator=g, dtype=dtype, requires_grad=True)
            y = native.depthwise_conv2d(x, weight, None, 1, ((pt, pb), (pl, pl)), 1)
            gy = torch.randn(y.shape, generator=g, dtype=dtype)
            got = torch.autograd.grad(y, (x, weight), gy)
            expected = torch.autograd.grad(
                reference(x, weight, None, (1, 1), (pt, pb, pl, pl), (1, 1)), (x, weight), gy
            )
            for a, b in zip(got, expected):
                close(a, b, 1e-5 if dtype == torch.float32 else 1e-12)


@needs_native
@pytest.mark.parametrize("shape", [(1, 5, 57, 57), (2, 64, 183, 181)])
def test_stride_two_in_and_out_of_cache(shape):
    """3 x 3 at stride 2, NCHW: two output rows at a time in cache (a 65 KB input), one at a
    time beyond 16 MB (a 17 MB input); odd output heights; both equal PyTorch."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(*shape, generator=g)
    weight = torch.randn(shape[1], 1, 3, 3, generator=g)
    bias = torch.randn(shape[1], generator=g)
    y = native.depthwise_conv2d(x, weight, bias, 2, ((0, 1), (0, 1)))
    close(y, reference(x, weight, bias, (2, 2), (0, 1, 0, 1), (1, 1)), 1e-5)


@needs_native
@pytest.mark.parametrize("batch", [1, 3])
def test_wide_rows_in_and_out_of_cache(batch):
    """Rows wider than 64 at unit stride: the eight-row blocks while the input fits in cache
    (batch 1, 2.4 MB), the row ring beyond (batch 3, 7.2 MB); both equal PyTorch."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 24, 112, 112, generator=g, dtype=torch.float64)
    weight = torch.randn(24, 1, 3, 3, generator=g, dtype=torch.float64)
    y = native.depthwise_conv2d(x, weight, None, 1, ((1, 1), (1, 1)))
    close(y, reference(x, weight, None, (1, 1), (1, 1, 1, 1), (1, 1)), 1e-12)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rows_beyond_the_cache_streamed_and_delayed(dtype):
    """3 x 3 unit-stride NCHW rows of whole cache lines with an output larger than the
    last-level cache: stored past the caches, and, where an output row lies a multiple of
    4 kB (or within two vectors of one) from an input row, each vector stored after the next
    one's loads. Outputs placed at chosen distances from the input (0, 32 and 4064 bytes: an
    output not on a cache line is not streamed), odd and even heights, 'same' and 'valid'
    across; each equal to PyTorch and all bit for bit equal to each other."""
    limit = native._streaming_bytes()
    if limit < 0:
        pytest.skip("no streaming stores in this build")
    size = torch.finfo(dtype).bits // 8
    g = torch.Generator().manual_seed(8)
    weight = torch.randn(6, 1, 3, 3, generator=g, dtype=dtype)
    bias = torch.randn(6, generator=g, dtype=dtype)
    for h, pl in ((128, 1), (127, 0)):
        w = 128 + 2 * (1 - pl)  # 128 outputs a row: 512 or 1024 bytes, whole lines
        n = limit // (6 * h * 128 * size) + 1
        if n * 6 * h * w * size > 1 << 30:
            pytest.skip("the last-level cache is too large for this test")
        x = torch.randn(n, 6, h, w, generator=g, dtype=dtype)
        expected = reference(x, weight, bias, (1, 1), (1, 1, pl, pl), (1, 1))
        shape, params, fn = native._plan(x, weight, (1, 1), (1, 1, pl, pl), (1, 1), "nchw")
        count = math.prod(shape)
        assert count * size > limit
        store = torch.empty(count + 8192 // size, dtype=dtype)
        first = None
        for distance in (0, 32, 4064):
            start = ((x.data_ptr() - store.data_ptr()) % 4096 + distance) % 4096 // size
            y = store[start : start + count].view(shape)
            y.fill_(float("nan"))
            code = fn(
                native._address(params),
                x.data_ptr(),
                weight.data_ptr(),
                bias.data_ptr(),
                y.data_ptr(),
            )
            assert code == 0
            close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)
            if first is None:
                first = y.clone()
            else:
                assert torch.equal(y, first)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_channels_last_pixels_beyond_the_cache_streamed(dtype):
    """Channels-last pixels of 32 channels (whole cache lines) eight at a time with an output
    larger than the last-level cache: stored past the caches where the output starts on a
    cache line, through the cache where it does not (32 bytes further); 'same' and stride 2;
    both equal to PyTorch and to each other bit for bit."""
    limit = native._streaming_bytes()
    if limit < 0:
        pytest.skip("no streaming stores in this build")
    size = torch.finfo(dtype).bits // 8
    g = torch.Generator().manual_seed(9)
    c = 32
    weight = torch.randn(c, 1, 3, 3, generator=g, dtype=dtype)
    bias = torch.randn(c, generator=g, dtype=dtype)
    native._use_avx512(False)
    try:
        for stride, pads in ((1, (1, 1, 1, 1)), (2, (0, 1, 0, 1))):
            h = w = 64 * stride + 3
            out = (h + pads[0] + pads[1] - 3) // stride + 1
            n = limit // (c * out * out * size) + 1
            if n * c * h * w * size > 1 << 30:
                pytest.skip("the last-level cache is too large for this test")
            x = torch.randn(n, c, h, w, generator=g, dtype=dtype).contiguous(memory_format=CL)
            expected = reference(x, weight, bias, (stride, stride), pads, (1, 1))
            shape, params, fn = native._plan(x, weight, (stride,) * 2, pads, (1, 1), "cl")
            count = math.prod(shape)
            store = torch.empty(count + 64, dtype=dtype)
            first = None
            for extra in (0, 32):
                start = (-store.data_ptr() % 64 + extra) // size
                y = store[start : start + count].view(n, out, out, c).permute(0, 3, 1, 2)
                assert y.is_contiguous(memory_format=CL)
                y.fill_(float("nan"))
                args = (x.data_ptr(), weight.data_ptr(), bias.data_ptr(), y.data_ptr())
                assert fn(native._address(params), *args) == 0
                close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)
                if first is None:
                    first = y.clone()
                else:
                    assert torch.equal(y, first)
    finally:
        native._use_avx512(True)


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("avx512", [True, False])
@pytest.mark.parametrize(
    "n, c, size, kernel, bias",
    [
        (1, 1, 7, 3, True),  # one plane: no pair
        (1, 5, 7, 3, False),  # pairs and one left over
        (8, 64, 7, 3, True),  # MobileNet's last depthwise step
        (3, 7, 4, 3, True),  # a plane of one vector
        (2, 9, 8, 5, False),  # four vectors, 5 x 5
        (2, 6, 5, 1, True),  # 1 x 1
    ],
)
def test_small_planes_two_at_a_time(n, c, size, kernel, bias, avx512, dtype):
    """Stride-1 'same' planes of at most four vectors are convolved two at a time (eight
    independent sums) where AVX-512 is on: equal to F.conv2d and, at any thread count, bit for
    bit the same; off, the portable paths give the same values within the tolerance."""
    g = torch.Generator().manual_seed(n * 100 + c)
    x = torch.randn(n, c, size, size, generator=g, dtype=dtype)
    weight = torch.randn(c, 1, kernel, kernel, generator=g, dtype=dtype)
    b = torch.randn(c, generator=g, dtype=dtype) if bias else None
    pad = kernel // 2
    expected = F.conv2d(x, weight, b, 1, pad, 1, c)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    threads = torch.get_num_threads()
    native._use_avx512(avx512)
    try:
        results = []
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            y = native.depthwise_conv2d(x, weight, b, 1, pad)
            close(y, expected, tol)
            results.append(y)
    finally:
        native._use_avx512(True)
        torch.set_num_threads(threads)
    for y in results[1:]:
        assert torch.equal(y, results[0])


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("stride", [1, 2])
def test_many_channels_four_pixels_at_a_time(dtype, stride):
    """Channels-last inputs whose pixels take at least 1 kB (four output pixels at a time,
    3 taps wide): channel counts with two-vector, one-vector and single-channel tails; widths
    whose rows hold no, one or several blocks of four inside the input, and a last block cut
    short; 1-3 kernel rows, dilated rows, left padding 0-2 and uneven right padding; with
    and without a bias. Each equals PyTorch's depthwise convolution; without AVX-512 these
    run the four-pixel kernel."""
    g = torch.Generator().manual_seed(5)
    lanes = 8 if dtype == torch.float32 else 4
    base = 1024 // (4 if dtype == torch.float32 else 8)
    rel = 1e-5 if dtype == torch.float32 else 1e-12
    for c in (base, base + 2 * lanes + lanes + 3):
        for w in (1, 3, 4, 6, 7, 9, 14):
            for kh, dh, pads in ((3, 1, (1, 1, 1, 1)), (1, 1, (0, 0, 0, 2)), (2, 2, (2, 0, 2, 1))):
                if w + pads[2] + pads[3] < 3:
                    continue
                x = torch.randn(2, c, 5, w, generator=g, dtype=dtype).contiguous(memory_format=CL)
                weight = torch.randn(c, 1, kh, 3, generator=g, dtype=dtype)
                bias = torch.randn(c, generator=g, dtype=dtype) if w % 2 else None
                y = native.depthwise_conv2d(x, weight, bias, stride, (pads[:2], pads[2:]), (dh, 1))
                expected = reference(x, weight, bias, (stride, stride), pads, (dh, 1))
                assert y.is_contiguous(memory_format=CL)
                close(y, expected, rel)


cases3d = st.fixed_dictionaries(
    {
        "n": st.integers(1, 3),
        "c": st.integers(1, 6),
        "m": st.integers(1, 3),
        "size": st.tuples(st.integers(1, 9), st.integers(1, 12), st.integers(1, 40)),
        "kernel": st.tuples(*[st.integers(1, 4)] * 3),
        "stride": st.tuples(*[st.integers(1, 3)] * 3),
        "dilation": st.tuples(*[st.integers(1, 2)] * 3),
        "pads": st.tuples(*[st.integers(0, 3)] * 6),
        "layout": st.sampled_from(["ncdhw", "rows", "cl3d"]),
        "dtype": st.sampled_from([torch.float32, torch.float64]),
        "bias": st.booleans(),
    }
)


def reference3d(x, weight, bias, stride, pads, dilation):
    front, back, top, bottom, left, right = pads
    padded = F.pad(x, (left, right, top, bottom, front, back))
    return F.conv3d(padded, weight, bias, stride, 0, dilation, x.shape[1])


@needs_native
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases3d)
def test_forward3d_matches_conv3d(case):
    """The 3-D kernel on NCDHW rows (dense, or planes and frames further apart) at any
    stride, dilation, padding and depth multiplier; None on a channels_last_3d input."""
    g = torch.Generator().manual_seed(5)
    dt = case["dtype"]
    sizes, kernel, dilation, pads = case["size"], case["kernel"], case["dilation"], case["pads"]
    x = torch.randn(case["n"], case["c"], *sizes, generator=g, dtype=dt)
    weight = torch.randn(case["c"] * case["m"], 1, *kernel, generator=g, dtype=dt)
    bias = torch.randn(case["c"] * case["m"], generator=g, dtype=dt) if case["bias"] else None
    if case["layout"] == "rows":  # W unit stride, frames and planes further apart
        big = torch.zeros(x.shape[0], x.shape[1] + 1, sizes[0] + 1, sizes[1] + 2, sizes[2] + 3)
        big = big.to(dt)
        big[:, : x.shape[1], 1:, 2:, 3:] = x
        x = big[:, : x.shape[1], 1:, 2:, 3:]
    elif case["layout"] == "cl3d":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    before = x.clone()
    padding = (pads[0:2], pads[2:4], pads[4:6])
    y = native.depthwise_conv3d(x, weight, bias, case["stride"], padding, dilation)
    fits = all(
        s + pads[2 * i] + pads[2 * i + 1] >= (k - 1) * d + 1
        for i, (s, k, d) in enumerate(zip(sizes, kernel, dilation))
    )
    if not fits or (case["layout"] == "cl3d" and x.stride(4) != 1 and x.shape[4] != 1):
        assert y is None
        return
    expected = reference3d(x, weight, bias, case["stride"], pads, dilation)
    assert y is not None and y.shape == expected.shape and y.dtype == dt and y.is_contiguous()
    close(y, expected, 1e-5 if dt == torch.float32 else 1e-12)
    assert torch.equal(x, before)


@needs_native
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases3d)
def test_gradients3d_match_conv3d(case):
    """Input, weight and bias gradients of the 3-D kernel (the input gradient by the forward
    kernel at unit stride and M = 1, PyTorch's otherwise; the weight gradient the kernel's own)
    equal F.conv3d's."""
    g = torch.Generator().manual_seed(7)
    dt = case["dtype"]
    sizes, kernel, dilation, pads = case["size"], case["kernel"], case["dilation"], case["pads"]
    if any(
        s + pads[2 * i] + pads[2 * i + 1] < (k - 1) * d + 1
        for i, (s, k, d) in enumerate(zip(sizes, kernel, dilation))
    ):
        return
    x = torch.randn(case["n"], case["c"], *sizes, generator=g, dtype=dt, requires_grad=True)
    weight = torch.randn(case["c"] * case["m"], 1, *kernel, generator=g, dtype=dt)
    weight.requires_grad_(True)
    bias = torch.randn(case["c"] * case["m"], generator=g, dtype=dt, requires_grad=True)
    padding = (pads[0:2], pads[2:4], pads[4:6])
    y = native.depthwise_conv3d(x, weight, bias, case["stride"], padding, dilation)
    grad = torch.randn(y.shape, generator=g, dtype=dt)
    got = torch.autograd.grad(y, (x, weight, bias), grad)
    expected = reference3d(x, weight, bias, case["stride"], pads, dilation)
    want = torch.autograd.grad(expected, (x, weight, bias), grad)
    for a, b in zip(got, want):
        close(a, b, 1e-5 if dt == torch.float32 else 1e-12)


@needs_native
def test_forward3d_gradients_and_threads():
    """Differentiable (uneven padding and stride 2 through PyTorch's input gradient), a second
    derivative included; the same result and weight gradient at 1, 2 and 3 threads."""
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 2, 4, 5, 6, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(4, 1, 2, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    bias = torch.randn(4, dtype=torch.float64, generator=g, requires_grad=True)

    def fn(x, weight, bias):
        return native.depthwise_conv3d(x, weight, bias, (1, 2, 1), ((1, 0), (0, 1), (1, 1)), 1)

    assert torch.autograd.gradcheck(fn, (x, weight, bias))
    assert torch.autograd.gradgradcheck(fn, (x, weight, bias))
    big = torch.randn(2, 40, 6, 20, 24, generator=g)
    w = torch.randn(40, 1, 3, 3, 3, generator=g)
    w.requires_grad_(True)
    grad = torch.randn(2, 40, 6, 20, 24, generator=g)
    threads = torch.get_num_threads()
    try:
        results = []
        for t in (1, 2, 3):
            torch.set_num_threads(t)
            y = native.depthwise_conv3d(big, w, None, 1, 1)
            results.append((y.detach(), *torch.autograd.grad(y, w, grad)))
    finally:
        torch.set_num_threads(threads)
    close(results[0][0], reference3d(big, w, None, 1, (1,) * 6, 1), 1e-5)
    assert all(torch.equal(a, b) for r in results[1:] for a, b in zip(r, results[0]))
    with pytest.raises(TypeError, match="stride"):
        native.depthwise_conv3d(big, w, None, (1, 2), 1)
    with pytest.raises(TypeError, match="padding"):
        native.depthwise_conv3d(big, w, None, 1, ((1, 1), (1, 1)))


@needs_native
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "size, kernel, dilation, pads, depth_stride, m",
    [
        ((4, 7, 7), (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), 1, 1),
        ((5, 14, 14), (3, 3, 3), (1, 1, 1), (1, 1, 1, 1, 1, 1), 2, 2),
        ((3, 6, 13), (2, 3, 4), (2, 2, 1), (0, 1, 2, 0, 1, 3), 1, 1),
        ((2, 9, 5), (1, 4, 2), (1, 1, 3), (0, 0, 0, 3, 0, 2), 1, 3),
        ((6, 3, 15), (3, 2, 3), (1, 1, 1), (2, 0, 0, 0, 0, 0), 3, 1),
    ],
)
def test_forward3d_narrow_frames(dtype, size, kernel, dilation, pads, depth_stride, m):
    """Frames whose rows are narrower than two vectors at unit stride across (the flat-frame
    path: outputs run across rows) equal F.conv3d's, with uneven padding, dilation, depth
    stride and depth multiplier."""
    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, 3, *size, generator=g, dtype=dtype)
    weight = torch.randn(3 * m, 1, *kernel, generator=g, dtype=dtype)
    bias = torch.randn(3 * m, generator=g, dtype=dtype)
    stride = (depth_stride, 1, 1)
    y = native.depthwise_conv3d(
        x, weight, bias, stride, (pads[0:2], pads[2:4], pads[4:6]), dilation
    )
    expected = reference3d(x, weight, bias, stride, pads, dilation)
    close(y, expected, 1e-5 if dtype == torch.float32 else 1e-12)
