"""Benchmark the router on the CPU: accuracy on the held-out test file and latency per query (a batch of one).

The held-out file (`data/intents/test.jsonl`) was written apart from the training and validation examples and is
read only here. Latency is the wall time of `Router.predict(text)`, one message at a time, after a warm-up; the
first call after loading (cold) is reported separately. Targets (issue #6): p95 < 50 ms on this CPU, aim < 10 ms.

    python bench/router.py                        # writes bench/results/router_cpu.md
    python bench/router.py --smoke --out /tmp/x   # a few messages, to check the script runs
"""
import argparse, datetime, importlib.metadata, os, platform, sys, time
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")   # the router runs on the CPU; make sure nothing else is timed

from _common import ROOT, machine as bench_machine, write_results


def percentiles_ms(seconds, qs=(50, 95, 99)):
    import numpy as np
    return {q: 1e3 * float(np.percentile(seconds, q)) for q in qs}


def time_calls(router, texts, repeats):
    "Seconds per `router.predict` call, each text `repeats` times, one at a time."
    out = []
    for _ in range(repeats):
        for t in texts:
            t0 = time.perf_counter(); router.predict(t); out.append(time.perf_counter() - t0)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="router directory (default: the shipped router, data/models/router)")
    p.add_argument("--data", default=str(ROOT / "data" / "intents" / "test.jsonl"), help="held-out JSON-lines file")
    p.add_argument("--repeats", type=int, default=5, help="timed passes over the held-out messages")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--smoke", action="store_true", help="a few messages and one pass, to check the script runs")
    args = p.parse_args()

    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t0 = time.perf_counter()
    import torch
    from evotr_lib.assistant.router import Router, evaluate, load_intents
    from evotr_lib.assistant.registry import INTENTS
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter(); router = Router.load(args.model); load_s = time.perf_counter() - t0

    examples = load_intents(args.data)
    if args.smoke: examples = examples[::15]
    texts = [e.text for e in examples]
    t0 = time.perf_counter(); router.predict(texts[0]); cold_ms = 1e3 * (time.perf_counter() - t0)

    report = evaluate(router, examples)
    predictions = [router.predict(t) for t in texts]
    per_intent = {i: [p.intent == e.intent for p, e in zip(predictions, examples) if e.intent == i] for i in INTENTS}
    misrouted = [(e, p) for e, p in zip(examples, predictions) if p.intent != e.intent]

    repeats = 1 if args.smoke else args.repeats
    lat = percentiles_ms(time_calls(router, texts, repeats))
    long_text = "Bu kodda hata var, neden çalışmıyor? " + "x = 1\n" * 17_000          # > 100 KB
    lat_long = percentiles_ms(time_calls(router, [long_text], 3 if args.smoke else 30), qs=(50, 95))

    machine = bench_machine(model=True)
    versions = {name: importlib.metadata.version(name) for name in ("torch", "scikit-learn", "sentence-transformers")}
    ok = lambda good: "yes" if good else "NO"
    lines = [
        f"# Router on the CPU: {Path(args.data).name}", "",
        *(["**SMOKE RUN: a few messages, one pass; not a measurement.**", ""] if args.smoke else []),
        f"{datetime.date.today()}; {machine}; torch threads {torch.get_num_threads()}; load average at start {load_avg:.2f}; "
        f"Python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", "",
        f"Router: `{args.model or 'data/models/router (shipped)'}`, features {list(router.config.features)}, "
        f"threshold {router.threshold}, trained on {router.training.get('examples', '?')} examples.", "",
        "## Accuracy on the held-out file", "",
        "| examples | accuracy | accuracy (tr) | accuracy (en) | coverage at threshold | accuracy of routed |",
        "|---|---|---|---|---|---|",
        f"| {report['examples']} | {report['accuracy']:.3f} | {report['accuracy_by_lang'].get('tr', float('nan')):.3f} | "
        f"{report['accuracy_by_lang'].get('en', float('nan')):.3f} | {report['coverage']:.3f} | {report['routed_accuracy']:.3f} |", "",
        "| intent | examples | accuracy |", "|---|---|---|",
        *[f"| {i} | {len(v)} | {sum(v) / len(v):.3f} |" for i, v in per_intent.items() if v], "",
        "Misrouted: " + ("none." if not misrouted else "; ".join(
            f"{e.text[:60]!r} ({e.intent} -> {p.intent}, {p.confidence:.2f})" for e, p in misrouted)), "",
        "## Latency per query (batch of one)", "",
        f"Import {import_s:.1f} s, `Router.load()` {load_s:.2f} s, first `predict` after loading {cold_ms:.1f} ms.", "",
        "| input | calls | p50 ms | p95 ms | p99 ms | p95 < 50 ms | p95 < 10 ms (aim) |", "|---|---|---|---|---|---|---|",
        f"| held-out messages | {len(texts) * repeats} | {lat[50]:.2f} | {lat[95]:.2f} | {lat[99]:.2f} | {ok(lat[95] < 50)} | {ok(lat[95] < 10)} |",
        f"| one 100 KB message (clipped to {router.config.max_chars} chars) | {3 if args.smoke else 30} | {lat_long[50]:.2f} | "
        f"{lat_long[95]:.2f} | - | {ok(lat_long[95] < 50)} | {ok(lat_long[95] < 10)} |", "",
    ]
    path = write_results("router_cpu", lines, out=Path(args.out))
    print("\n".join(lines)); print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
