"""Train MM-Rec and the GPT baseline the same way and compare them.

Equal width, equal parameter count (`gpt_like`), equal tokens and steps, the same learning-rate sweep; each
model is reported at its best learning rate. Tasks:
  mqar   multi-query associative recall (Zoology), accuracy on fresh examples;   (L, pairs) settings below
The table and a plot go to bench/results/compare_<task>_<machine>.md/.png.

    python bench/compare.py --task mqar                 # CPU-sized defaults
    python bench/compare.py --task mqar --smoke --out /tmp/x
"""
import argparse, datetime, json, os, platform, re, sys, tempfile, time
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from evotr_lib.config import seed_everything
from evotr_lib.gpt import GPT, gpt_like
from evotr_lib.model import MMRecConfig, MMRecModel
from evotr_lib.tasks import IGNORE, mqar, mqar_accuracy
from evotr_lib.train import TrainConfig, Trainer


def labelled_loss(model, batch):
    "Cross-entropy on labelled positions only; batch (B, 2, L) = inputs, labels."
    logits = model(batch[:, 0])
    return F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1].flatten(), ignore_index=IGNORE)


def build(kind, mm_cfg, seq_len):
    seed_everything(0)
    return MMRecModel(mm_cfg) if kind == "mmrec" else GPT(gpt_like(mm_cfg, max_seq_len=seq_len))


def run_mqar(kind, mm_cfg, L, N, lr, steps, batch_size, device):
    model = build(kind, mm_cfg, L).to(device)
    def batch(step, micro):
        x, y = mqar(batch_size, L, N, vocab_size=mm_cfg.vocab_size, generator=torch.Generator().manual_seed(step))
        return torch.stack([x, y], 1)
    cfg = TrainConfig(max_steps=steps, lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 10), log_every=max(1, steps // 20), progress=False)
    with tempfile.TemporaryDirectory() as d:
        recs = Trainer(model, cfg, batch, d, loss_fn=labelled_loss).fit()
    x, y = mqar(256, L, N, vocab_size=mm_cfg.vocab_size, generator=torch.Generator().manual_seed(10**6))
    model.eval()
    return mqar_accuracy(model, x.to(device), y.to(device)), [(r["step"], r["loss"]) for r in recs], sum(p.numel() for p in model.parameters())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["mqar"], default="mqar")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.smoke: settings, lrs, steps, bs, dim = [(64, 4)], [3e-3], 3, 4, 32
    elif dev.type == "cuda": settings, lrs, steps, bs, dim = [(64, 4), (128, 8), (256, 16), (512, 64)], [3e-4, 1e-3, 3e-3], 2000, 64, 128
    else: settings, lrs, steps, bs, dim = [(64, 4), (128, 8)], [1e-3, 3e-3], 400, 32, 64
    vocab = 8192 if not args.smoke else 512
    rows, curves = [], {}
    for L, N in settings:
        mm_cfg = MMRecConfig(vocab_size=vocab, model_dim=dim, num_layers=2, num_heads=4, inner_dim=dim // 4, num_memories=4,
                             mem_dim=dim // 2, mem_slots=max(8, L // 8), chunk_size=8)
        for kind in ("mmrec", "gpt"):
            best = None
            for lr in lrs:
                t = time.perf_counter()
                acc, curve, n = run_mqar(kind, mm_cfg, L, N, lr, steps, bs, dev)
                print(f"L={L} pairs={N} {kind} lr={lr:g}: accuracy {acc:.3f} ({time.perf_counter() - t:.0f} s)", flush=True)
                if best is None or acc > best[0]: best = (acc, lr, n, curve)
            rows.append((L, N, kind, best[2], best[1], best[0])); curves[(L, N, kind)] = best[3]
    machine = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
    slug = re.sub(r"[^a-z0-9]+", "_", machine.lower()).strip("_")
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(settings), figsize=(4.5 * len(settings), 3.2), squeeze=False)
    for ax, (L, N) in zip(axes[0], settings):
        for kind in ("mmrec", "gpt"): ax.plot(*zip(*curves[(L, N, kind)]), label=kind)
        ax.set(title=f"MQAR L={L}, {N} pairs", xlabel="step", ylabel="loss on values"); ax.legend()
    plt.tight_layout(); fig.savefig(out / f"compare_{args.task}_{slug}.png", dpi=100)
    lines = [f"# MM-Rec vs GPT on {args.task.upper()}, {machine}", "",
             f"{datetime.date.today()}; width {dim}, 2 layers each, GPT layers chosen for equal parameters; vocabulary {vocab}; "
             f"{steps} steps of {bs} sequences; learning rates {lrs}, best shown; accuracy on 256 fresh examples."
             + (" SMOKE RUN: not a measurement." if args.smoke else ""), "",
             "| L | pairs | model | parameters | best lr | accuracy |", "|---|---|---|---|---|---|"]
    lines += [f"| {L} | {N} | {k} | {n:,} | {lr:g} | {acc:.3f} |" for L, N, k, n, lr, acc in rows]
    lines += ["", f"![training curves](compare_{args.task}_{slug}.png)"]
    (out / f"compare_{args.task}_{slug}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
