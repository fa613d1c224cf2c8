"""The tour's files: ``report.html`` (self-contained), ``README.md`` and ``report.json``.

The HTML page embeds every figure as a PNG data URI, its style and its script; a
Content-Security-Policy forbids every network request, so it opens the same offline. Its text
and numbers are the steps' own; ``report.json`` holds the same numbers.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from typing import Any

from .._text import ratio_text

__all__ = ["render_html", "render_markdown", "render_json", "INTRO", "CLOSING"]

INTRO = [
    "A convolution can be split two ways. *Spatially separable*: a k×k kernel that is a "
    "column times a row runs as two 1-D passes, 2k instead of k² multiplications per pixel. "
    "*Depthwise separable*: a normal convolution becomes a depthwise convolution (one k×k "
    "kernel per input channel) followed by a pointwise 1×1 convolution that mixes the "
    "channels, as in MobileNet and `keras.layers.SeparableConv2D`.",
    "Everything below was computed by this run of `sepconv tour` on {image}, with "
    "sepconv's own code: the multiplications are counted by `sepconv.reference` as it runs "
    "the convolutions, and checked against `sepconv.cost`. Tensors and kernels are drawn as "
    "blocks, height × width × depth, with their real values on the visible faces. Signed "
    "values (kernels, edges, layer outputs) are red above zero and blue below; white is 0.",
]

CLOSING = [
    "Spatially separable kernels trade k² multiplications per pixel for 2k, but only kernels "
    "of rank 1 separate, and a random kernel almost never is; many useful image kernels are "
    "a short sum of separable terms and keep most of the saving.",
    "Depthwise separable layers work for every kernel shape: a depthwise step ({dw}) and a "
    "pointwise step ({pw}) replace the normal convolution ({normal}), {ratio} "
    "multiplications, the fraction 1/C_out + 1/k². In MobileNetV1 that is {mobilenet}, and "
    "a trained layer can be converted after the fact at a measured error.",
    "Next: `sepconv cost` for any layer, `sepconv factor KERNEL --plot FILE.png` for any "
    "kernel, `sepconv profile mobilenet_v1` for every layer of the network.",
]

_CSS = """
:root { --text: #1d1d1f; --muted: #5a5a60; --line: #d9d9de; --accent: #2f6db3;
        --blue: #3b75af; --orange: #ef8636; --gray: #8c8c8c; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 17px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--text); background: #fafafa; }
main { max-width: 62rem; margin: 0 auto; padding: 1.2rem 1.1rem 3rem; background: #fff; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0.6rem 0 0.8rem; }
h2 { font-size: 1.35rem; margin: 2.4rem 0 0.6rem; padding-top: 0.6rem;
     border-top: 1px solid var(--line); }
p { margin: 0.6rem 0; max-width: 48rem; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, monospace; background: #f0f0f3;
       padding: 0.05em 0.3em; border-radius: 3px; }
nav ol { columns: 2; column-gap: 2rem; padding-left: 1.4rem; margin: 0.4rem 0; }
nav a { color: var(--accent); text-decoration: none; }
figure { margin: 1.2rem 0 1.6rem; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
figure img { display: block; width: 100%; min-width: 34rem; height: auto; }
figure img.wide { min-width: 64rem; }
.hint { display: none; }
figcaption { font-size: 0.92rem; color: var(--muted); margin-top: 0.35rem; max-width: 48rem; }
.summary { background: #f3f6fb; border-left: 4px solid var(--accent); padding: 0.6rem 1rem;
           margin: 1rem 0; }
.summary li { margin: 0.2rem 0; }
.meta { color: var(--muted); font-size: 0.9rem; }
form.calc { display: grid; grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr));
            gap: 0.6rem 1rem; margin: 1rem 0; }
form.calc label { display: flex; flex-direction: column; font-size: 0.9rem; color: var(--muted); }
form.calc input, form.calc select { font: inherit; padding: 0.3rem 0.4rem; margin-top: 0.2rem;
            border: 1px solid #b9b9c0; border-radius: 4px; width: 100%; }
.presets button { font: inherit; font-size: 0.9rem; margin: 0 0.4rem 0.4rem 0;
                  padding: 0.3rem 0.7rem; border: 1px solid var(--accent); background: #fff;
                  color: var(--accent); border-radius: 4px; cursor: pointer; }
table.calc-table { border-collapse: collapse; width: 100%; max-width: 48rem; }
.calc-table td { padding: 0.3rem 0.4rem; border-bottom: 1px solid var(--line);
                 vertical-align: middle; }
.calc-table td.num { text-align: right; font-variant-numeric: tabular-nums;
                     white-space: nowrap; }
.calc-table td.wrap { white-space: normal; }
.calc-table td.barcell { width: 40%; }
.bar { height: 0.8rem; border-radius: 2px; min-width: 2px; }
#bar-normal { background: var(--gray); } #bar-depthwise { background: var(--blue); }
#bar-pointwise { background: var(--orange); }
#bar-separable { background: linear-gradient(90deg, var(--blue), var(--orange)); }
.calc-error table { opacity: 0.35; }
.calc-error .bar { display: none; }
.gallery { background: #f7f7f9; border: 1px solid var(--line); border-radius: 6px;
           padding: 0.4rem 1rem 0.8rem; margin: 1.2rem 0; }
.gallery h3 { margin: 0.5rem 0 0.2rem; font-size: 1.1rem; }
.gallery-view { display: flex; gap: 1rem; align-items: flex-start; flex-wrap: wrap; }
#gallery-kernel { width: 9rem; height: 9rem; image-rendering: pixelated;
                  border: 1px solid var(--line); }
#gallery-response { width: 100%; max-width: 24rem; height: auto; border: 1px solid var(--line); }
.presets button[aria-pressed="true"] { background: var(--accent); color: #fff; }
#calc-message { color: #b3261e; min-height: 1.4em; }
@media (max-width: 40rem) {
  body { font-size: 16px; }
  main { padding: 0.8rem 0.8rem 2rem; }
  h1 { font-size: 1.5rem; }
  nav ol { columns: 1; }
  .calc-table td.barcell { display: none; }
  /* Text in a figure stays at least 0.6 of its size at full width (about 10 px): wide
     figures scroll sideways rather than shrink; a tap enlarges them further. */
  figure img { cursor: zoom-in; min-width: max(34rem, calc(var(--w, 0px) * 0.6)); }
  figure img.wide { cursor: zoom-out; min-width: max(64rem, calc(var(--w, 0px) * 0.9)); }
  .hint { display: inline; }
}
"""


def _png_width(data: bytes) -> int:
    """The width in pixels of a PNG, from its header."""
    return int.from_bytes(data[16:20], "big")


def _inline(text: str) -> str:
    """Escape, then ``code`` and *emphasis* as HTML."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*([^*\s][^*]*)\*", r"<em>\1</em>", out)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _calculator(worked: dict[str, Any]) -> str:
    presets = [
        (
            "the worked example",
            {"h": 12, "w": 12, "c_in": 3, "k": 5, "c_out": 256, "stride": 1, "padding": "valid"},
        ),
        (
            "with 'same' padding",
            {"h": 12, "w": 12, "c_in": 3, "k": 5, "c_out": 256, "stride": 1, "padding": "same"},
        ),
        (
            "a MobileNet block",
            {"h": 112, "w": 112, "c_in": 64, "k": 3, "c_out": 128, "stride": 2, "padding": "same"},
        ),
        (
            "a 7×7 stem",
            {"h": 224, "w": 224, "c_in": 3, "k": 7, "c_out": 64, "stride": 2, "padding": 3},
        ),
    ]
    buttons = "".join(
        f'<button type="button" data-preset="{html.escape(json.dumps(values))}">'
        f"{html.escape(name)}</button>"
        for name, values in presets
    )
    fields = "".join(
        f'<label>{label}<input name="{name}" type="number" min="1" step="1" '
        f'value="{worked[name]}" inputmode="numeric"></label>'
        for name, label in (
            ("h", "input height"),
            ("w", "input width"),
            ("c_in", "input channels"),
            ("k", "kernel size k"),
            ("c_out", "filters C_out"),
            ("stride", "stride"),
        )
    )
    padding = (
        '<label>padding<select name="padding"><option value="valid" selected>valid '
        '(none)</option><option value="same">same</option><option value="1">1</option>'
        '<option value="2">2</option><option value="3">3</option></select></label>'
    )
    rows = "".join(
        f'<tr><td>{label}</td><td class="num" id="calc-{key}"></td><td class="barcell">'
        f'<div class="bar" id="bar-{key}"></div></td></tr>'
        for key, label in (
            ("normal", "normal convolution"),
            ("depthwise", "depthwise step"),
            ("pointwise", "pointwise step"),
            ("separable", "depthwise separable"),
        )
    )
    return (
        '<section id="calculator"><h2>Try it: a cost calculator</h2>'
        "<p>Set a layer and see the multiplications of a normal convolution against its "
        "depthwise separable replacement. The page computes them with the formulas of "
        "<code>sepconv.cost.compare</code> (the report's test checks that they agree on a grid "
        "of inputs); from the browser's console, <code>sepconvCost(h, w, c_in, k, c_out, "
        "stride, padding)</code> returns them. Bars are on a logarithmic scale.</p>"
        f'<div class="presets">{buttons}</div>'
        f'<form class="calc" id="calc">{fields}{padding}</form>'
        '<div id="calc-out"><p><strong>shape:</strong> <span id="calc-shape"></span></p>'
        f'<table class="calc-table"><tbody>{rows}'
        '<tr><td>separable / normal</td><td class="num wrap" id="calc-ratio" colspan="2"></td></tr>'
        '<tr><td>rule 1/C_out + 1/k²</td><td class="num wrap" id="calc-rule" colspan="2"></td></tr>'
        '</tbody></table><p id="calc-message" role="status"></p></div></section>'
    )


def _gallery_text(entry: dict[str, Any]) -> str:
    direct, terms = entry["per_pixel"]
    rank = entry["rank"]
    verdict = ratio_text(direct / terms)
    if terms > direct:
        verdict += ": here the full kernel is cheaper"
    return (
        f"{entry['name']}: rank {rank}. Directly {direct} multiplications per "
        f"pixel ({entry['direct_multiplications']:,} on the photograph); as {rank} "
        f"separable term{'s' * (rank > 1)} {terms} per pixel "
        f"({entry['separable_multiplications']:,}), {verdict}. `sepconv.correlate` runs it "
        f"as '{entry['method']}'."
    )


def _gallery(entries: list[dict[str, Any]], pngs: dict[str, bytes]) -> str:
    items = [
        {
            "kernel": _data_uri(pngs[f"gallery/{i}-kernel"]),
            "response": _data_uri(pngs[f"gallery/{i}-response"]),
            "text": _inline(_gallery_text(entry)),
        }
        for i, entry in enumerate(entries)
    ]
    buttons = "".join(
        f'<button type="button" data-kernel="{i}" aria-pressed="{str(i == 0).lower()}">'
        f"{html.escape(entry['name'])}</button>"
        for i, entry in enumerate(entries)
    )
    data = json.dumps(items).replace("</", "<\\/")
    return (
        '<div class="gallery" id="gallery"><h3>Pick a kernel</h3>'
        "<p>Other kernels on the same photograph: the kernel, its response, its rank and what "
        "separating it saves.</p>"
        f'<div class="presets">{buttons}</div>'
        '<div class="gallery-view"><img id="gallery-kernel" alt="the chosen kernel" '
        f'src="{items[0]["kernel"]}"><img id="gallery-response" alt="the photograph filtered '
        f'with the chosen kernel" src="{items[0]["response"]}"></div>'
        f'<p id="gallery-text">{items[0]["text"]}</p>'
        f'<script type="application/json" id="gallery-data">{data}</script></div>'
    )


def render_html(steps: list[Any], pngs: dict[str, bytes], meta: dict[str, Any]) -> str:
    """The self-contained page: intro, table of contents, steps, calculator, summary."""
    script = resources.files(__package__).joinpath("calculator.js").read_text(encoding="utf-8")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        '<link rel="icon" href="data:,">',
        "<title>A tour of separable convolutions</title>",
        f"<style>{_CSS}</style></head><body><main>",
        "<h1>A tour of separable convolutions</h1>",
        f'<p class="meta">Written by <code>sepconv tour</code> (sepconv {meta["version"]}) '
        f"in {meta['seconds']:.1f} s; every number on this page comes from that run and is "
        "also in <code>report.json</code>.</p>",
    ]
    parts += [f"<p>{_inline(p.format(image=meta['image_description']))}</p>" for p in INTRO]
    parts.append(
        '<div class="summary"><strong>In this run</strong><ul>'
        + "".join(f"<li>{_inline(s.summary)}</li>" for s in steps)
        + "</ul></div>"
    )
    parts.append(
        "<nav><ol>"
        + "".join(f'<li><a href="#{s.key}">{html.escape(s.title)}</a></li>' for s in steps)
        + '<li><a href="#calculator">Try it: a cost calculator</a></li>'
        + '<li><a href="#summary">Summary</a></li></ol></nav>'
    )
    number = 0
    for n, step in enumerate(steps, 1):
        parts.append(f'<section id="{step.key}"><h2>{n}. {html.escape(step.title)}</h2>')
        parts += [f"<p>{_inline(p)}</p>" for p in step.paragraphs]
        for figure in step.figures:
            number += 1
            parts.append(
                f'<figure id="fig-{number}"><div class="scroll"><img src="'
                f'{_data_uri(pngs[figure.name])}" alt="{html.escape(figure.alt)}" '
                f'style="--w: {_png_width(pngs[figure.name])}px" loading="eager"></div>'
                f"<figcaption>Figure {number}. "
                f'{_inline(figure.caption)} <span class="hint">(Tap to enlarge, then '
                "scroll sideways.)</span></figcaption></figure>"
            )
        if step.key == "spatial" and "gallery/0-kernel" in pngs:
            parts.append(_gallery(step.numbers["gallery"], pngs))
        parts.append("</section>")
    parts.append(_calculator(meta["calculator_default"]))
    parts.append('<section id="summary"><h2>Summary</h2>')
    parts += [f"<p>{_inline(p.format(**meta['closing']))}</p>" for p in CLOSING]
    parts.append("</section>")
    parts.append(f'<p class="meta">{html.escape(meta["environment"])}</p>')
    parts.append(f"</main><script>{script}</script></body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(steps: list[Any], meta: dict[str, Any]) -> str:
    lines = [
        "# A tour of separable convolutions",
        "",
        f"Written by `sepconv tour` (sepconv {meta['version']}); every number was computed "
        "by that run and is also in [report.json](report.json). "
        "[report.html](report.html) is the same tour as one self-contained page, with an "
        "interactive cost calculator.",
        "",
    ]
    lines += [p.format(image=meta["image_description"]) + "\n" for p in INTRO]
    number = 0
    for n, step in enumerate(steps, 1):
        lines += [f"## {n}. {step.title}", ""]
        for p in step.paragraphs:
            lines += [p, ""]
        for figure in step.figures:
            number += 1
            lines += [
                f"![{figure.alt}]({figure.name})",
                "",
                f"*Figure {number}. {figure.caption}*",
                "",
            ]
    lines += ["## Summary", ""]
    lines += [p.format(**meta["closing"]) + "\n" for p in CLOSING]
    return "\n".join(lines).rstrip() + "\n"


def render_json(steps: list[Any], meta: dict[str, Any]) -> str:
    payload = {
        "sepconv": meta["version"],
        "image": meta["image"],
        "seconds": meta["seconds"],
        "steps": [
            {
                "key": s.key,
                "title": s.title,
                "summary": s.summary,
                "numbers": s.numbers,
                "figures": [f.name for f in s.figures],
            }
            for s in steps
        ],
        "calculator_default": meta["calculator_default"],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
