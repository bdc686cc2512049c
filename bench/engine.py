"""Inference engines on this machine: load time, first-token latency, decode speed and expert swap latency per backend,
and the shipped experts' validation loss against the base model.

    python bench/engine.py            # mmrec: the shipped model and experts; transformers and mlx: a random Qwen2 of about the same size
    python bench/engine.py --smoke    # tiny models and a few tokens (CI): checks that the script runs, measures nothing

There is no real Hugging Face / MLX model on this offline machine, so transformers and mlx run a random Qwen2 of about the shipped
MM-Rec model's size (5 layers of width 160, BPE 8192): their numbers are the engines' own per-token cost at this size, not a
real model's. Results: bench/results/engine_<machine>.md.
"""
import argparse, contextlib, datetime, io, os, platform, re, statistics, sys, tempfile, time, warnings
from pathlib import Path

import torch

from evotr_lib.lm.corpus import load_corpus
from evotr_lib.assistant.engine import MLXEngine, MMRecEngine, TransformersEngine, mlx_fingerprint, train_mlx_lora
from evotr_lib.assistant.lora import LoRAManager, domain_loss, model_fingerprint
from evotr_lib.testing import random_lora, tiny_hf_model, tiny_lm
from _common import machine as bench_machine, machine_slug, write_results
from evotr_lib.assistant.registry import AdapterRegistry, load_registry
from evotr_lib.lm.train import DEFAULT_LM_DIR, load_lm

EXPERTS = ("tr_chat", "python_coder")
PROMPT_TEXT = "def read_config(path):\n    \"\"\"Read a JSON configuration file and return it as a dict.\"\"\"\n" * 8


def bare_registry(root: Path) -> AdapterRegistry:
    "The shipped registry's experts and intents without adapters, rooted at `root`."
    raw = load_registry().to_dict()
    return AdapterRegistry.from_dict({**raw, "experts": {k: {"description": v.get("description", "")} for k, v in raw["experts"].items()}},
                                     "bench", root)


def hf_setup(work: Path, smoke: bool):
    "A random Qwen2 folder and a registry with a transformers (peft) and an mlx (mlx_lm-trained) adapter for each expert."
    size = dict(hidden_size=32, num_layers=2, max_positions=512) if smoke else dict(hidden_size=160, num_layers=5, max_positions=1024)
    hf_dir = tiny_hf_model(work / "qwen2", init_std=0.02, **size)
    from mlx_lm import load
    from transformers import AutoModelForCausalLM
    reg = bare_registry(work)
    hf = AutoModelForCausalLM.from_pretrained(hf_dir)
    mlx_fp = mlx_fingerprint(load(str(hf_dir))[0])
    for i, (expert, corpus) in enumerate(zip(EXPERTS, ("tr", "python"))):
        reg = reg.with_adapter(expert, "transformers", random_lora(hf, work / f"{expert}_hf", ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"], rank=8, seed=i),
                               "random qwen2", model_fingerprint(hf))
        with contextlib.redirect_stdout(io.StringIO()):
            adapter = train_mlx_lora(hf_dir, load_corpus(corpus, "validation")[:16], work / f"{expert}_mlx", rank=8, iters=2, max_seq_length=64, seed=i)
        reg = reg.with_adapter(expert, "mlx", adapter, "random qwen2", mlx_fp)
    return hf_dir, reg


def mmrec_setup(work: Path, smoke: bool):
    "The shipped model and registry, or in smoke mode a tiny model with random adapters."
    if not smoke: return None, None
    mm_dir = tiny_lm(work / "mmrec")
    model = load_lm(mm_dir)[0]
    reg = bare_registry(work)
    for i, expert in enumerate(EXPERTS):
        reg = reg.with_adapter(expert, "mmrec", random_lora(model, work / f"{expert}_mm", ["W_kvz", "W_up", "W_down"], seed=i), "tiny", model_fingerprint(model))
    return mm_dir, reg


def measure(make_engine, prompt_tokens: int, new_tokens: int, repeats: int, swaps: int) -> dict:
    t0 = time.perf_counter(); engine = make_engine(); load_s = time.perf_counter() - t0
    ids = engine.encode(PROMPT_TEXT)
    assert len(ids) >= prompt_tokens, f"the benchmark prompt has only {len(ids)} tokens"
    prompt = engine.decode(ids[:prompt_tokens])
    first, speed = [], []
    engine.generate(prompt, max_tokens=2)                                   # warm-up
    for _ in range(repeats):
        engine.generate(prompt, max_tokens=1); first.append(engine.last.first_token_s)
        engine.eos_ids = set()                                              # decode the full number of tokens
        engine.generate(prompt, max_tokens=new_tokens, temperature=1.0, seed=0)
        info = engine.last
        speed.append((info.new_tokens - 1) / (info.total_s - info.first_token_s))
    first_load = {}
    for expert in EXPERTS:
        t0 = time.perf_counter(); engine.experts.activate(expert); first_load[expert] = time.perf_counter() - t0
    cycle, times = (*EXPERTS, "base"), []
    for i in range(swaps):
        t0 = time.perf_counter(); engine.experts.activate(cycle[i % 3]); times.append(time.perf_counter() - t0)
    return {"load_s": load_s, "prompt_tokens": prompt_tokens, "first_token_ms": 1e3 * statistics.median(first),
            "tokens_per_s": statistics.median(speed), "adapter_load_ms": 1e3 * max(first_load.values()),
            "swap_ms": 1e3 * statistics.median(times), "swap_p95_ms": 1e3 * sorted(times)[int(0.95 * (len(times) - 1))]}


def expert_losses(mm_dir, reg, smoke: bool) -> dict:
    "Validation loss (nats/token) of the base model and each expert on both domains."
    model, tok, _ = load_lm(mm_dir)
    manager = LoRAManager(model, reg)
    kw = dict(seq_len=32, batch_size=2, batches=1) if smoke else dict(seq_len=256, batch_size=16, batches=8)
    table = {}
    for expert in ("base", *EXPERTS):
        manager.activate(expert)
        table[expert] = {c: domain_loss(model, tok, c, **kw) for c in ("tr", "python")}
    return table, kw


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny models and sizes (CI)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    machine, slug = bench_machine(), machine_slug()
    prompt_tokens, new_tokens, repeats, swaps = (16, 8, 2, 9) if args.smoke else (64, 128, 5, 60)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        mm_dir, mm_reg = mmrec_setup(work, args.smoke)
        if not args.smoke and not all(load_registry().adapter(e, "mmrec") for e in EXPERTS):
            sys.exit("the shipped registry lacks the mmrec experts: train them first (33_lora, train_expert)")
        hf_dir, hf_reg = hf_setup(work, args.smoke)
        rows = {"mmrec": measure(lambda: MMRecEngine(mm_dir, mm_reg), prompt_tokens, new_tokens, repeats, swaps),
                "transformers": measure(lambda: TransformersEngine(hf_dir, hf_reg), prompt_tokens, new_tokens, repeats, swaps),
                "mlx": measure(lambda: MLXEngine(hf_dir, hf_reg), prompt_tokens, new_tokens, repeats, swaps)}
        losses, kw = expert_losses(mm_dir or DEFAULT_LM_DIR, mm_reg or load_registry(), args.smoke)
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    model_desc = ("tiny random models" if args.smoke else
                  f"mmrec: the shipped model ({DEFAULT_LM_DIR.name}) and experts; transformers, mlx: a random Qwen2 of 5 layers x 160 (about the same size), "
                  "with random peft / mlx_lm-trained LoRA adapters of rank 8")
    lines = [f"# Inference engines, {machine}", "",
             f"{datetime.date.today()}; {model_desc}; torch {torch.__version__} with 1 thread (the machine is shared); prompt of {prompt_tokens} tokens, "
             f"{new_tokens} new tokens sampled, median of {repeats} runs; swaps: median and p95 of {swaps} activations cycling "
             f"{', '.join(EXPERTS)}, base (adapters already loaded)." + (" SMOKE RUN: not a measurement." if args.smoke else ""), "",
             "| backend | engine load (s) | first token (ms) | decode (tokens/s) | first adapter load (ms) | swap median (ms) | swap p95 (ms) |",
             "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['load_s']:.2f} | {r['first_token_ms']:.1f} | {r['tokens_per_s']:.0f} | {r['adapter_load_ms']:.1f} | {r['swap_ms']:.2f} | {r['swap_p95_ms']:.2f} |")
    lines += ["", f"## MM-Rec experts: validation loss (nats/token), first {kw['batches']} batches of {kw['batch_size']} windows of {kw['seq_len']} tokens", "",
              "| model | Turkish (tr) | Python | change on tr | change on Python |", "|---|---|---|---|---|"]
    for expert, row in losses.items():
        lines.append(f"| {expert} | {row['tr']:.3f} | {row['python']:.3f} | {row['tr'] - losses['base']['tr']:+.3f} | {row['python'] - losses['base']['python']:+.3f} |")
    path = write_results(f"engine_{slug}", lines, out=out)
    print(path.read_text())


if __name__ == "__main__":
    main()
