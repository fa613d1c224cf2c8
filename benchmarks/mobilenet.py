"""MobileNetV1 1.0-224 inference on the CPU: eager PyTorch, sepconv's fast path, onnxruntime,
Keras 3 (torch backend), side by side in one process.

Each round times every contender once (a few calls each, interleaved, so that load from other
processes hits them alike); the table shows the median over rounds, per image and per batch,
and the ratio ``contender time / fast path time`` (above 1: the fast path is faster). The first
call of the eager model is timed apart: its sepconv layers time their execution routes then
(``sepconv.nn._autotune``), so a whole model's first call takes far longer than the next.

- eager: ``mobilenet_v1().eval()`` under ``torch.inference_mode()``.
- fast path: ``sepconv.models.optimize_for_inference(model, example)`` (batch norm folded into
  the convolutions, static padding, channels-last, traced, frozen and converted for oneDNN);
  ``--compile`` adds its ``mode='compile'`` (torch.compile with freezing).
- onnxruntime: the same model exported with ``torch.onnx.export``, run by an
  ``InferenceSession`` with as many intra-op threads as PyTorch uses, not spinning between
  runs (``session.intra_op.allow_spinning = 0``).
- keras: ``keras.applications.MobileNet(weights=None)`` with ``KERAS_BACKEND=torch``.

Run: ``python benchmarks/mobilenet.py [--quick] [--repeat N] [--json PATH]``.
"""

from __future__ import annotations

import io
import os
import statistics
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

from _common import base_parser, machine, print_header, write_json  # noqa: E402


def _time_calls(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def _skip(peer: str, why: str, batch: int) -> None:
    if batch == 1:  # said once, not once per batch size
        print(f"skipped {peer}: {why}")


def _peer(module: str, peer: str, batch: int):  # noqa: ANN202 - a module or None
    """Import an optional peer; a missing one is left out with a line saying so."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        _skip(peer, f"{module} is not installed (pip install {module})", batch)
        return None


def _contenders(batch: int, skip_keras: bool, compile_too: bool) -> dict:
    import numpy as np
    import torch

    from sepconv.models import mobilenet_v1, optimize_for_inference
    from sepconv.nn import _autotune

    torch.manual_seed(0)
    net = mobilenet_v1().eval()
    x = torch.randn(batch, 3, 224, 224)
    # The eager model's first call (its layers' routes timed there) and the call where they
    # are timed again, warm, are timed before any other model runs: layers of one
    # configuration share their timings within a process.
    with torch.inference_mode():
        start = time.perf_counter()
        reference = net(x).numpy()
        first_call_s = time.perf_counter() - start
        for _ in range(_autotune.RETUNE_AT - 2):
            net(x)
        start = time.perf_counter()
        net(x)
        retune_call_s = time.perf_counter() - start
    out: dict = {}
    out["eager PyTorch"] = lambda: net(x)
    out["eager PyTorch"].first_call_s = first_call_s
    out["eager PyTorch"].retune_call_s = retune_call_s
    fast = optimize_for_inference(net, x)
    out["sepconv fast path"] = lambda: fast(x)
    if compile_too:
        compiled = optimize_for_inference(net, x, mode="compile")
        out["fast path, mode='compile'"] = lambda: compiled(x)

    x_np = x.numpy()
    session = None
    ort = _peer("onnxruntime", "onnxruntime", batch)
    if ort is not None:
        try:
            buffer = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    net, (x,), buffer, input_names=["input"], output_names=["logits"], dynamo=False
                )
        except ImportError as exc:  # the exporter's own dependency (onnx) is missing
            _skip("onnxruntime", f"torch.onnx.export needs {exc.name or exc}", batch)
        else:
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            # a spinning pool would keep the cores busy after each run, slowing the next
            # contender (eager PyTorch, 1.5-1.9 x its time alone on 2 cores)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(
                buffer.getvalue(), options, providers=["CPUExecutionProvider"]
            )
            out["onnxruntime"] = lambda: session.run(None, {"input": x_np})

    keras = None if skip_keras else _peer("keras", "Keras 3", batch)
    if keras is not None:
        if keras.backend.backend() != "torch":
            _skip("Keras 3", f"KERAS_BACKEND is {keras.backend.backend()!r}, not 'torch'", batch)
        else:
            kmodel = keras.applications.MobileNet(weights=None)
            x_nhwc = torch.from_numpy(np.ascontiguousarray(x_np.transpose(0, 2, 3, 1)))
            out["Keras 3 (torch backend)"] = lambda: kmodel(x_nhwc, training=False)
    # Check that the contenders compute the same function where weights are shared.
    with torch.inference_mode():
        np.testing.assert_allclose(fast(x).numpy(), reference, rtol=1e-3, atol=1e-3)
        if session is not None:
            np.testing.assert_allclose(
                session.run(None, {"input": x_np})[0], reference, rtol=1e-3, atol=1e-3
            )
    return out


def main() -> None:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--no-keras", action="store_true", help="leave out Keras")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time optimize_for_inference(mode='compile') (torch.compile)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="intra-op threads for PyTorch and onnxruntime (default: PyTorch's)",
    )
    parser.add_argument(
        "--calls",
        type=int,
        default=None,
        help="calls per contender per round (default: 5 at batch 1, 2 at 8)",
    )
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine("torch", "onnxruntime", "keras")
    info["torch_threads"] = torch.get_num_threads()
    print_header("MobileNetV1 1.0-224 inference, CPU (milliseconds, median over rounds)", info)
    batches = (1,) if args.quick else (1, 8)
    rounds = 3 if args.quick else args.repeat
    results = []
    for batch in batches:
        contenders = _contenders(batch, args.no_keras, args.compile)
        calls = args.calls or (5 if batch == 1 else 2)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        with torch.inference_mode():
            for fn in contenders.values():
                for _ in range(3):
                    fn()
            for _ in range(rounds):
                for name, fn in contenders.items():
                    times[name].append(_time_calls(fn, calls))
        fast = statistics.median(times["sepconv fast path"])
        for name, values in times.items():
            median = statistics.median(values)
            results.append(
                {
                    "batch": batch,
                    "contender": name,
                    "median_s": median,
                    "min_s": min(values),
                    "per_image_s": median / batch,
                    "ratio_vs_fast_path": median / fast,
                    "rounds": rounds,
                    "calls_per_round": calls,
                    "first_call_s": getattr(contenders[name], "first_call_s", None),
                    "retune_call_s": getattr(contenders[name], "retune_call_s", None),
                }
            )

    rows = [
        [
            r["contender"],
            str(r["batch"]),
            f"{1000 * r['median_s']:.2f}",
            f"{1000 * r['min_s']:.2f}",
            f"{1000 * r['per_image_s']:.2f}",
            f"{r['ratio_vs_fast_path']:.2f}",
        ]
        for r in results
    ]
    from _common import format_table

    print(
        format_table(
            ["contender", "batch", "median ms", "min ms", "ms / image", "time / fast path"], rows
        )
    )
    print()
    for batch in batches:
        by = {r["contender"]: r["median_s"] for r in results if r["batch"] == batch}
        eager = f"eager / fast path = {by['eager PyTorch'] / by['sepconv fast path']:.2f}"
        if "onnxruntime" not in by:
            print(f"batch {batch}: {eager} (onnxruntime skipped)")
            continue
        ratio = by["sepconv fast path"] / by["onnxruntime"]
        target = " (target <= 1.2)" if batch == 1 else ""
        print(f"batch {batch}: fast path / onnxruntime = {ratio:.2f}{target}; {eager}")
    from sepconv.nn import _autotune

    for r in results:
        if r["first_call_s"] is not None:
            print(
                f"batch {r['batch']}: {r['contender']}'s first call {r['first_call_s']:.2f} s "
                f"(its layers' routes timed there), call {_autotune.RETUNE_AT} "
                f"{r['retune_call_s']:.2f} s (timed again, warm), later calls "
                f"{1000 * r['median_s']:.2f} ms"
            )
    write_json(args.json, {"benchmark": "mobilenet", "machine": info, "results": results})


if __name__ == "__main__":
    main()
