"""ONNX export of every sepconv.nn layer: plain Conv (+ Pad) nodes that onnxruntime runs."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

import sepconv.nn as snn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# Constant plumbing that the TorchScript exporter emits to build a Pad node's pads input, and
# the shape arithmetic of Keras 'same' padding that depends on the input size.
PLUMBING = {
    "Constant",
    "ConstantOfShape",
    "Concat",
    "Reshape",
    "Slice",
    "Transpose",
    "Cast",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Clip",
    "Max",
}

LAYERS = [
    (
        "separable2d_same_s2",
        lambda: snn.SeparableConv2d(4, 6, 3, stride=2, padding="same"),
        (1, 4, 8, 7),
        2,
    ),
    (
        "separable2d_reflect",
        lambda: snn.SeparableConv2d(
            4, 6, 3, padding="same", padding_mode="reflect", depth_multiplier=2
        ),
        (2, 4, 6, 6),
        2,
    ),
    (
        "separable2d_norm_act",
        lambda: snn.SeparableConv2d(
            4, 6, 3, padding=1, norm_layer=torch.nn.BatchNorm2d, activation=torch.nn.ReLU
        ),
        (1, 4, 6, 6),
        2,
    ),
    (
        "separable1d_same_s2",
        lambda: snn.SeparableConv1d(4, 6, 5, stride=2, padding="same"),
        (2, 4, 10),
        2,
    ),
    (
        "separable3d_same_s2",
        lambda: snn.SeparableConv3d(3, 5, 3, stride=2, padding="same"),
        (1, 3, 5, 6, 4),
        2,
    ),
    (
        "depthwise1d",
        lambda: snn.DepthwiseConv1d(4, 3, depth_multiplier=3, dilation=2, padding="same"),
        (2, 4, 11),
        1,
    ),
    (
        "depthwise2d_s2",
        lambda: snn.DepthwiseConv2d(4, 3, stride=2, padding="same"),
        (1, 4, 8, 8),
        1,
    ),
    (
        "depthwise3d",
        lambda: snn.DepthwiseConv3d(2, 3, padding="same", depth_multiplier=2),
        (1, 2, 4, 5, 6),
        1,
    ),
    (
        "spatial2d_s2",
        lambda: snn.SpatiallySeparableConv2d(4, 6, (3, 5), stride=2, padding="same"),
        (1, 4, 9, 8),
        2,
    ),
    (
        "spatial2d_row_first",
        lambda: snn.SpatiallySeparableConv2d(
            4,
            6,
            3,
            order="row_first",
            intermediate_channels=5,
            padding_mode="circular",
            padding="same",
        ),
        (1, 4, 7, 7),
        2,
    ),
]


def export(layer: torch.nn.Module, x: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(layer, (x,), buffer, dynamo=False, input_names=["x"])
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "make", "shape", "convs"), LAYERS, ids=[n for n, *_ in LAYERS])
def test_onnx_export(name, make, shape, convs):
    torch.manual_seed(0)
    layer = make().eval()
    x = torch.randn(*shape)
    data = export(layer, x)
    graph = onnx.load_from_string(data).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("Conv") == convs
    allowed = {"Conv", "Pad", "BatchNormalization", "Relu"} | PLUMBING
    assert set(ops) <= allowed, ops
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        expected = layer(x).numpy()
    assert y.shape == expected.shape
    assert np.abs(y - expected).max() <= 1e-5


@pytest.mark.parametrize(("name", "make", "shape", "convs"), LAYERS, ids=[n for n, *_ in LAYERS])
def test_tracing_records_no_constants_of_its_own(name, make, shape, convs):
    """torch.jit.trace (the TorchScript ONNX exporter's way in) warns where Python takes a
    traced value as a constant; the layers' shape checks and channel counts are constants of
    the layer and say so, so a trace of a layer warns of nothing."""
    layer = make().eval()
    x = torch.randn(*shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("error", torch.jit.TracerWarning)
        traced = torch.jit.trace(layer, x, check_trace=False)
        torch.testing.assert_close(traced(x), layer(x), rtol=1e-5, atol=1e-5)


def test_onnx_dynamo_exporter_folds_padding_into_conv():
    """The dynamo exporter gives exactly two Conv nodes (asymmetric 'same' pads as attributes)."""
    pytest.importorskip("onnxscript")
    torch.manual_seed(1)
    layer = snn.SeparableConv2d(4, 6, 3, stride=2, padding="same").eval()
    x = torch.randn(1, 4, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(layer, (x,), dynamo=True, verbose=False)
    model = program.model_proto
    assert [node.op_type for node in model.graph.node] == ["Conv", "Conv"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert np.abs(y - layer(x).numpy()).max() <= 1e-5


# ------------------------------------------------------------------------------ dynamic sizes
def _conv2d_same():
    from sepconv.models.mobilenet import Conv2dSame

    return Conv2dSame(4, 6, 3, stride=2)


def _mobilenet():
    from sepconv.models import mobilenet_v1

    torch.manual_seed(3)
    net = mobilenet_v1(width_multiplier=0.25, num_classes=7)
    with torch.no_grad():  # statistics and a classifier that give outputs of order 1
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
        net.classifier.weight.normal_(0.0, 1.0)
    return net


# Every sepconv layer, with padding that depends on the input size (stride > 1 'same') and
# without; each runs at sizes with both parities (name, make, export shape, run shapes).
DYNAMIC = [
    *[(name, make, shape) for name, make, shape, _ in LAYERS],
    (
        "depthwise2d_k2_s3",
        lambda: snn.DepthwiseConv2d(4, 2, stride=3, padding="same"),
        (1, 4, 9, 9),
    ),
    (
        "separable2d_k4_s2",
        lambda: snn.SeparableConv2d(4, 6, 4, stride=2, padding="same", depthwise_bias=True),
        (2, 4, 8, 9),
    ),
    (
        "separable2d_replicate_s2",
        lambda: snn.SeparableConv2d(4, 6, 3, stride=2, padding="same", padding_mode="replicate"),
        (1, 4, 8, 8),
    ),
    (
        "depthwise2d_reflect_s2",
        lambda: snn.DepthwiseConv2d(4, 3, stride=(2, 1), padding="same", padding_mode="reflect"),
        (1, 4, 8, 8),
    ),
    (
        "separable2d_circular_s2",
        lambda: snn.SeparableConv2d(4, 6, 3, stride=2, padding="same", padding_mode="circular"),
        (1, 4, 8, 8),
    ),
    (
        "separable2d_explicit",
        lambda: snn.SeparableConv2d(4, 6, 3, stride=2, padding=((0, 1), (2, 0))),
        (1, 4, 8, 8),
    ),
    ("pointwise2d", lambda: snn.PointwiseConv2d(4, 6, 1), (1, 4, 8, 8)),
    ("conv2d_same_s2", _conv2d_same, (1, 4, 8, 8)),
    ("mobilenet_v1", _mobilenet, (1, 3, 64, 64)),
]
GROWTH = (0, 1, 2, 5)  # added to every spatial size: odd and even sizes, both parities
# Input-dependent padding an exporter cannot record right: refused, naming the layer.
REFUSED = {"depthwise2d_reflect_s2": ("dynamo",), "separable2d_circular_s2": ("dynamo",)}
REFUSAL = r"DepthwiseConv2d\(4, 4, kernel_size=\(3, 3\).*depends on the input size"


def _check_sizes(data: bytes, layer: torch.nn.Module, shape, vary_batch: bool) -> None:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for extra in GROWTH:
        run_shape = (
            shape[0] + (extra % 2 if vary_batch else 0),
            shape[1],
            *(s + extra for s in shape[2:]),
        )
        x = torch.randn(*run_shape)
        (y,) = session.run(None, {name: x.numpy()})
        with torch.no_grad():
            expected = layer(x).numpy()
        assert y.shape == expected.shape, run_shape
        assert np.abs(y - expected).max() <= 1e-5 * max(1.0, np.abs(expected).max()), run_shape


@pytest.mark.parametrize(("name", "make", "shape"), DYNAMIC, ids=[n for n, *_ in DYNAMIC])
def test_onnx_dynamic_sizes_torchscript_exporter(name, make, shape):
    """dynamo=False with dynamic batch and spatial axes: right at every size, or refused."""
    torch.manual_seed(4)
    layer = make().eval()
    x = torch.randn(*shape)
    axes = {0: "batch", **{i: f"size{i}" for i in range(2, len(shape))}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "torchscript" in REFUSED.get(name, ()):
            with pytest.raises(ValueError, match=REFUSAL):
                torch.onnx.export(
                    layer, (x,), buffer, dynamo=False, input_names=["x"], dynamic_axes={"x": axes}
                )
            return
        torch.onnx.export(
            layer,
            (x,),
            buffer,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": axes, "y": {0: "batch"}},
        )
    _check_sizes(buffer.getvalue(), layer, shape, vary_batch=True)


@pytest.mark.parametrize(("name", "make", "shape"), DYNAMIC, ids=[n for n, *_ in DYNAMIC])
def test_onnx_dynamic_sizes_dynamo_exporter(name, make, shape):
    """dynamo=True with dynamic spatial axes: right at every size, or refused naming the layer
    (input-dependent reflect padding, which this exporter puts on the wrong side)."""
    pytest.importorskip("onnxscript")
    from torch.export import Dim

    torch.manual_seed(4)
    layer = make().eval()
    x = torch.randn(*shape)
    dims = {i: Dim(f"size{i}", min=max(s - 2, 4), max=512) for i, s in enumerate(shape) if i >= 2}
    refused = "dynamo" in REFUSED.get(name, ())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if refused:
            # torch.export refuses, naming the layer; torch.onnx.export then falls back to a
            # graph of the example's static sizes, which onnxruntime refuses at other sizes.
            with pytest.raises(ValueError, match=REFUSAL):
                torch.export.export(layer, (x,), dynamic_shapes=(dims,), strict=False)
            program = torch.onnx.export(
                layer, (x,), dynamo=True, dynamic_shapes=(dims,), verbose=False
            )
            graph_input = program.model_proto.graph.input[0]
            assert [d.dim_value for d in graph_input.type.tensor_type.shape.dim] == list(shape)
            session = ort.InferenceSession(
                program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
            )
            with pytest.raises(Exception, match="dimensions"):
                session.run(None, {graph_input.name: torch.randn(1, 4, 9, 9).numpy()})
            return
        program = torch.onnx.export(layer, (x,), dynamo=True, dynamic_shapes=(dims,), verbose=False)
    _check_sizes(program.model_proto.SerializeToString(), layer, shape, vary_batch=False)
