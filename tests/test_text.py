"""``sepconv._text``: how a ratio is put in words, and that every printed ratio goes through it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sepconv._text import ratio_text

SRC = Path(__file__).resolve().parents[1] / "src" / "sepconv"
FACTOR = re.compile(r"(\d+(?:\.\d+)?)x (fewer|more|faster|slower)")
PERCENT = re.compile(r"(\d+(?:\.\d+)?)% (fewer|more)")


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (1 / 1.06, "6% more"),  # printed as '1.1x more' before
        (1.06, "6% fewer"),
        (9 / 6, "33% fewer"),  # Sobel: 9 multiplications become 6
        (1 / 0.94, "6% fewer"),
        (0.5, "2.0x more"),  # never '0.5x fewer'
        (1228800 / 53952, "22.8x fewer"),
        (1.0, "the same"),
        (1.0004, "the same"),
        (1.004, "0.4% fewer"),
        (8 / 7, "13% fewer"),  # 12.5%: halves round up, as in the calculator's JavaScript
    ],
)
def test_ratio_text_values(ratio, expected):
    assert ratio_text(ratio) == expected


def test_ratio_text_words_and_signs():
    assert ratio_text(22.78125, digits=2) == "22.78x fewer"
    assert ratio_text(1 / 3, fewer="faster", more="slower") == "3.0x slower"
    assert ratio_text(1.25, fewer="less time", more="more time") == "20% less time"
    assert ratio_text(1 + 1e-12, same="as many") == "as many"


@pytest.mark.parametrize("bad", [0, -1.5, float("nan"), float("inf"), -float("inf")])
def test_ratio_text_exception(bad):
    with pytest.raises(ValueError, match=r"`ratio` must be a finite number > 0, got"):
        ratio_text(bad)


@settings(max_examples=400, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1e6, allow_nan=False))
def test_ratio_text_is_right_for_any_ratio(ratio):
    text = ratio_text(ratio, digits=2)
    factor = FACTOR.fullmatch(text)
    percent = PERCENT.fullmatch(text)
    if factor:
        # a factor is only written from 2 times on, in the right direction
        assert float(factor.group(1)) >= 2
        assert factor.group(2) == ("fewer" if ratio > 1 else "more")
        expected = ratio if ratio > 1 else 1 / ratio
        assert abs(float(factor.group(1)) - expected) <= 0.005 + 1e-12 * expected
    elif percent:
        value = float(percent.group(1))
        assert 0 < value <= 100
        if ratio > 1:  # new = old * (1 - p)
            assert percent.group(2) == "fewer"
            assert abs(value - 100 * (1 - 1 / ratio)) <= 0.5 + 1e-9
        else:  # new = old * (1 + p)
            assert percent.group(2) == "more"
            assert abs(value - 100 * (1 / ratio - 1)) <= 0.5 + 1e-9
        assert "." not in percent.group(1) or value < 1
    else:
        assert text == "the same"
        assert abs(ratio - 1) < 1e-3


def test_every_printed_ratio_uses_ratio_text():
    """No module formats '<number>x fewer/more/faster/slower' itself: one rule for all."""
    own = re.compile(
        r"(:\.\d+f\}|toFixed\(\d\)\s*\+\s*\")\s*[x×] (fewer|more|faster|slower)"
        r"|\.\d+f\}[x×]\)"
    )
    found = []
    for path in sorted([*SRC.rglob("*.py"), *SRC.rglob("*.js")]):
        if path.name == "_text.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if own.search(line):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert found == []


def test_a_factor_is_written_with_one_sign_everywhere():
    """The command line writes '4.25x fewer'; the tour, its report and its calculator write the
    same ASCII 'x', never '×' (which the tour keeps for shapes such as 5×5×3)."""
    assert ratio_text(4.25, digits=2) == "4.25x fewer"
    script = (SRC / "tour" / "calculator.js").read_text(encoding="utf-8")
    assert '+ "x " + word' in script and "× " not in script
