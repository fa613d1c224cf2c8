"""The package as users meet it: light import, public names, entry points, typing marker."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import sepconv

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "cv2", "matplotlib", "dask", "scipy", "keras", "rich")
REPORT_HEAVY = f"""
import json, sys
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def _heavy_modules(run_python, code: str) -> list[str]:
    result = run_python(code=code + REPORT_HEAVY)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_is_light(run_python):
    assert _heavy_modules(run_python, "import sepconv") == []


def test_numpy_only_submodules_stay_light(run_python):
    """cost, padding and reference are NumPy-only: a user of them never pays for torch."""
    code = "import sepconv.cost, sepconv.padding, sepconv.reference, sepconv._checks"
    assert _heavy_modules(run_python, code) == []


def test_cli_help_does_not_import_heavy_libraries(run_python):
    code = (
        "import contextlib, io\n"
        "from sepconv.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0\n"
    )
    assert [m for m in _heavy_modules(run_python, code) if m not in ("scipy", "rich")] == []


def test_all_is_pinned():
    assert sepconv.__all__ == [
        "__version__",
        "cost",
        "padding",
        "reference",
        "kernels",
        "factor",
        "filtering",
        "nn",
        "models",
        "profiling",
        "convert",
        "tour",
        "layouts",
        "experiment",
        "correlate",
        "convolve",
        "plan",
        "separate",
        "lowrank",
        "profile",
    ]
    assert set(sepconv.__all__) <= set(dir(sepconv))


def test_no_helper_module_under_a_public_name():
    """A module a public module imports for its own use is bound to a private name: ``dir()``
    and tab completion show the API only, and ``__all__`` names only what is defined there."""
    import importlib
    import inspect

    for name in ("sepconv.nn.functional", "sepconv.nn"):
        module = importlib.import_module(name)
        stray = [
            k
            for k, v in vars(module).items()
            if not k.startswith("_")
            and inspect.ismodule(v)
            and not v.__name__.startswith(module.__name__ + ".")
        ]
        assert stray == [], name
        assert all(hasattr(module, k) for k in module.__all__), name


PUBLIC_MODULES = [
    "sepconv",
    *(f"sepconv.{name}" for name in sepconv._SUBMODULES),
    "sepconv.cli",
    "sepconv.nn.functional",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_dir_shows_the_api_only(name):
    """``dir()`` and tab completion list ``__all__`` and public submodules, never what a
    module imports for its own use (``np``, ``math``, ``sys``, ``Any``, ``annotations``)."""
    import types

    module = importlib.import_module(name)
    listed = dir(module)
    assert set(module.__all__) <= set(listed), name
    extra = [
        k
        for k in listed
        if k not in module.__all__
        and not (
            isinstance(getattr(module, k), types.ModuleType)
            and getattr(module, k).__name__.startswith(name + ".")
        )
    ]
    assert extra == [], name
    assert not {"np", "math", "sys", "Any", "annotations"} & set(listed), name


def test_lazy_attributes():
    assert sepconv.cost.conv((12, 12, 3), 5, 256).multiplications == 1_228_800
    assert sepconv.padding.same_padding(224, 3, 2) == (0, 1)
    assert callable(sepconv.reference.conv2d)
    with pytest.raises(AttributeError, match="module 'sepconv' has no attribute 'nonexistent'"):
        sepconv.nonexistent  # noqa: B018


def test_every_listed_name_resolves_in_a_fresh_process(run_python):
    """What ``dir(sepconv)`` lists is reachable as an attribute before anything else is imported
    (``sepconv.layouts`` once failed in a fresh process, and ``experiment`` was not listed)."""
    code = "import sepconv; print([n for n in dir(sepconv) if not hasattr(sepconv, n)])"
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert {"layouts", "experiment"} <= set(sepconv.__all__)


def test_version_matches_metadata():
    assert sepconv.__version__ == importlib.metadata.version("sepconv")
    assert re.fullmatch(r"\d+\.\d+\.\d+", sepconv.__version__)


def test_metadata_console_script_and_unpinned_torch():
    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert [e.value for e in scripts if e.name == "sepconv"] == ["sepconv.cli:main"]
    requires = importlib.metadata.requires("sepconv") or []
    runtime = [r for r in requires if "extra ==" not in r]
    names = {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in runtime}
    assert {"numpy", "scipy", "opencv-python-headless", "torch", "matplotlib"} <= names
    torch_requirement = next(r for r in runtime if r.startswith("torch"))
    assert "==" not in torch_requirement  # the CPU build is installed first, by the README
    assert "dask" not in names  # dask is an extra


def test_python_m_sepconv_help(run_python):
    result = run_python("-m", "sepconv", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: sepconv")
    assert "cost" in result.stdout


def test_py_typed_is_shipped(tmp_path):
    """The typing marker is in the package and in the wheel built from this source."""
    assert (Path(sepconv.__file__).parent / "py.typed").is_file()
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("sepconv-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "sepconv/py.typed" in names
    assert "sepconv/reference.py" in names and "sepconv/cli/cmd_cost.py" in names
    entry_points = (
        zipfile.ZipFile(wheel)
        .read(next(n for n in names if n.endswith("entry_points.txt")))
        .decode()
    )
    assert "sepconv = sepconv.cli:main" in entry_points


def test_every_declared_dependency_is_imported():
    """A runtime requirement that no module imports is a dead declaration (and a slower install)."""
    requires = importlib.metadata.requires("sepconv") or []
    runtime = {
        re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower() for r in requires if "extra ==" not in r
    }
    modules_of: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            modules_of.setdefault(dist.lower(), set()).add(module)
    source = "\n".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "src" / "sepconv").rglob("*.py")
    )
    unused = []
    for dist in sorted(runtime):
        modules = modules_of.get(dist) or modules_of.get(dist.replace("-", "_"), set())
        assert modules, f"{dist} is declared but not installed"
        if not any(
            re.search(rf"^\s*(from|import) {re.escape(m)}\b", source, re.M) for m in modules
        ):
            unused.append(dist)
    assert unused == [], f"declared in pyproject.toml but imported nowhere: {unused}"
