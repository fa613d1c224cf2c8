"""MobileNetV1 and the registry: the paper's tables, Keras's MobileNet, the fast path."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sepconv import models, profile
from sepconv.models import MOBILENET_V1_TABLE, mobilenet_v1, optimize_for_inference
from sepconv.nn import DepthwiseConv2d, SeparableConv2d
from sepconv.nn.functional import plain_composition

# Many small torch calls: one intra-op thread is faster and steadier on a busy machine.
pytestmark = pytest.mark.usefixtures("torch_single_thread")

# Tables 4, 6 and 7 of Howard et al. (2017): (kwargs, resolution, parameters in millions,
# mult-adds in millions) as printed.
PAPER_ROWS = [
    ({}, 224, 4.2, 569),  # Tables 4, 6, 7: 1.0 MobileNet-224
    ({"width_multiplier": 0.75}, 224, 2.6, 325),  # Table 6
    ({"width_multiplier": 0.5}, 224, 1.3, 149),  # Table 6
    ({"width_multiplier": 0.25}, 224, 0.5, 41),  # Table 6
    ({}, 192, 4.2, 418),  # Table 7
    ({}, 160, 4.2, 290),  # Table 7
    ({}, 128, 4.2, 186),  # Table 7
    ({"separable": False}, 224, 29.3, 4866),  # Table 4: Conv MobileNet
]
# Exact counts (convolutions and the fully connected layer, bias included).
EXACT_MULT_ADDS = [
    568_740_352,
    325_400_448,
    149_497_088,
    41_030_272,
    418_121_728,
    290_675_200,
    186_400_768,
    4_867_293_184,
]


def _profile(kwargs: dict, resolution: int):
    return profile(mobilenet_v1(resolution=resolution, **kwargs), (1, 3, resolution, resolution))


@pytest.mark.parametrize(
    ("row", "exact"),
    list(zip(PAPER_ROWS, EXACT_MULT_ADDS)),
    ids=[f"{r[0]}-{r[1]}" for r in PAPER_ROWS],
)
def test_paper_tables_4_6_7(row: tuple, exact: int) -> None:
    kwargs, resolution, params_m, mult_adds_m = row
    result = _profile(kwargs, resolution)
    assert result.total_mult_adds == exact
    assert round(result.total_parameters / 1e6, 1) == params_m
    # The paper's rounding: to the nearest million, except two rows printed one lower than the
    # exact count rounds to (160: 290.68M printed 290 = 569 x (160/224)^2 = 290.3;
    # Conv MobileNet: 4867.29M printed 4866).
    millions = exact / 1e6
    if (resolution, kwargs) in ((160, {}), (224, {"separable": False})):
        assert mult_adds_m < millions < mult_adds_m + 1.5
    else:
        assert round(millions) == mult_adds_m
    assert result.torch_flops == 2 * result.total_mult_adds


def test_paper_table_2() -> None:
    kinds = ("Conv 1x1", "Conv DW 3x3", "Conv 3x3", "Fully Connected")
    # (mult-add share, parameter share) in percent; the first layer's printed 1.19% is a
    # misprint of 1.91% (10.8M of 568.7M).
    paper = {
        "Conv 1x1": (94.86, 74.59),
        "Conv DW 3x3": (3.06, 1.06),
        "Conv 3x3": (1.91, 0.02),
        "Fully Connected": (0.18, 24.33),
    }
    summary = {s.kind: s for s in _profile({}, 224).by_kind(kinds)}
    assert set(summary) == set(kinds)
    for kind, (mult_adds, params) in paper.items():
        assert abs(100 * summary[kind].mult_add_share - mult_adds) < 0.1, kind
        assert abs(100 * summary[kind].parameter_share - params) < 0.1, kind
    assert summary["Conv 1x1"].layers == 13 and summary["Conv DW 3x3"].layers == 13


def test_architecture_table() -> None:
    assert len(MOBILENET_V1_TABLE) == 27
    assert MOBILENET_V1_TABLE[0] == ("conv", 2, 32)
    # The last depthwise layer runs at 7x7 with stride 1 (the paper's "s2" is a misprint).
    assert MOBILENET_V1_TABLE[-2] == ("conv dw", 1, 1024)
    assert sum(stride == 2 for _, stride, _ in MOBILENET_V1_TABLE) == 5
    net = mobilenet_v1()
    assert len(net.blocks) == 13
    block = net.blocks[0]
    assert isinstance(block.conv, SeparableConv2d)
    assert isinstance(block.conv.depthwise, DepthwiseConv2d)
    assert isinstance(block.conv.pointwise, nn.Conv2d)
    sizes = []
    for b in net.blocks:
        b.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
    with torch.no_grad():
        features = net.eval().forward_features(torch.zeros(1, 3, 224, 224))
    assert sizes == [112, 56, 56, 28, 28, 14, 14, 14, 14, 14, 14, 7, 7]
    assert features.shape == (1, 1024, 7, 7)


@pytest.mark.parametrize("alpha", [1.0, 0.75, 0.5, 0.25, 0.6])
def test_width_multiplier_rounding(alpha: float) -> None:
    net = mobilenet_v1(width_multiplier=alpha)
    expected = [int(f * alpha) for kind, _, f in MOBILENET_V1_TABLE if kind != "conv dw"]
    got = [net.stem.conv.out_channels] + [b.conv.pointwise.out_channels for b in net.blocks]
    assert got == expected
    assert net.num_features == int(1024 * alpha) == net.classifier.in_features


@pytest.mark.parametrize("name", models.list_models())
def test_smoke_registry(name: str) -> None:
    net = models.create_model(name).eval()
    c, h, w = net.default_input_size
    if h > 64:
        net = models.create_model(name, width_multiplier=0.25, resolution=64).eval()
        c, h, w = net.default_input_size
    out = net(torch.randn(2, c, h, w))
    assert out.shape == (2, net.classifier.out_features)
    assert torch.isfinite(out).all()


def test_fresh_model_keeps_its_activations_scale() -> None:
    """He-normal weights with the fan-out counted per group (a depthwise kernel's: its taps
    times its depth multiplier): a freshly built MobileNetV1 in eval mode passes its input's
    scale through its 13 blocks (PyTorch's kaiming_normal_ counts every channel of a depthwise
    kernel and shrank it about tenfold a block, to 1e-17), and its depthwise weights have
    standard deviation sqrt(2 / 9)."""
    torch.manual_seed(0)
    net = mobilenet_v1().eval()
    assert abs(net.blocks[5].conv.depthwise.weight.std().item() - (2 / 9) ** 0.5) < 0.02
    with torch.no_grad():
        h = net.stem(torch.randn(2, 3, 224, 224))
        start = h.std().item()
        for block in net.blocks:
            h = block(h)
    assert 0.05 < h.std().item() / start < 20


@pytest.mark.parametrize("name", models.list_models())
def test_profile_equals_flop_counter(name: str) -> None:
    net = models.create_model(name)
    size = (2, *net.default_input_size)
    result = profile(net, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), plain_composition():
        net.eval()(torch.zeros(size))
    assert counter.get_total_flops() == 2 * result.total_mult_adds
    assert result.total_parameters == sum(p.numel() for p in net.parameters())


def test_separable_twin_ratio() -> None:
    sep = profile(models.create_model("mnist_separable"), (1, 1, 28, 28))
    full = profile(models.create_model("mnist_conv"), (1, 1, 28, 28))
    assert full.total_mult_adds / sep.total_mult_adds >= 7


def test_registry_exception() -> None:
    with pytest.raises(ValueError, match="`name` must be a registered model, got 'nope'"):
        models.create_model("nope")
    with pytest.raises(ValueError, match="'mobilenet_v1' is already registered"):
        models.register("mobilenet_v1", mobilenet_v1)
    with pytest.raises(ValueError, match="lower-case letters"):
        models.register("MobileNet", mobilenet_v1)
    with pytest.raises(TypeError, match="`name` must be a string"):
        models.register(3, mobilenet_v1)
    with pytest.raises(TypeError, match="`builder` must be callable"):
        models.register("not_callable", 5)
    assert "not_callable" not in models.list_models()


def test_register_and_unregister() -> None:
    @models.register("test_tiny_linear")
    def tiny(**kwargs):
        return nn.Linear(2, 3)

    try:
        assert "test_tiny_linear" in models.list_models()
        assert isinstance(models.create_model("test_tiny_linear"), nn.Linear)
    finally:
        models.unregister("test_tiny_linear")
    assert "test_tiny_linear" not in models.list_models()
    with pytest.raises(ValueError, match="registered model"):
        models.unregister("test_tiny_linear")


def test_exception() -> None:
    with pytest.raises(ValueError, match="`width_multiplier` must leave every layer"):
        mobilenet_v1(width_multiplier=0.01)
    with pytest.raises(ValueError, match="`width_multiplier` must be > 0, got -1"):
        mobilenet_v1(width_multiplier=-1)
    with pytest.raises(TypeError, match="`width_multiplier` must be a real number"):
        mobilenet_v1(width_multiplier="half")
    with pytest.raises(ValueError, match="`resolution` must be a positive integer, got 0"):
        mobilenet_v1(resolution=0)
    with pytest.raises(ValueError, match=r"`dropout` must be in \[0, 1\), got 1.0"):
        mobilenet_v1(dropout=1.0)
    with pytest.raises(TypeError, match="`separable` must be True or False"):
        mobilenet_v1(separable="no")
    with pytest.raises(TypeError, match="`norm_layer` must be a callable"):
        mobilenet_v1(norm_layer=3)
    with pytest.raises(ValueError, match="`separable` is fixed to False"):
        models.create_model("mobilenet_v1_conv", separable=True)


def test_conv_mobilenet_structure() -> None:
    net = mobilenet_v1(separable=False, width_multiplier=0.25)
    assert not any(isinstance(m, DepthwiseConv2d) for m in net.modules())
    assert all(b.conv.kernel_size == (3, 3) and b.conv.groups == 1 for b in net.blocks)


def _keras_mobilenet(alpha: float, size: int, classes: int):
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("needs KERAS_BACKEND=torch")
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNet(
        input_shape=(size, size, 3),
        alpha=alpha,
        weights=None,
        classes=classes,
        classifier_activation=None,
    )


def _copy_keras_weights(kmodel, net: nn.Module) -> None:
    """Copy Keras MobileNet weights (names conv1, conv_dw_i, conv_pw_i, conv_preds) into ours."""

    def bn(layer, norm):
        gamma, beta, mean, var = (np.asarray(w) for w in layer.get_weights())
        norm.weight.data = torch.from_numpy(gamma)
        norm.bias.data = torch.from_numpy(beta)
        norm.running_mean.data = torch.from_numpy(mean)
        norm.running_var.data = torch.from_numpy(var)

    def conv(layer, module):  # (kh, kw, in, out) -> (out, in, kh, kw)
        kernel = np.asarray(layer.get_weights()[0])
        module.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())

    def depthwise(layer, module):  # (kh, kw, C, 1) -> (C, 1, kh, kw)
        kernel = np.asarray(layer.get_weights()[0])
        module.weight.data = torch.from_numpy(kernel.transpose(2, 3, 0, 1).copy())

    get = kmodel.get_layer
    conv(get("conv1"), net.stem.conv)
    bn(get("conv1_bn"), net.stem.norm)
    for i, block in enumerate(net.blocks, start=1):
        depthwise(get(f"conv_dw_{i}"), block.conv.depthwise)
        bn(get(f"conv_dw_{i}_bn"), block.conv.norm)
        conv(get(f"conv_pw_{i}"), block.conv.pointwise)
        bn(get(f"conv_pw_{i}_bn"), block.norm)
    kernel, bias = (np.asarray(w) for w in get("conv_preds").get_weights())
    net.classifier.weight.data = torch.from_numpy(kernel[0, 0].T.copy())
    net.classifier.bias.data = torch.from_numpy(bias)


def test_equals_keras_mobilenet() -> None:
    """Keras's MobileNet (ReLU6, 'same' padding) and ours compute the same function."""
    kmodel = _keras_mobilenet(0.25, 96, 10)
    # Non-trivial batch-norm statistics, so that eps and the running averages matter.
    rng = np.random.default_rng(0)
    for layer in kmodel.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                    rng.normal(0, 0.1, beta.shape).astype("float32"),
                    rng.normal(0, 0.1, mean.shape).astype("float32"),
                    rng.uniform(0.5, 2.0, var.shape).astype("float32"),
                ]
            )
    net = mobilenet_v1(
        width_multiplier=0.25, resolution=96, num_classes=10, activation=nn.ReLU6
    ).eval()
    _copy_keras_weights(kmodel, net)
    x = rng.normal(size=(2, 96, 96, 3)).astype("float32")
    expected = np.asarray(kmodel(x, training=False).detach().cpu())
    with torch.no_grad():
        got = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert sum(p.numel() for p in net.parameters()) == sum(
        int(np.prod(w.shape)) for w in kmodel.trainable_weights
    )


def _trained_like(net: nn.Module) -> nn.Module:
    """Random batch-norm statistics so that folding has something to fold."""
    gen = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1, generator=gen)
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.weight.data.uniform_(0.5, 1.5, generator=gen)
            m.bias.data.normal_(0, 0.1, generator=gen)
    return net.eval()


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_fast_path_equals_eager(mode: str, channels_last: bool) -> None:
    net = _trained_like(mobilenet_v1(width_multiplier=0.5, resolution=96))
    x = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    fast = optimize_for_inference(net, x, mode=mode, channels_last=channels_last)
    with torch.inference_mode():
        expected, got = net(x), fast(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert net.training is False and any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_fast_path_compile_equals_eager() -> None:
    net = _trained_like(models.create_model("mnist_separable"))
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    fast = optimize_for_inference(net, x, mode="compile")
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), net(x), rtol=1e-4, atol=1e-4)


def test_fast_path_exception() -> None:
    net = models.create_model("mnist_separable")
    with pytest.raises(ValueError, match="`mode` must be one of 'eager', 'jit', 'compile'"):
        optimize_for_inference(net, mode="onnx")
    with pytest.raises(ValueError, match="`example_input` is needed for mode='jit'"):
        optimize_for_inference(net, mode="jit")
    with pytest.raises(TypeError, match="`example_input` must be a torch.Tensor"):
        optimize_for_inference(net, [1, 2])
    fast = optimize_for_inference(net, torch.zeros(1, 1, 28, 28), mode="eager")
    with pytest.raises(ValueError, match="optimized for inputs of height x width 28x28"):
        fast(torch.zeros(1, 1, 30, 30))


def test_fast_path_static_padding() -> None:
    """Stride-2 'same' convolutions lose their in-forward padding; odd sizes keep 3x3."""
    net = _trained_like(mobilenet_v1(width_multiplier=0.25, resolution=64))
    for size, kernel in ((64, (4, 4)), (97, (3, 3))):  # all even, all odd stride-2 inputs
        x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(size))
        fast = optimize_for_inference(net, x, mode="eager")
        strided = [m for m in fast.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
        assert len(strided) == 5
        assert all(type(m) is nn.Conv2d and m.kernel_size == kernel for m in strided)
        with torch.no_grad():
            torch.testing.assert_close(fast(x), net(x), rtol=1e-4, atol=1e-4)
    anysize = optimize_for_inference(net)
    with torch.no_grad():
        x = torch.randn(1, 3, 50, 70)
        torch.testing.assert_close(anysize(x), net(x), rtol=1e-4, atol=1e-4)


def test_fold_batch_norm_removes_every_norm() -> None:
    for name in models.list_models():
        net = _trained_like(models.create_model(name, width_multiplier=0.25))
        folded = models.fold_batch_norm(net)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules()), name
        c, h, w = net.default_input_size
        x = torch.randn(2, c, min(h, 64), min(w, 64), generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            torch.testing.assert_close(folded(x), net(x), rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="`model` must be a torch.nn.Module"):
        models.fold_batch_norm("net")


def test_onnx_export_equals_eager(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = _trained_like(mobilenet_v1(width_multiplier=0.25, resolution=64))
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    path = tmp_path / "mobilenet.onnx"
    torch.onnx.export(
        net, (x,), str(path), input_names=["input"], output_names=["logits"], dynamo=False
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x).numpy(), rtol=1e-4, atol=1e-4)
