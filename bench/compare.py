"""Train MM-Rec and the GPT baseline the same way and compare them.

Equal width, equal parameter count (`gpt_like`), equal tokens and steps, the same learning-rate sweep; each
model is reported at its best learning rate. Tasks:
  mqar   multi-query associative recall (Zoology), accuracy on held-out examples, for the GPT and each MM-Rec
         memory variant (--variants); every run is kept in --work and resumes there; the best runs also go to
         bench/results/mqar.json (one row per model, variant, setting, regime and machine).
         --regime fresh (default): new examples with random filler at every step;
         --regime zoology: the Zoology paper's Figure 2 setting, a fixed training set (--train-examples, 100,000)
         read for many epochs, filler off, 3,000 test examples
  passkey  passkey retrieval: trained at one length, scored at that length and at longer ones (length generalisation;
         the GPT's learned positions beyond the training length are never trained)
  lm     language modelling on the Turkish + Python corpus (BPE 8192): a short learning-rate sweep scored by
         validation bits per byte, then a full run of each model at its best rate, scored on the test split.
         --variants and --width: the MM-Rec memory variants at the MQAR models' size, at equal tokens
         (bench/results/compare_lm_memory_<machine>.md).
         `--ship DIR` exports the MM-Rec run as the assistant's default model (evotr_lib.lm.train.export_lm).
The table and a plot go to bench/results/compare_<task>_<machine>.md/.png (mqar: compare_mqar[_zoology]_<steps>_steps_<machine>).

    python bench/compare.py --task mqar                 # CPU-sized defaults
    python bench/compare.py --task mqar --regime zoology --steps 20000 --work runs/mqar   # the paper's data regime (GPU)
    python bench/compare.py --task lm --ship data/models/mmrec-default
    python bench/compare.py --task mqar --smoke --out /tmp/x
"""
import argparse, datetime, json, os, platform, re, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from _common import machine as bench_machine, machine_slug, write_results
from evotr_lib.config import atomic_write_text, seed_everything
from evotr_lib.lm.gpt import GPT, gpt_like
from evotr_lib.mmrec.model import MMRecConfig, MMRecModel
from evotr_lib.lm.tasks import IGNORE, mqar, mqar_accuracy, passkey, passkey_accuracy
from evotr_lib.lm.train import RunConfig, TrainConfig, Trainer, evaluate_bpb, export_lm, load_run, read_metrics, train_lm


def labelled_loss(model, batch):
    "Cross-entropy on labelled positions only; batch (B, 2, L) = inputs, labels."
    logits = model(batch[:, 0])
    return F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1].flatten(), ignore_index=IGNORE)


def build(kind, mm_cfg, max_len):
    seed_everything(0)
    return MMRecModel(mm_cfg) if kind == "mmrec" else GPT(gpt_like(mm_cfg, max_seq_len=max_len))


def fixed_set_batches(inputs, labels, batch_size):
    "batch(step, micro) over a fixed set read epoch after epoch, each epoch in its own shuffled order."
    data = torch.stack([inputs, labels], 1).to(torch.int16)                # (n, 2, L): 100K x 512 in 200 MB
    per_epoch = len(data) // batch_size
    def batch(step, micro):
        epoch, i = divmod(step, per_epoch)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch))
        return data[order[i * batch_size:(i + 1) * batch_size]].long()
    return batch


def fresh_batches(make_examples, batch_size):
    "batch(step, micro) of new examples at every step: `make_examples(n, generator) -> (ids, labels)`, seeded by the step."
    return lambda step, micro: torch.stack(make_examples(batch_size, torch.Generator().manual_seed(step)), 1)


def training_seconds(records) -> float:
    "The training time of a run from its metrics records; each session's clock restarts, so add up their last readings."
    times = [r["time"] for r in records if "time" in r]
    return sum(t for t, nxt in zip(times, times[1:] + [0.0]) if nxt < t)


def train_labelled(kind, mm_cfg, make_examples, lr, steps, batch_size, max_len, device):
    "Train on fresh examples from `make_examples(n, generator) -> (ids, labels)` every step; returns (model, loss curve)."
    model = build(kind, mm_cfg, max_len).to(device)
    batch = fresh_batches(make_examples, batch_size)
    cfg = TrainConfig(max_steps=steps, lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 10), log_every=max(1, steps // 20), progress=False)
    with tempfile.TemporaryDirectory() as d:
        recs = Trainer(model, cfg, batch, d, loss_fn=labelled_loss).fit()
    return model.eval(), [(r["step"], r["loss"]) for r in recs]


def sweep(kind, lrs, train, score, label):
    "Train at every learning rate and keep the best run by `score(model)` (a number, or a tuple whose first item is compared)."
    best = None
    for lr in lrs:
        t = time.perf_counter()
        model, curve = train(lr)
        result = score(model)
        print(f"{label} {kind} lr={lr:g}: {result} ({time.perf_counter() - t:.0f} s)", flush=True)
        key = result[0] if isinstance(result, tuple) else result
        if best is None or key > best[0]: best = (key, lr, result, curve, model.num_parameters())
    return best


def write_table(out, name, title, desc, header, rows, curves, smoke, ylabel="loss on labelled positions", json_rows=None):
    "The results file, its curves plot (`curves` maps a panel title to {model: [(step, loss)]}) and `json_rows` as <name>.json."
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.2), squeeze=False)
    colour = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(m for by_model in curves.values() for m in by_model))}   # one per model
    for ax, (panel, by_model) in zip(axes[0], curves.items()):
        for kind, curve in by_model.items(): ax.plot(*zip(*curve), label=kind, color=colour[kind])
        ax.set(title=panel, xlabel="step", ylabel=ylabel); ax.legend()
    plt.tight_layout(); fig.savefig(out / f"{name}.png", dpi=100)
    lines = [f"# {title}", "", f"{datetime.date.today()}; {desc}" + (" SMOKE RUN: not a measurement." if smoke else ""), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    lines += ["", f"![training curves]({name}.png)"]
    write_results(name, lines, rows=json_rows, out=out)
    print("\n".join(lines))


MQAR_VARIANTS = {"chunk-mean": {}, "conv": dict(mem_conv=2), "delta": dict(delta_memory=True),
                 "conv+delta": dict(mem_conv=2, delta_memory=True)}   # 14_layer's memory variants; chunk-mean is the design's
SHIPPED_VARIANT = "conv+delta"   # the memory of the shipped default model (data/models/mmrec-default), chosen on MQAR and bpb (#18)


def mqar_examples(n, L, N, vocab, filler, seed, chunk=5000):
    "`n` MQAR examples drawn `chunk` at a time (the generator's (chunk, vocab/2) draw stays small)."
    g = torch.Generator().manual_seed(seed)
    parts = [mqar(min(chunk, n - i), L, N, vocab_size=vocab, random_non_queries=filler, generator=g) for i in range(0, n, chunk)]
    return torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts])


def mqar_job(kind, variant, mm_cfg, L, N, p, lr, run_dir):
    """Train (or resume) one MQAR run in `run_dir` and score it; the result is kept in run_dir/result.json, so a finished
    run is read back and an interrupted one continues from its last checkpoint (every tenth of the steps)."""
    torch.set_num_threads(p["threads"])
    run_dir = Path(run_dir); done = run_dir / "result.json"
    if done.is_file(): return json.loads(done.read_text())
    dev = torch.device(p["device"])
    model = build(kind, mm_cfg, L).to(dev)
    if p["regime"] == "zoology":
        batch = fixed_set_batches(*mqar_examples(p["train_examples"], L, N, p["vocab"], filler=False, seed=0), p["batch_size"])
    else: batch = fresh_batches(lambda n, g: mqar(n, L, N, vocab_size=p["vocab"], generator=g), p["batch_size"])
    steps = p["steps"]
    cfg = TrainConfig(max_steps=steps, lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 10), log_every=max(1, steps // 50),
                      ckpt_every=max(1, steps // 10), progress=False)
    trainer = Trainer(model, cfg, batch, run_dir, loss_fn=labelled_loss)
    if (run_dir / "checkpoints" / "latest").exists(): trainer.load_checkpoint()
    trainer.fit()
    x, y = mqar_examples(p["test_examples"], L, N, p["vocab"], filler=p["regime"] == "fresh", seed=10**6)
    recs = read_metrics(run_dir / "metrics.jsonl")
    result = dict(model=kind, variant=variant, seq_len=L, num_kv_pairs=N, accuracy=round(mqar_accuracy(model.eval(), x.to(dev), y.to(dev)), 4),
                  parameters=model.num_parameters(), steps=steps, lr=lr, regime=p["regime"], vocab_size=p["vocab"],
                  batch_size=p["batch_size"], model_dim=mm_cfg.model_dim, machine=p["machine"],
                  seconds=round(training_seconds(recs)),
                  curve=[(r["step"], r["loss"]) for r in recs if "loss" in r])
    atomic_write_text(done, json.dumps(result) + "\n")
    return result


def mqar_task(args, dev, machine, slug, out, work):
    if args.smoke: settings, lrs, steps, bs, dim, vocab = [(64, 4)], [3e-3], 3, 4, 32, 512
    elif dev.type == "cuda": settings, lrs, steps, bs, dim, vocab = [(64, 4), (128, 8), (256, 16), (512, 64)], [3e-4, 1e-3, 3e-3], 2000, 64, 128, 8192
    else: settings, lrs, steps, bs, dim, vocab = [(64, 4), (128, 8)], [3e-3], 1500, 32, 64, 512
    settings = [tuple(map(int, s.split("x"))) for s in args.settings.split(",")] if args.settings else settings
    lrs = [float(x) for x in args.lrs.split(",")] if args.lrs else lrs
    steps, vocab, dim = args.steps or steps, args.vocab or vocab, args.width or dim
    variants = args.variants.split(",") if args.variants else list(MQAR_VARIANTS)
    unknown = set(variants) - set(MQAR_VARIANTS)
    if unknown: raise SystemExit(f"unknown --variants {sorted(unknown)}; choose from {list(MQAR_VARIANTS)}")
    zoology = args.regime == "zoology"
    p = dict(regime=args.regime, vocab=vocab, steps=steps, batch_size=bs, device=dev.type, machine=machine, threads=1 if dev.type == "cpu" else 4,
             train_examples=min(args.train_examples, 64) if args.smoke else args.train_examples,
             test_examples=(3000 if zoology else 256) if not args.smoke else 64)
    models = ([("gpt", "-")] if not args.no_gpt else []) + [("mmrec", v) for v in variants]
    jobs = []
    for L, N in settings:
        base = MMRecConfig(vocab_size=vocab, model_dim=dim, num_layers=2, num_heads=4, inner_dim=dim // 4, num_memories=4,
                           mem_dim=dim // 2, mem_slots=max(8, L // 8), chunk_size=8)   # the GPT matches the chunk-mean model
        for kind, variant in models:
            cfg = base if kind == "gpt" else base.replace(**MQAR_VARIANTS[variant])
            for lr in lrs:
                jobs.append((kind, variant, cfg, L, N, p, lr,
                             work / f"mqar_{args.regime}_v{vocab}_w{dim}_{L}x{N}_{kind}_{variant}_lr{lr:g}_{steps}"))
    with ProcessPoolExecutor(args.jobs or 1, mp_context=torch.multiprocessing.get_context("spawn")) as pool:
        results = [f.result() for f in [pool.submit(mqar_job, *j) for j in jobs]]
    for r in results:
        print(f"L={r['seq_len']} pairs={r['num_kv_pairs']} {r['model']} {r['variant']} lr={r['lr']:g}: {r['accuracy']:.3f} ({r['seconds']} s)", flush=True)
    protocol = lambda r: (r["regime"], r["vocab_size"], r["steps"], r["batch_size"], r["model_dim"], r["machine"])
    same = lambda r: protocol(r) == (p["regime"], p["vocab"], steps, bs, dim, machine)
    mine = {j[-1] / "result.json" for j in jobs}
    results += [r for f in sorted(work.glob("mqar_*/result.json")) if f not in mine and same(r := json.loads(f.read_text()))]   # earlier runs, same protocol
    best = {}
    for r in sorted(results, key=lambda r: (r["seq_len"], r["model"] != "gpt", list(MQAR_VARIANTS).index(r["variant"]) if r["variant"] in MQAR_VARIANTS else 0)):
        key = (r["seq_len"], r["num_kv_pairs"], r["model"], r["variant"])
        if key not in best or r["accuracy"] > best[key]["accuracy"]: best[key] = r
    rows = [(L, N, kind, var, f"{r['parameters']:,}", f"{r['lr']:g}", f"{r['seconds'] / 60:.1f} min", f"{r['accuracy']:.3f}")
            for (L, N, kind, var), r in best.items()]
    curves = {}
    for (L, N, kind, var), r in best.items(): curves.setdefault(f"MQAR L={L}, {N} pairs", {})[kind if kind == "gpt" else f"mmrec {var}"] = r["curve"]
    data = (f"a fixed training set of {p['train_examples']:,} examples without filler, read for {steps * bs / max(p['train_examples'], 1):.1f} epochs "
            f"(the Zoology paper's regime); accuracy on {p['test_examples']:,} other examples" if zoology else
            f"fresh examples with random filler at every step; accuracy on {p['test_examples']} other examples with filler")
    name = f"compare_mqar{'_zoology' if zoology else ''}_{steps}_steps_{slug}"
    write_table(out, name, f"MM-Rec memory variants vs GPT on MQAR, {machine}",
                f"width {dim}, 2 layers each (MM-Rec: 4 memory banks of {dim // 2}, chunks of 8, slots L/8), GPT layers chosen for the parameters "
                f"of the chunk-mean MM-Rec; vocabulary {vocab}; {steps} steps of {bs} sequences (warmup 10%, cosine to lr/10); learning rates {lrs}, "
                f"best shown; {data}. Runs are resumable (`--work`), and the table holds every finished run of this protocol in the work folder; train time is per run, {p['threads']} thread(s) each, measured while other runs may have shared the machine.",
                ["L", "pairs", "model", "memory variant", "parameters", "best lr", "train time", "accuracy"], rows, curves, args.smoke)
    if not args.smoke: record_mqar(out / "mqar.json", [{k: v for k, v in r.items() if k != "curve"} for r in best.values()])


def record_mqar(path, rows):
    "Merge `rows` into the list in `path`: a row replaces an earlier one of the same model, variant, setting, steps, regime, vocabulary, width and machine."
    key = lambda r: tuple(r.get(k) for k in ("model", "variant", "seq_len", "num_kv_pairs", "steps", "regime", "vocab_size", "model_dim", "machine"))
    old = json.loads(path.read_text()) if path.is_file() else []
    new = {key(r) for r in rows}
    merged = sorted([r for r in old if key(r) not in new] + rows, key=lambda r: (r["regime"], r["seq_len"], r["steps"], r["model"], r["variant"]))
    atomic_write_text(path, json.dumps(merged, indent=1) + "\n")


def passkey_task(args, dev, machine, slug, out):
    if args.smoke: train_len, test_lens, lrs, steps, bs, dim, vocab = 32, [32, 64], [3e-3], 3, 4, 32, 32
    elif dev.type == "cuda": train_len, test_lens, lrs, steps, bs, dim, vocab = 1024, [1024, 4096, 16384, 32768], [1e-3, 3e-3], 2000, 32, 128, 256
    else: train_len, test_lens, lrs, steps, bs, dim, vocab = 128, [128, 256, 512, 1024], [1e-3, 3e-3], 300, 32, 64, 64
    mm_cfg = MMRecConfig(vocab_size=vocab, model_dim=dim, num_layers=2, num_heads=4, inner_dim=dim // 4, num_memories=4,
                         mem_dim=dim // 2, mem_slots=16, chunk_size=16)
    tests = {L: passkey(64, L, vocab, generator=torch.Generator().manual_seed(10**6 + L)) for L in test_lens}
    score = lambda m: tuple(passkey_accuracy(m, ids.to(dev), lab.to(dev)) for ids, lab in tests.values())
    rows, curves = [], {}
    for kind in ("mmrec", "gpt"):
        _, lr, accs, curve, n = sweep(kind, lrs, lambda lr: train_labelled(kind, mm_cfg, lambda k, g: passkey(k, train_len, vocab, generator=g),
                                                                          lr, steps, bs, max(test_lens), dev), score, "passkey")
        rows.append((kind, f"{n:,}", f"{lr:g}", *(f"{a:.2f}" for a in accs))); curves.setdefault(f"passkey, trained at L={train_len}", {})[kind] = curve
    write_table(out, f"compare_passkey_{slug}", f"MM-Rec vs GPT on passkey retrieval, {machine}",
                f"a 5-digit key at a random depth in random filler (vocabulary {vocab}), asked for at the end; trained at L={train_len} for "
                f"{steps} steps of {bs} sequences, learning rates {lrs} (best by accuracy at L={train_len}); width {dim}, 2 MM-Rec layers, "
                f"GPT layers chosen for equal parameters, its learned positions sized for the longest test. Accuracy: whole key right, 64 examples per length.",
                ["model", "parameters", "best lr", *(f"L={L}" for L in test_lens)], rows, curves, args.smoke)


def lm_run(kind, mm_over, lr, steps, size):
    "The RunConfig of one LM job; the GPT gets `gpt_like` the MM-Rec config (same width, layers added for equal parameters)."
    from evotr_lib.lm.tokenizers import get_tokenizer
    model_config = mm_over if kind == "mmrec" else gpt_like(MMRecConfig(**mm_over, vocab_size=get_tokenizer(size["tokenizer"]).vocab_size),
                                                            max_seq_len=size["seq_len"]).to_dict()
    return RunConfig(model=kind, corpus="tr+python", tokenizer=size["tokenizer"], seq_len=size["seq_len"], batch_size=size["batch_size"],
                     eval_batches=size["eval_batches"], model_config=model_config,
                     train=dict(max_steps=steps, lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 20), log_every=max(1, steps // 50),
                                eval_every=max(1, steps // 5), ckpt_every=max(1, steps // 5), progress=False))


def lm_job(kind, mm_over, lr, steps, size, out_dir, split):
    "Train (or resume) one LM run in `out_dir` and score it on `split`; `seconds` is the training time of all its sessions."
    torch.set_num_threads(size["threads"])
    train_lm(lm_run(kind, mm_over, lr, steps, size), out_dir, resume=True)
    score = evaluate_bpb(out_dir, split=split, max_batches=size["score_batches"])
    recs = read_metrics(Path(out_dir) / "metrics.jsonl")
    n = sum(p.numel() for p in load_run(out_dir)[0].parameters())
    seconds = training_seconds(recs)
    return dict(kind=kind, lr=lr, steps=steps, split=split, bpb=score["bpb"], params=n, seconds=seconds,
                tokens=steps * size["batch_size"] * size["seq_len"], train=[(r["step"], r["loss"]) for r in recs if "loss" in r],
                val=[(r["step"], r["val_loss"]) for r in recs if "val_loss" in r])


def run_lm_task(args, dev, work):
    """Sweep, then full runs of the GPT and each MM-Rec variant (--variants, default the shipped model's); returns the
    table rows, the curves, the JSON records, the description of the setting and the run to ship."""
    if args.smoke:
        size = dict(tokenizer="bpe8192", seq_len=32, batch_size=4, eval_batches=1, score_batches=2, threads=1)
        mm_over, lrs, sweep_steps, steps = dict(model_dim=32, num_layers=1, num_heads=2, inner_dim=8, mem_dim=8, mem_slots=2, chunk_size=8), [3e-3], 2, 3
    elif dev.type == "cuda":
        size = dict(tokenizer="bpe8192", seq_len=512, batch_size=64, eval_batches=16, score_batches=None, threads=4)
        mm_over, lrs, sweep_steps, steps = dict(model_dim=160, num_layers=5, num_heads=4, inner_dim=40, mem_dim=40, mem_slots=16, chunk_size=64), [1e-3, 2e-3, 4e-3], 500, 4000
    else:   # this 2-core CPU: the shipped default model (<= 16 MB of fp32 weights)
        size = dict(tokenizer="bpe8192", seq_len=256, batch_size=16, eval_batches=8, score_batches=None, threads=1)
        mm_over, lrs, sweep_steps, steps = dict(model_dim=160, num_layers=5, num_heads=4, inner_dim=40, mem_dim=40, mem_slots=16, chunk_size=64), [1e-3, 3e-3], 100, 400
    if args.width:   # the MQAR models: 2 layers of this width, 4 banks, chunks of 8 (bench/results/mqar.json)
        mm_over = dict(model_dim=args.width, num_layers=2, num_heads=4, inner_dim=args.width // 4, num_memories=4, mem_dim=args.width // 2,
                       mem_slots=size["seq_len"] // 8, chunk_size=8)
    lrs, steps = [float(x) for x in args.lrs.split(",")] if args.lrs else lrs, args.steps or steps
    variants = args.variants.split(",") if args.variants else [SHIPPED_VARIANT]
    models = {f"mmrec {v}" if len(variants) > 1 else "mmrec": ("mmrec", {**mm_over, **MQAR_VARIANTS[v]}) for v in variants}
    if not args.no_gpt: models["gpt"] = ("gpt", mm_over)                        # sized like the chunk-mean MM-Rec
    slug = lambda name: name.replace(" ", "_")
    jobs = args.jobs or (1 if args.smoke else 2)
    with ProcessPoolExecutor(jobs, mp_context=torch.multiprocessing.get_context("spawn")) as pool:
        if len(lrs) > 1:
            sweep = {(name, lr): pool.submit(lm_job, kind, over, lr, sweep_steps, size, f"{work}/sweep_{slug(name)}_{lr:g}", "validation")
                     for name, (kind, over) in models.items() for lr in lrs}
            sweep = {key: f.result() for key, f in sweep.items()}
            for (name, lr), r in sweep.items(): print(f"sweep {name} lr={lr:g}: validation bpb {r['bpb']:.3f} ({r['seconds']:.0f} s)", flush=True)
            best = {name: min(lrs, key=lambda lr: sweep[name, lr]["bpb"]) for name in models}
        else: sweep, best = {}, {name: lrs[0] for name in models}
        final = {name: pool.submit(lm_job, kind, over, best[name], steps, size, f"{work}/final_{slug(name)}", "test")
                 for name, (kind, over) in models.items()}
        final = {name: f.result() for name, f in final.items()}
    for name, r in final.items(): print(f"final {name} lr={r['lr']:g}: test bpb {r['bpb']:.3f} ({r['seconds']:.0f} s)", flush=True)
    plan = (f"learning-rate sweep {lrs} for {sweep_steps} steps scored by validation bits per byte, then {steps} steps at the best rate"
            if sweep else f"{steps} steps at lr {lrs[0]:g}")
    desc = (f"Turkish + Python corpus, BPE 8192, sequences of {size['seq_len']}, batches of {size['batch_size']}; MM-Rec {mm_over}"
            + (f", memory variant{'s' * (len(variants) > 1)} {', '.join(variants)} (14_layer)" if args.variants else "")
            + f"; {plan} (warmup 5%, cosine to lr/10), scored on the whole test split."
            + (" The GPT baseline is not trained in this call (--no-gpt)." if args.no_gpt else ""))
    rows = [(name, f"{r['params']:,}", ", ".join(f"{lr:g}: {sweep[name, lr]['bpb']:.3f}" for lr in lrs) if sweep else "-", f"{r['lr']:g}",
             f"{r['tokens']:,}", f"{r['seconds'] / 60:.1f} min", f"{r['bpb']:.3f}") for name, r in final.items()]
    curves = {"training loss": {name: r["train"] for name, r in final.items()}, "validation loss": {name: r["val"] for name, r in final.items()}}
    records = [dict(model=name, parameters=r["params"], lr=r["lr"], steps=r["steps"], tokens=r["tokens"], test_bpb=round(r["bpb"], 4),
                    seconds=round(r["seconds"])) for name, r in final.items()]
    return rows, curves, records, desc, work / f"final_{slug(next(iter(models)))}"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["mqar", "passkey", "lm"], default="mqar")
    p.add_argument("--ship", help="lm: export the MM-Rec run to this model folder (the assistant's default: data/models/mmrec-default)")
    p.add_argument("--work", help="mqar, lm: keep the runs in this folder, so that running again resumes them (default: a temporary one)")
    p.add_argument("--jobs", type=int, default=0, help="mqar, lm: runs trained side by side (default: mqar 1, lm 2, 1 with --smoke)")
    p.add_argument("--settings", help="mqar: comma-separated LxPAIRS, e.g. 64x4,128x8 (default: by device)")
    p.add_argument("--variants", help=f"mqar, lm: MM-Rec memory variants to train, comma-separated (of {list(MQAR_VARIANTS)}; default: mqar all, lm the shipped model's)")
    p.add_argument("--no-gpt", action="store_true", help="mqar, lm: leave out the GPT baseline")
    p.add_argument("--lrs", help="mqar, lm: comma-separated learning rates (default: by device; lm with one rate: no sweep)")
    p.add_argument("--vocab", type=int, default=0, help="mqar: vocabulary size (default: 8192 on GPU as Zoology, 512 on CPU)")
    p.add_argument("--width", type=int, default=0, help="mqar: model width (default: 128 on GPU, 64 on CPU); lm: train the MQAR models, 2 layers of this width")
    p.add_argument("--regime", choices=["fresh", "zoology"], default="fresh",
                   help="mqar: fresh examples with filler every step, or the Zoology paper's fixed set without filler")
    p.add_argument("--train-examples", type=int, default=100_000, help="mqar --regime zoology: size of the training set")
    p.add_argument("--steps", type=int, default=0, help="mqar, lm: training steps per run (default: by device)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    machine, slug = bench_machine(dev), machine_slug(dev)
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    if args.task == "passkey": return passkey_task(args, dev, machine, slug, out)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp); work.mkdir(parents=True, exist_ok=True)
        if args.task == "mqar": return mqar_task(args, dev, machine, slug, out, work)
        rows, curves, records, desc, ship_run = run_lm_task(args, dev, work)
        name = (f"compare_lm_memory_{slug}" if args.width else f"compare_lm_{args.variants.replace(',', '_').replace('+', '_')}_{slug}"
                if args.variants else f"compare_lm_{slug}")                       # variants: their own file
        write_table(out, name, f"MM-Rec vs GPT on language modelling, {machine}", desc,
                    ["model", "parameters", "sweep: validation bpb by lr", "best lr", "tokens", "train time", "test bpb"], rows, curves,
                    args.smoke, ylabel="loss (nats/token)", json_rows=[{**r, "machine": machine} for r in records])
        if args.ship:
            scores = {f"test_bpb_{r['model'].replace(' ', '_')}": r["test_bpb"] for r in records} | {"trained_on": machine, "results": f"bench/results/{name}.md"}
            print("exported the MM-Rec model to", export_lm(ship_run, args.ship, scores=scores))

if __name__ == "__main__":
    main()
