"""How long ``sepconv.convert`` takes on real architectures (random weights, closed form).

ResNet-18 and ResNet-50 (He et al. 2016, the torchvision layer shapes, written out here),
converted by the spatial method at full rank (``rtol=0``: every layer exact, the largest
factorizations: 1536 x 1536 for a 512-channel 3x3 layer), and the full-convolution twin of
MobileNetV1 (``sepconv.models.mobilenet_v1(separable=False)``) by the depthwise method at
rank 64, all at 224 x 224. Each conversion is timed whole (wall clock, median of ``--repeat``
runs after none: the first run counts, as a user sees it), with the process's PyTorch threads.

Run: ``python benchmarks/convert_speed.py --json benchmarks/results/convert_speed.json``.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

import torch
from torch import nn

from _common import base_parser, machine, print_header, write_json
from sepconv._text import format_table
from sepconv.convert import convert
from sepconv.models import mobilenet_v1


class _Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.down = (
            nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            if stride != 1 or cin != planes
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.down = (
            nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            if stride != 1 or cin != out
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(torch.relu(self.bn2(self.conv2(y)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def resnet(block: Any, layers: list[int]) -> nn.Module:
    """A ResNet of ``block``s (torchvision's shapes), random weights, eval mode."""
    mods: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = 64
    for i, count in enumerate(layers):
        for j in range(count):
            mods.append(block(cin, 64 * 2**i, 2 if j == 0 and i > 0 else 1))
            cin = 64 * 2**i * block.expansion
    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000)]
    return nn.Sequential(*mods).eval()


CASES = {
    "ResNet-18, spatial, full rank": (
        lambda: resnet(_Basic, [2, 2, 2, 2]),
        {"method": "spatial", "rtol": 0.0},
    ),
    "ResNet-50, spatial, full rank": (
        lambda: resnet(_Bottleneck, [3, 4, 6, 3]),
        {"method": "spatial", "rtol": 0.0},
    ),
    "MobileNetV1 (full convolutions), depthwise, rank 64": (
        lambda: mobilenet_v1(separable=False).eval(),
        {"method": "depthwise", "rank": 64},
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(repeat=3)
    args = parser.parse_args(argv)
    info = machine("torch")
    info["threads"] = torch.get_num_threads()
    print_header(__doc__.splitlines()[0], info)
    rows, results = [], []
    for name, (build, kwargs) in CASES.items():
        torch.manual_seed(0)
        model = build()
        times = []
        for _ in range(1 if args.quick else args.repeat):
            start = time.perf_counter()
            _, report = convert(model, input_size=(1, 3, 224, 224), **kwargs)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        replaced = len(report.replaced)
        rows.append([name, replaced, f"{seconds:.2f}", f"{min(times):.2f}"])
        results.append({"case": name, "replaced": replaced, "seconds": times})
        print("  " + " ".join(map(str, rows[-1])), file=sys.stderr)
    print(format_table(["model, method", "layers replaced", "median s", "min s"], rows))
    print(f"\n{info['threads']} PyTorch threads")
    write_json(args.json, {"benchmark": "convert_speed", "machine": info, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
