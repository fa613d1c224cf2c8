"""The ``sepconv`` command line.

Each subcommand lives in its own module ``sepconv/cli/cmd_<name>.py`` that defines

- ``NAME`` (the subcommand), ``HELP`` (one line), ``DESCRIPTION`` (its ``--help`` text, with
  examples) and ``ORDER`` (position in the listing),
- ``add_arguments(parser)`` and ``run(args) -> int``.

Modules are found at start-up, so adding a subcommand touches no other file. ``sepconv`` without
a command prints the usage, one line per command and where to start, and exits with status 2
(``sepconv --help`` prints everything, status 0). Subcommand modules import heavy libraries
(torch, OpenCV, matplotlib) inside ``run`` only, so ``sepconv --help`` stays fast. ``main`` is
the one error boundary: a library error (``ValueError``, ``TypeError``, ``OSError``, a missing
optional module) becomes one line on stderr and exit status 2. Output piped into a reader that
stops early (``sepconv factor k.npy | head -3``) ends the command silently with status 141, as a
Unix tool killed by ``SIGPIPE`` (see "Note on SIGPIPE" in Python's ``signal`` documentation).
Argument names of the library (written `` `name` `` in its messages) are shown as the option the
user typed (``--name``), or as the module's ``ALIASES`` say.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from .._api import public_dir as _public_dir

__all__ = ["main", "ArgumentParser", "UsageError"]

#: Exit status of a command whose reader closed the pipe: 128 + SIGPIPE, as a shell reports a
#: Unix tool that ``SIGPIPE`` ended (``yes | head -1; echo ${PIPESTATUS[0]}`` prints 141).
EXIT_BROKEN_PIPE = 141

EXAMPLES = """\
examples:
  sepconv tour --out tour
  sepconv cost --input 12x12x3 --kernel 5 --filters 256 --padding same
  sepconv factor gaussian:sigma=2,size=9
  sepconv filter photo.png edges.png --kernel log:sigma=2 --explain
  sepconv profile mobilenet_v1 --width 0.5 --resolution 160
  sepconv train --out runs/train
  sepconv convert mnist_conv c.pt --weights runs/train/mnist_conv.pt --rank 2

Run 'sepconv COMMAND --help' for a command's options and more examples.
"""


class UsageError(Exception):
    """A command-line usage error: printed as one line, exit status 2."""


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line and exit status 2, and that takes
    no abbreviated options (``--out`` is not quietly read as ``--output-dtype``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message}")


def _commands() -> list[ModuleType]:
    package = importlib.import_module(__name__)
    modules = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if info.name.startswith("cmd_")
    ]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.NAME))


def build_parser() -> ArgumentParser:
    from sepconv import __version__

    parser = ArgumentParser(
        prog="sepconv",
        description="Separable convolutions: costs, kernel factorization, filtering and models.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sepconv {__version__}")
    sub = parser.add_subparsers(
        dest="command",
        metavar="COMMAND",
        parser_class=ArgumentParser,
        help="the command to run, one of:",
    )
    for module in _commands():
        child = sub.add_parser(
            module.NAME,
            help=module.HELP,
            description=getattr(module, "DESCRIPTION", module.HELP),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(child)
        child.set_defaults(_run=module.run, _parser=child, _module=module)
    return parser


def _short_help(parser: argparse.ArgumentParser) -> str:
    """What ``sepconv`` without a command prints: the usage, the commands (one line each) and
    where to start; ``sepconv --help`` prints the options and examples too."""
    import shutil
    import textwrap

    commands = _commands()
    width = max(len(module.NAME) for module in commands) + 4
    columns = max(min(shutil.get_terminal_size().columns, 100), 60)
    lines = [parser.format_usage().rstrip(), "", "commands:"]
    for module in commands:
        lines += textwrap.wrap(
            module.HELP,
            columns,
            initial_indent=f"  {module.NAME:<{width - 2}}",
            subsequent_indent=" " * width,
        )
    lines += [
        "",
        "New here? Run 'sepconv tour --out tour' first: a guided walk through separable",
        "convolutions on a real photograph; then open tour/report.html.",
        "'sepconv COMMAND --help' shows a command's options; 'sepconv --help' shows examples.",
    ]
    return "\n".join(lines)


def _as_typed(
    message: str, parser: argparse.ArgumentParser | None, module: ModuleType | None
) -> str:
    """Replace the library's `` `name` `` by the option or argument the user typed."""
    options = set(parser._option_string_actions) if parser is not None else set()
    aliases = getattr(module, "ALIASES", {})

    def typed(name: str) -> str:
        if name in aliases:
            return aliases[name]
        option = "--" + name.replace("_", "-")
        return option if option in options else name

    def keyword(match: re.Match[str]) -> str:
        option = typed(match.group(1))
        if not option.startswith("--"):
            return match.group(0)
        return f"{option} {match.group(2).strip(chr(39))}"

    message = re.sub(r"`([A-Za-z_][A-Za-z0-9_]*)`", lambda m: typed(m.group(1)), message)
    message = re.sub(r"`(--[a-z][a-z0-9-]*)`", r"\1", message)  # an option as typed, unquoted
    # name='value' (how a Python caller writes it) -> --name value
    return re.sub(r"\b([a-z_][a-z0-9_]*)=('[^']*'|[\w.+-]+)", keyword, message)


def _missing_module(exc: ModuleNotFoundError) -> str:
    from ._common import EXTRAS

    name = (exc.name or "").split(".")[0]
    if name in EXTRAS and "pip install" not in str(exc):
        return (
            f"this command needs {name}, which is not installed: "
            f"pip install 'sepconv[{EXTRAS[name]}]'"
        )
    if "pip install" in str(exc):
        return str(exc)
    return f"this command needs the Python module {name or exc}, which is not installed"


def _silence_stdout() -> None:
    """Point standard output at the null device, so that Python's final flush of the output
    still buffered for the closed pipe neither fails nor prints "Exception ignored"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            print(_short_help(parser))
            return 2
        status = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the boundary, not at exit
        return status
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, KeyError, ModuleNotFoundError) as exc:
        if isinstance(exc, ModuleNotFoundError):
            message = _missing_module(exc)
        elif isinstance(exc, OSError) and exc.strerror:
            # "[Errno 2] ..." is for programmers; name the file as the user typed it.
            message = exc.strerror + (f": {exc.filename!r}" if exc.filename else "")
        elif isinstance(exc, KeyError):
            message = f"unknown name {exc}"
        else:
            message = str(exc) or type(exc).__name__
        message = " ".join(message.split())
        command = getattr(args, "command", None)
        if command:
            message = _as_typed(message, args._parser, args._module)
        prefix = f"sepconv {command}" if command else "sepconv"
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        # Out of memory is the user's input being too large, not a fault: one line. Any other
        # RuntimeError is a fault of sepconv or of a library, and keeps its traceback.
        text = " ".join(str(exc).split())
        if not isinstance(exc, MemoryError) and not re.search(
            r"can't allocate memory|not enough memory|out of memory", text, re.I
        ):
            raise
        command = getattr(args, "command", None)
        prefix = f"sepconv {command}" if command else "sepconv"
        print(f"{prefix}: error: not enough memory for this input ({text[:160]})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sepconv: interrupted", file=sys.stderr)
        return 130


__dir__ = _public_dir(globals())
