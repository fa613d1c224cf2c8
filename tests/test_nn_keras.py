"""sepconv.nn against Keras 3 (torch backend): same weights, same outputs; weight layouts."""

from __future__ import annotations

import os
import random

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

keras = pytest.importorskip("keras")

import sepconv.nn as snn  # noqa: E402
from sepconv.nn import keras as skeras  # noqa: E402

KERAS_LAYERS = {
    ("separable", 1): keras.layers.SeparableConv1D,
    ("separable", 2): keras.layers.SeparableConv2D,
    ("depthwise", 1): keras.layers.DepthwiseConv1D,
    ("depthwise", 2): keras.layers.DepthwiseConv2D,
}
SEPCONV_LAYERS = {
    ("separable", 1): snn.SeparableConv1d,
    ("separable", 2): snn.SeparableConv2d,
    ("depthwise", 1): snn.DepthwiseConv1d,
    ("depthwise", 2): snn.DepthwiseConv2d,
}


def random_keras_config(seed: int) -> dict:
    rng = random.Random(seed)
    kind = ("separable", "depthwise")[seed % 2]
    n = 1 + (seed // 2) % 2
    # Keras accepts dilation only with stride 1.
    stride = rng.choice([1, 2, 2, 3])
    dilation = 1 if stride > 1 else rng.choice([1, 2, 3])
    kernel = tuple(rng.choice([1, 2, 3, 4, 5]) for _ in range(n))
    padding = rng.choice(["same", "same", "valid"])
    span = max((k - 1) * dilation + 1 for k in kernel)
    sizes = tuple(rng.randint(span, span + 8) for _ in range(n))
    return {
        "kind": kind,
        "n": n,
        "stride": stride,
        "dilation": dilation,
        "kernel": kernel,
        "padding": padding,
        "sizes": sizes,
        "channels": rng.randint(1, 5),
        "multiplier": rng.randint(1, 4),
        "filters": rng.randint(1, 6),
        "batch": rng.randint(1, 3),
        "bias": rng.random() < 0.7,
    }


CONFIGS = [random_keras_config(seed) for seed in range(120)]


def make_pair(c: dict):
    key = (c["kind"], c["n"])
    common = {
        "strides": c["stride"],
        "padding": c["padding"],
        "dilation_rate": c["dilation"],
        "depth_multiplier": c["multiplier"],
        "use_bias": c["bias"],
    }
    if c["kind"] == "separable":
        theirs = KERAS_LAYERS[key](c["filters"], c["kernel"], **common)
        ours = SEPCONV_LAYERS[key](
            c["channels"],
            c["filters"],
            c["kernel"],
            stride=c["stride"],
            padding=c["padding"],
            dilation=c["dilation"],
            depth_multiplier=c["multiplier"],
            bias=c["bias"],
        )
    else:
        theirs = KERAS_LAYERS[key](c["kernel"], **common)
        ours = SEPCONV_LAYERS[key](
            c["channels"],
            c["kernel"],
            stride=c["stride"],
            padding=c["padding"],
            dilation=c["dilation"],
            depth_multiplier=c["multiplier"],
            bias=c["bias"],
        )
    return theirs, ours


def channels_last(x: torch.Tensor) -> np.ndarray:
    return x.permute(0, *range(2, x.dim()), 1).numpy()


@pytest.mark.parametrize(
    "config", CONFIGS, ids=lambda c: f"{c['kind']}{c['n']}d-s{c['stride']}-{c['padding']}"
)
def test_matches_keras(config):
    """120 random layers: Keras's weights loaded into sepconv give Keras's outputs, and
    sepconv's weights exported to Keras give sepconv's outputs."""
    c = config
    torch.manual_seed(0)
    theirs, ours = make_pair(c)
    x = torch.randn(c["batch"], c["channels"], *c["sizes"])
    keras_out = np.asarray(theirs(channels_last(x)).detach().cpu())  # builds random weights
    ours.load_keras_weights(theirs.get_weights())
    with torch.no_grad():
        y = ours(x)
    np.testing.assert_allclose(channels_last(y), keras_out, atol=2e-5, rtol=1e-5)
    # the other way: our random weights into Keras
    torch.manual_seed(1)
    _, fresh = make_pair(c)
    theirs.set_weights(fresh.to_keras_weights())
    with torch.no_grad():
        y = fresh(x)
    np.testing.assert_allclose(
        np.asarray(theirs(channels_last(x)).detach().cpu()), channels_last(y), atol=2e-5, rtol=1e-5
    )


def test_weight_layout_documented_mapping():
    """depthwise_kernel[..., c, m] is torch channel c * M + m; pointwise is a transpose."""
    rng = np.random.default_rng(0)
    dw = rng.standard_normal((3, 5, 4, 2)).astype("float32")
    pw = rng.standard_normal((1, 1, 8, 6)).astype("float32")
    layer = snn.SeparableConv2d(4, 6, (3, 5), depth_multiplier=2, bias=False)
    layer.load_keras_weights([dw, pw])
    for c in range(4):
        for m in range(2):
            np.testing.assert_array_equal(
                layer.depthwise.weight[c * 2 + m, 0].detach().numpy(), dw[:, :, c, m]
            )
    np.testing.assert_array_equal(layer.pointwise.weight[:, :, 0, 0].detach().numpy(), pw[0, 0].T)
    back = layer.to_keras_weights()
    np.testing.assert_array_equal(back[0], dw)
    np.testing.assert_array_equal(back[1], pw)
    assert skeras.depthwise_kernel_from_keras(dw).shape == (8, 1, 3, 5)


def test_depthwise_bias_is_folded_for_keras():
    torch.manual_seed(2)
    ours = snn.SeparableConv2d(3, 5, 3, padding="same", depthwise_bias=True)
    with torch.no_grad():
        ours.depthwise.bias.normal_()
    theirs = keras.layers.SeparableConv2D(5, 3, padding="same")
    x = torch.randn(2, 3, 6, 6)
    theirs(channels_last(x))
    theirs.set_weights(ours.to_keras_weights())
    with torch.no_grad():
        expected = channels_last(ours(x))
    np.testing.assert_allclose(
        np.asarray(theirs(channels_last(x)).detach().cpu()), expected, atol=1e-5, rtol=1e-5
    )
    ours.load_keras_weights(theirs.get_weights())
    assert torch.count_nonzero(ours.depthwise.bias) == 0


def test_3d_uses_the_same_layout():
    """Keras has no 3-D separable layer: the layout generalises (kd, kh, kw, C, M)."""
    torch.manual_seed(3)
    layer = snn.SeparableConv3d(2, 3, (2, 3, 4), depth_multiplier=2)
    weights = layer.to_keras_weights()
    assert [w.shape for w in weights] == [(2, 3, 4, 2, 2), (1, 1, 1, 4, 3), (3,)]
    other = snn.SeparableConv3d(2, 3, (2, 3, 4), depth_multiplier=2).load_keras_weights(weights)
    x = torch.randn(1, 2, 5, 6, 7)
    torch.testing.assert_close(other(x), layer(x))


def test_exception():
    layer = snn.SeparableConv2d(4, 6, 3)
    with pytest.raises(ValueError, match="`weights` must hold 3 arrays"):
        layer.load_keras_weights([np.zeros((3, 3, 4, 1))])
    with pytest.raises(ValueError, match="`weights`: the pointwise_kernel must have shape"):
        layer.load_keras_weights([np.zeros((3, 3, 4, 1)), np.zeros((1, 1, 4, 7)), np.zeros(6)])
    with pytest.raises(ValueError, match="`weights` must have the keys"):
        layer.load_keras_weights({"depthwise_kernel": np.zeros((3, 3, 4, 1))})
    with pytest.raises(TypeError, match="`layer` must be a sepconv"):
        skeras.load_keras_weights(torch.nn.Conv2d(4, 6, 3), [])
    with pytest.raises(ValueError, match="norm or activation"):
        snn.SeparableConv2d(4, 6, 3, activation=torch.nn.ReLU).to_keras_weights()
    loaded = layer.load_keras_weights(
        {
            "depthwise_kernel": np.ones((3, 3, 4, 1)),
            "pointwise_kernel": np.ones((1, 1, 4, 6)),
            "bias": np.zeros(6),
        }
    )
    assert loaded is layer and float(layer.depthwise.weight.detach().sum()) == 36.0


def test_configurations_cover_the_acceptance_cases():
    """The random Keras configurations include what the acceptance criteria name."""
    same_s2 = [c for c in CONFIGS if c["padding"] == "same" and c["stride"] == 2]
    assert any(all(s % 2 == 0 for s in c["sizes"]) for c in same_s2)
    assert any(all(s % 2 == 1 for s in c["sizes"]) for c in same_s2)
    assert any(c["dilation"] > 1 for c in CONFIGS)
    assert {c["multiplier"] for c in CONFIGS} == {1, 2, 3, 4}
    assert {(c["kind"], c["n"]) for c in CONFIGS} == set(KERAS_LAYERS)
