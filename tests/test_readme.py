"""The README's claims are true: its commands are the ones CI runs, its printed outputs are real.

A block preceded by ``<!-- output of: sepconv ARGS -->`` must equal what ``sepconv ARGS`` prints
now, so a number in the README cannot drift from the command that produces it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sepconv.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
OUTPUT_BLOCK = re.compile(r"<!-- output of: (sepconv [^>]*?) -->\n```text\n(.*?)```", re.S)


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def test_quick_start_commands_are_what_ci_runs():
    commands = [block.strip() for block in _bash_blocks(README)[:2]]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in commands:
        assert command in ci, f"README command not run verbatim by .ci/run: {command}"


def test_readme_has_output_blocks():
    assert OUTPUT_BLOCK.findall(README), "no '<!-- output of: ... -->' blocks found"


@pytest.mark.parametrize("command,expected", OUTPUT_BLOCK.findall(README),
                         ids=lambda v: v if v.startswith("sepconv") else "")
def test_readme_output_blocks_match_the_command(command, expected, capsys):
    status = main(shlex.split(command)[1:])
    out = capsys.readouterr().out
    assert status == 0
    assert out.rstrip() == expected.rstrip()


@pytest.mark.parametrize("index", range(len(re.findall(r"```python\n", README))))
def test_readme_python_blocks_run(index, tmp_path, monkeypatch):
    block = re.findall(r"```python\n(.*?)```", README, re.S)[index]
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    exec(compile(block, f"README.md python block {index}", "exec"), {})
