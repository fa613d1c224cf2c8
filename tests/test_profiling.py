"""sepconv.profile against torch.utils.flop_counter and hand counts."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from sepconv import cost, profile
from sepconv.nn import DepthwiseConv2d, SeparableConv2d
from sepconv.nn.functional import plain_composition
from sepconv.profiling import SOURCE_COST, SOURCE_COUNTER

# Many small torch calls: one intra-op thread is faster and steadier on a busy machine.
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _counter_flops(model: nn.Module, size: tuple[int, ...]) -> int:
    """torch's own count of the plain composition (the operators sepconv.cost counts)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad(), plain_composition():
        model.eval()(torch.zeros(size))
    return counter.get_total_flops()


def test_smoke() -> None:
    net = nn.Sequential(nn.Conv2d(3, 256, 5, bias=False))
    result = profile(net, (1, 3, 12, 12))
    (row,) = result.rows
    assert row.name == "0" and row.type == "Conv2d" and row.kind == "Conv 5x5"
    assert row.mult_adds == 1_228_800 == result.total_mult_adds  # the worked example
    assert row.output_shape == (1, 256, 8, 8)
    assert row.parameters == 19_200 and row.share == 1.0 and row.source == SOURCE_COST
    assert row.cost == cost.conv((12, 12, 3), 5, 256, bias=False)


def test_separable_worked_example() -> None:
    layer = SeparableConv2d(3, 256, 5, padding="same", bias=False)
    result = profile(layer, (1, 3, 12, 12))
    assert [r.name for r in result.rows] == ["depthwise", "pointwise"]
    assert [r.mult_adds for r in result.rows] == [10_800, 110_592]  # 121,392 together
    assert [r.kind for r in result.rows] == ["Conv DW 5x5", "Conv 1x1"]
    assert result.torch_flops == 2 * 121_392


@settings(max_examples=25, deadline=None)
@given(
    dims=st.sampled_from([1, 2, 3]),
    groups=st.sampled_from([1, 2, 4]),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 2),
    padding=st.sampled_from([0, 1, 2, "same", "valid"]),
    bias=st.booleans(),
    size=st.integers(7, 12),
    batch=st.integers(1, 3),
)
def test_conv_equals_flop_counter(
    dims, groups, kernel, stride, dilation, padding, bias, size, batch
) -> None:
    if padding == "same":
        stride = 1  # PyTorch's 'same' needs stride 1
    conv_cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
    net = nn.Sequential(
        conv_cls(
            4,
            8,
            kernel,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
    )
    size_ = (batch, 4, *([size] * dims))
    result = profile(net, size_)
    assert result.rows[0].source == SOURCE_COST
    assert 2 * result.total_mult_adds == _counter_flops(net, size_) == result.torch_flops


@settings(max_examples=15, deadline=None)
@given(
    stride=st.integers(1, 3),
    kernel=st.integers(1, 5),
    multiplier=st.integers(1, 2),
    size=st.integers(5, 13),
    padding=st.sampled_from(["same", "valid"]),
)
def test_sepconv_layers_equal_flop_counter(stride, kernel, multiplier, size, padding) -> None:
    net = nn.Sequential(
        DepthwiseConv2d(4, kernel, stride=stride, padding=padding, depth_multiplier=multiplier),
        SeparableConv2d(
            4 * multiplier,
            6,
            kernel,
            stride=stride,
            padding=padding,
            norm_layer=nn.BatchNorm2d,
            activation=nn.ReLU,
        ),
    )
    size_ = (2, 4, size, size + 1)
    try:
        result = profile(net, size_)
    except ValueError:  # the kernel does not fit a 'valid' input
        return
    assert all(r.source == SOURCE_COST for r in result.rows if r.kind.startswith("Conv"))
    assert 2 * result.total_mult_adds == _counter_flops(net, size_)


def test_linear_and_unknown_layers() -> None:
    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return torch.softmax(x @ x.transpose(-1, -2), -1) @ x * self.scale

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(16, 32)
            self.attn = Attention()
            self.head = nn.Linear(32, 4, bias=False)

        def forward(self, x):
            y = self.attn(self.proj(x))
            y = torch.matmul(y, torch.ones(32, 32))  # outside any leaf module
            return self.head(y)

    net = Net()
    result = profile(net, (2, 5, 16))
    rows = {r.name: r for r in result.rows}
    assert rows["proj"].mult_adds == 2 * 5 * 16 * 32 and rows["proj"].source == SOURCE_COST
    assert rows["proj"].kind == "Fully Connected"
    assert rows["attn"].source == SOURCE_COUNTER
    assert rows["attn"].mult_adds == 2 * (5 * 5 * 32 + 5 * 5 * 32)
    assert rows["(outside leaf modules)"].mult_adds == 2 * 5 * 32 * 32
    assert rows["head"].mult_adds == 2 * 5 * 32 * 4
    assert 2 * result.total_mult_adds == result.torch_flops == _counter_flops(net, (2, 5, 16))
    assert result.total_parameters == 16 * 32 + 32 + 1 + 32 * 4


def test_shared_module_and_parameters() -> None:
    conv = nn.Conv2d(4, 4, 3, padding=1)
    net = nn.Sequential(conv, nn.ReLU(), conv)  # the same module twice
    result = profile(net, (1, 4, 8, 8))
    (row, act) = result.rows
    assert row.calls == 2 and row.mult_adds == 2 * 64 * 4 * 36
    assert result.total_parameters == 4 * 4 * 9 + 4 == row.parameters
    assert 2 * result.total_mult_adds == _counter_flops(net, (1, 4, 8, 8))


def test_container_with_own_parameters() -> None:
    class WithToken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.token = nn.Parameter(torch.zeros(1, 3))
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x + self.token) @ torch.ones(3, 3)

    result = profile(WithToken(), (4, 3))
    rows = {r.name: r for r in result.rows}
    assert rows["fc"].mult_adds == 4 * 9
    assert rows["WithToken"].parameters == 3 and rows["WithToken"].mult_adds == 4 * 9
    assert result.total_mult_adds == 72 and result.torch_flops == 144


def test_training_mode_and_input_untouched() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train()
    before = net[1].running_mean.clone()
    profile(net, (2, 1, 5, 5))
    assert net.training and net[1].training
    assert torch.equal(net[1].running_mean, before)
    assert net[1].num_batches_tracked.item() == 0


def test_outputs() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 2))
    result = profile(net, (1, 3, 6, 6))
    text = result.to_text()
    assert "Conv2d" in text and "3,456" in text and "FLOPs = 2 x mult-adds" in text
    assert "ReLU" not in result.to_text(skip_empty=True)
    markdown = result.to_markdown()
    assert markdown.splitlines()[1] == "|---|---|---|---:|---:|---:|"
    assert "| **total** |" in markdown
    data = json.loads(json.dumps(result.to_dict()))
    assert data["totals"]["mult_adds"] == 3456 + 256
    assert data["totals"]["flops"] == data["totals"]["torch_flops"] == 2 * (3456 + 256)
    assert [r["name"] for r in data["rows"]] == ["0", "1", "2", "3"]
    assert str(result) == text
    kinds = {s.kind: s for s in result.by_kind()}
    assert kinds["Conv 3x3"].mult_add_share == pytest.approx(3456 / 3712)
    assert sum(s.parameter_share for s in kinds.values()) == pytest.approx(1.0)


def test_exception() -> None:
    with pytest.raises(TypeError, match="`model` must be a torch.nn.Module"):
        profile("net", (1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"`input_size` must be a tuple of 2 to 6 positive"):
        profile(nn.Conv2d(3, 3, 1), (8,))
    with pytest.raises(TypeError, match="`input_size` must be"):
        profile(nn.Conv2d(3, 3, 1), "1x3x8x8")
    with pytest.raises(ValueError, match="`input_size`"):
        profile(nn.Conv2d(3, 3, 1), (1, 3, 0, 8))
    result = profile(nn.Sequential(nn.Conv2d(3, 3, 1)), (1, 3, 4, 4))
    with pytest.raises(ValueError, match="`kinds` must name kinds present"):
        result.by_kind(["Conv 9x9"])
