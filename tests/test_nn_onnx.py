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
PLUMBING = {"Constant", "ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast",
            "Shape", "Gather", "Unsqueeze", "Squeeze", "Add", "Sub", "Mul", "Div", "Clip", "Max"}

LAYERS = [
    ("separable2d_same_s2", lambda: snn.SeparableConv2d(4, 6, 3, stride=2, padding="same"),
     (1, 4, 8, 7), 2),
    ("separable2d_reflect", lambda: snn.SeparableConv2d(
        4, 6, 3, padding="same", padding_mode="reflect", depth_multiplier=2), (2, 4, 6, 6), 2),
    ("separable2d_norm_act", lambda: snn.SeparableConv2d(
        4, 6, 3, padding=1, norm_layer=torch.nn.BatchNorm2d, activation=torch.nn.ReLU),
     (1, 4, 6, 6), 2),
    ("separable1d_same_s2", lambda: snn.SeparableConv1d(4, 6, 5, stride=2, padding="same"),
     (2, 4, 10), 2),
    ("separable3d_same_s2", lambda: snn.SeparableConv3d(3, 5, 3, stride=2, padding="same"),
     (1, 3, 5, 6, 4), 2),
    ("depthwise1d", lambda: snn.DepthwiseConv1d(4, 3, depth_multiplier=3, dilation=2,
                                                padding="same"), (2, 4, 11), 1),
    ("depthwise2d_s2", lambda: snn.DepthwiseConv2d(4, 3, stride=2, padding="same"),
     (1, 4, 8, 8), 1),
    ("depthwise3d", lambda: snn.DepthwiseConv3d(2, 3, padding="same", depth_multiplier=2),
     (1, 2, 4, 5, 6), 1),
    ("spatial2d_s2", lambda: snn.SpatiallySeparableConv2d(4, 6, (3, 5), stride=2,
                                                          padding="same"), (1, 4, 9, 8), 2),
    ("spatial2d_row_first", lambda: snn.SpatiallySeparableConv2d(
        4, 6, 3, order="row_first", intermediate_channels=5, padding_mode="circular",
        padding="same"), (1, 4, 7, 7), 2),
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
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        assert np.abs(y - layer(x).numpy()).max() <= 1e-5
