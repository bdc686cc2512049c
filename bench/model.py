"""Benchmark one MM-Rec layer against one SDPA (FlashAttention) transformer layer of the same width.

Forward + backward in bf16 at sequence lengths 2K..32K: tokens/s and peak GPU memory (and memory per token).
Target (issue #4): >= 3x the transformer's tokens/s at 32K, with memory per token flat in L.

    python bench/model.py                        # on a CUDA machine; writes bench/results/model_<gpu>.md
    python bench/model.py --smoke --out /tmp/x   # tiny sizes on any machine
"""
import argparse, datetime, importlib.metadata, os, platform, re, sys, time
from pathlib import Path

import torch

from _common import machine as bench_machine, machine_slug, write_results
from evotr_lib.block import Block
from evotr_lib.lm.gpt import gpt_block
from evotr_lib.mmrec.layer import MMRecMixer


def measure(layer, B, L, D, dtype, dev, reps):
    "(tokens/s, peak memory in bytes beyond the parameters) of forward + backward."
    x = torch.randn(B, L, D, device=dev, dtype=dtype, requires_grad=True)
    dy = torch.randn(B, L, D, device=dev, dtype=dtype)
    def run():
        y, _ = layer(x)
        torch.autograd.grad(y, [x, *layer.parameters()], dy)
    run()
    if dev.type == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); run()
        if dev.type == "cuda": torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() - base if dev.type == "cuda" else None
    return B * L / sorted(ts)[len(ts) // 2], peak


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--smoke", action="store_true", help="tiny sizes, any device (for CI)")
    args = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.smoke: B, D, H, Ls, dtype, reps = 1, 32, 4, [128, 256], torch.float32, 2
    else:
        if dev.type != "cuda": sys.exit("bench/model.py measures GPU throughput: run it on a CUDA machine (or use --smoke)")
        B, D, H, Ls, dtype, reps = 1, 1024, 16, [2048, 4096, 8192, 16384, 32768], torch.bfloat16, 10
    mixer = MMRecMixer(D, D // 8, H, num_memories=4, mem_dim=D // 8, mem_slots=64, chunk_size=64)
    mmrec, gpt = Block(D, mixer).to(dev, dtype), gpt_block(D, H).to(dev, dtype)   # the same MLP (default width)
    n_mm, n_gpt = (sum(q.numel() for q in m.parameters()) for m in (mmrec, gpt))
    rows = []
    for L in Ls:
        (tm, mm_mem), (tg, g_mem) = measure(mmrec, B, L, D, dtype, dev, reps), measure(gpt, B, L, D, dtype, dev, reps)
        rows.append((L, tm, tg, mm_mem, g_mem))
    machine = bench_machine(dev)
    mib = lambda b: "" if b is None else f"{b / 2**20:.0f}"
    per_tok = lambda b, L: "" if b is None else f"{b / L / 1024:.1f}"
    lines = [f"# MM-Rec layer vs SDPA transformer layer on {machine}", "",
             f"{datetime.date.today()}; torch {torch.__version__}; width {D}, {H} heads, B={B}, {str(dtype).removeprefix('torch.')}, "
             f"forward + backward; parameters: MM-Rec {n_mm / 1e6:.1f} M, transformer {n_gpt / 1e6:.1f} M."
             + (" SMOKE RUN: tiny sizes, not a measurement." if args.smoke else ""), "",
             "| L | MM-Rec tok/s | transformer tok/s | speed-up | MM-Rec peak MiB | KiB/token | transformer peak MiB | KiB/token |",
             "|---|---|---|---|---|---|---|---|"]
    for L, tm, tg, mm_mem, g_mem in rows:
        lines.append(f"| {L} | {tm:,.0f} | {tg:,.0f} | {tm / tg:.2f}x | {mib(mm_mem)} | {per_tok(mm_mem, L)} | {mib(g_mem)} | {per_tok(g_mem, L)} |")
    path = write_results(f"model_{machine_slug(dev)}", lines, out=Path(args.out))
    print("\n".join(lines)); print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
