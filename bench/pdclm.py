"""PD-CLM experiments (issue #10): PSE vs byte-level and BPE models, HMR vs flat memory, reflection/CCM flag-and-retry, MRL.

Each part writes bench/results/pdclm_<part>_<machine>.md, .png and .json (the numbers the notebooks' claims ledger reads).
  pse      bits per byte at equal training FLOPs (counted by torch's FlopCounterMode) of a PSE, a byte-level and a
           BPE-8192 MM-Rec on the Turkish corpus; throughput; activation memory; bpb under 5% typos and stripped diacritics
  hmr      long-context recall of facts in a synthetic stream: HMR (short/mid/long tiers, surprise segments) vs flat
           memories of the same number of slots
  reflect  a byte-level MM-Rec solver of 3-term one-digit addition; AUROC of the reflection network vs length and mean log-prob;
           flag-and-retry with each scorer and with the CCM; reflection cost vs generation cost
  mrl      GRPO on the same solver: accuracy-only reward vs four rewards as a weighted sum vs per-reward normalisation

    python bench/pdclm.py --part pse                    # CPU toy scale (a few minutes per part, one thread)
    python bench/pdclm.py --part all --full --device cuda   # the larger configuration, for a GPU
    python bench/pdclm.py --part hmr --smoke --out /tmp/x
"""
import argparse, copy, datetime, itertools, json, math, os, platform, random, re, tempfile, time, zlib
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch.utils.flop_counter import FlopCounterMode

from _common import machine as bench_machine, machine_slug, write_results
from evotr_lib.config import seed_everything
from evotr_lib.lm.corpus import load_corpus
from evotr_lib.lm.tokenizers import TokenDataset, get_tokenizer
from evotr_lib.mmrec.model import MMRecConfig, MMRecModel
from evotr_lib.pdclm.pse import (HMRConfig, HierarchicalMemoryRouter, PSEConfig, PatchStreamEncoder, add_typos, calibrate_threshold,
                           char_error_rate, next_byte_entropy, strip_diacritics)
from evotr_lib.pdclm.reflection import (REWARDS, CognitiveControl, ReflectionConfig, ReflectionNet, arith_problem, chain_rewards,
                                  encode_texts, grpo_loss, group_advantages, reflection_loss, reflection_scores, sample_chains,
                                  score_chain)
from evotr_lib.lm.tasks import bits_per_byte, total_nll
from evotr_lib.lm.train import TrainConfig, Trainer, lm_loss


def machine(dev):
    return bench_machine(dev) + ("" if dev.type == "cuda" else f", {torch.get_num_threads()} thread(s)")


def train(model, steps, lr, batch_fn, loss_fn=lm_loss, probe=None, n_probes=1):
    "Train with the project's Trainer; returns (records, seconds, probes): with `probe`, [(step, probe(model))] at `n_probes` evenly spaced steps (their time not counted)."
    cfg = TrainConfig(max_steps=max(1, steps), lr=lr, min_lr=lr / 10, warmup_steps=max(1, steps // 10), log_every=max(1, steps // 25), progress=False)
    recs, secs, probes = [], 0.0, []
    with tempfile.TemporaryDirectory() as d:
        trainer = Trainer(model, cfg, batch_fn, d, loss_fn=loss_fn)
        for k in range(1, n_probes + 1):
            t = time.perf_counter(); recs += trainer.fit(until=round(cfg.max_steps * k / n_probes)); secs += time.perf_counter() - t
            if probe: probes.append((trainer.step, probe(model)))
    return recs, secs, probes


def step_flops(model, batch, loss_fn=lm_loss):
    "FLOPs (matmuls, attention) of one forward + backward on `batch`, counted by torch's FlopCounterMode."
    with FlopCounterMode(display=False) as fc: loss_fn(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops()


def saved_activation_bytes(model, batch, loss_fn=lm_loss):
    "Bytes of the tensors autograd saves for backward in one training forward (each storage counted once)."
    seen = {}
    def pack(t):
        seen[(t.untyped_storage().data_ptr(), t.device)] = t.untyped_storage().nbytes(); return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t): loss = loss_fn(model, batch)
    del loss
    return sum(seen.values())


# ---------------------------------------------------------------- PSE
def lm_config(vocab, dim, layers, chunk):
    return MMRecConfig(vocab_size=vocab, model_dim=dim, num_layers=layers, num_heads=4, inner_dim=dim // 4, num_memories=2,
                       mem_dim=dim // 2, mem_slots=8, chunk_size=chunk)


def bpb_on(model, tok, texts, seq_len, max_windows, dev, batch_size=16):
    "Bits per byte of `model` on `texts` (first `max_windows` windows of the token stream) and inference bytes/s."
    ids = [t for doc in tok.encode_batch(texts) for t in (*doc, tok.eos_id)]
    ds = TokenDataset(ids, seq_len, num_bytes=sum(len(t.encode()) + 1 for t in texts))
    model.eval()
    t = time.perf_counter()
    nats, n = total_nll(model, (b.to(dev) for b in itertools.islice(ds.eval_batches(batch_size), -(-max_windows // batch_size))))
    secs = time.perf_counter() - t
    n_bytes = n * ds.bytes_per_token
    return bits_per_byte(nats, n_bytes), n_bytes / secs


def part_pse(args, dev, out):
    size = {"smoke": dict(seq=64, bs=4, base_steps=3, ent_steps=3, dim=32, pse=dict(local_dim=16, global_dim=32, mem_slots=4, local_chunk=16, global_chunk=4), windows=4),
            "cpu": dict(seq=256, bs=16, base_steps=300, ent_steps=300, dim=96, pse=dict(local_dim=64, global_dim=128, local_chunk=32, global_chunk=8), windows=48),
            "full": dict(seq=1024, bs=32, base_steps=4000, ent_steps=2000, dim=512, pse=dict(local_dim=256, global_dim=768, global_layers=8, local_chunk=64, global_chunk=16, entropy_dim=128, entropy_layers=2), windows=512)}[args.size]
    seq, bs = size["seq"], size["bs"]
    byte_tok, bpe_tok = get_tokenizer("byte"), get_tokenizer("bpe8192")
    train_byte = TokenDataset.from_corpus("tr", "train", byte_tok, seq)
    bpe_seq = max(8, round(seq / TokenDataset.from_corpus("tr", "validation", bpe_tok, 8).bytes_per_token))
    train_bpe = TokenDataset.from_corpus("tr", "train", bpe_tok, bpe_seq)
    batches = lambda ds: (lambda step, micro: ds.sample(bs, torch.Generator().manual_seed(step)).to(dev))
    lr = 3e-3

    # the entropy model, then the PSE's threshold for a mean patch of 4 bytes
    pse_cfg = PSEConfig(**size["pse"])
    seed_everything(0)
    ent = MMRecModel(pse_cfg.entropy_config).to(dev)
    ent_flops = step_flops(ent, batches(train_byte)(0, 0)) * size["ent_steps"]
    train(ent, size["ent_steps"], lr, batches(train_byte))
    theta = calibrate_threshold(next_byte_entropy(ent.eval(), train_byte.sample(32, torch.Generator().manual_seed(1)).to(dev)), mean_patch=4)
    seed_everything(0)
    pse = PatchStreamEncoder(pse_cfg.replace(threshold=theta)).to(dev)
    pse.entropy_model.load_state_dict(ent.state_dict())
    seed_everything(0); byte_model = MMRecModel(lm_config(256, size["dim"], 2, 32)).to(dev)
    seed_everything(0); bpe_model = MMRecModel(lm_config(bpe_tok.vocab_size, size["dim"], 2, 16)).to(dev)
    models = {"byte": (byte_model, train_byte, byte_tok, seq), "bpe8192": (bpe_model, train_bpe, bpe_tok, bpe_seq), "pse": (pse, train_byte, byte_tok, seq)}

    flops = {k: step_flops(m, batches(ds)(0, 0)) for k, (m, ds, _, _) in models.items()}
    budget = flops["byte"] * size["base_steps"]
    steps = {k: max(1, round((budget - (ent_flops if k == "pse" else 0)) / f)) for k, f in flops.items()}
    test_texts = load_corpus("tr", "test")
    noisy = {"clean": test_texts, "typos 5%": [add_typos(t, 0.05, seed=i) for i, t in enumerate(test_texts)],
             "diacritics stripped (rate 0.5)": [strip_diacritics(t, 0.5, seed=i) for i, t in enumerate(test_texts)]}
    cer = {k: char_error_rate(v[0][:3000], test_texts[0][:3000]) for k, v in noisy.items()}
    rows, curves = {}, {}
    for k, (m, ds, tok, L) in models.items():
        act = saved_activation_bytes(m, batches(ds)(0, 0))
        recs, secs, _ = train(m, steps[k], lr, batches(ds))
        curves[k] = [(r["step"] * (flops[k]) / 1e12, r["loss"] / math.log(2) / (ds.bytes_per_token if ds.num_bytes else 1)) for r in recs if "loss" in r]
        res = {cond: bpb_on(m, tok, texts, L, size["windows"], dev) for cond, texts in noisy.items()}
        rows[k] = dict(params=sum(p.numel() for p in m.parameters() if p.requires_grad), flops_per_step=flops[k], steps=steps[k],
                       train_flops=flops[k] * steps[k] + (ent_flops if k == "pse" else 0), train_secs=secs,
                       train_bytes_per_s=steps[k] * bs * L * (ds.bytes_per_token if ds.num_bytes else 1) / secs,
                       infer_bytes_per_s=res["clean"][1], activation_bytes_per_byte=act / (bs * L * (ds.bytes_per_token if ds.num_bytes else 1)),
                       bpb={cond: r[0] for cond, r in res.items()})
        print(k, json.dumps(rows[k]), flush=True)
    with torch.no_grad():
        sample = train_byte.sample(16, torch.Generator().manual_seed(5))[:, :-1].to(dev)
        mean_patch = sample.numel() / pse.patch(sample).sum().item()
    info = dict(threshold_bits=theta, mean_patch_bytes=mean_patch, entropy_model_train_flops=ent_flops, budget_flops=budget,
                bpe_bytes_per_token=train_bpe.bytes_per_token, char_error_rate=cer, seq_len_bytes=seq, batch_size=bs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for k, c in curves.items(): axes[0].plot(*zip(*c), label=k)
    axes[0].set(xlabel="training TFLOPs (entropy model not included)", ylabel="train loss (bits/byte)", title="equal-FLOPs training, Turkish", ylim=(None, 8)); axes[0].legend()
    conds = list(noisy)
    for i, k in enumerate(rows): axes[1].bar(np.arange(len(conds)) + 0.27 * (i - 1), [rows[k]["bpb"][c] for c in conds], 0.27, label=k)
    axes[1].set_xticks(range(len(conds)), conds, fontsize=8); axes[1].set(ylabel="test bits per byte", title="clean vs noisy text"); axes[1].legend()
    plt.tight_layout()
    lines = ["| model | trainable params | FLOPs/step | steps | training FLOPs | bpb clean | bpb typos 5% (+Δ) | bpb diacritics (+Δ) | train bytes/s | inference bytes/s | saved activations, bytes per byte |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in rows.items():
        b = r["bpb"]; c = b["clean"]
        lines.append(f"| {k} | {r['params']:,} | {r['flops_per_step']:.3g} | {r['steps']} | {r['train_flops']:.3g} | {c:.3f} | "
                     f"{b['typos 5%']:.3f} (+{b['typos 5%'] - c:.3f}) | {b['diacritics stripped (rate 0.5)']:.3f} (+{b['diacritics stripped (rate 0.5)'] - c:.3f}) | "
                     f"{r['train_bytes_per_s']:,.0f} | {r['infer_bytes_per_s']:,.0f} | {r['activation_bytes_per_byte']:,.0f} |")
    notes = (f"Turkish corpus (LibreOffice help), windows of {seq} bytes (BPE: {bpe_seq} tokens, {train_bpe.bytes_per_token:.2f} bytes/token), batch {bs}, "
             f"lr {lr:g} for every model (no sweep). Budget = {size['base_steps']} steps of the byte model = {budget:.3g} FLOPs; the PSE's budget includes "
             f"training its entropy model ({ent_flops:.3g} FLOPs); its patching threshold {theta:.2f} bits gives {mean_patch:.2f} bytes per patch. "
             f"bpb on the first {size['windows']} windows of the test split; noise: character error rate {cer['typos 5%']:.3f} (typos), "
             f"{cer['diacritics stripped (rate 0.5)']:.3f} (half of the Turkish letters made plain).")
    return lines, notes, fig, {"rows": rows, "info": info}


# ---------------------------------------------------------------- HMR
def hmr_stream(rng, succ, T, n_facts, n_distractors, p_jump, V_key, V_dis):
    "The filler Markov chain `succ` (token -> its usual successor) with facts (key, value) and distractor tokens at random places: (tokens, fact positions)."
    V_fill = len(succ)
    toks, cur = [], int(rng.integers(V_fill))
    for _ in range(T):
        cur = int(succ[cur]) if rng.random() > p_jump else int(rng.integers(V_fill)); toks.append(cur)
    slots = rng.choice(np.arange(2, T - 2, 3), n_facts + n_distractors, replace=False)
    keys = rng.choice(V_key, n_facts, replace=False)
    facts = []
    for i, s in enumerate(slots):
        if i < n_facts:
            toks[s], toks[s + 1] = V_fill + int(keys[i]), V_fill + V_key + int(rng.integers(V_key)); facts.append(int(s))
        else: toks[s] = V_fill + 2 * V_key + int(rng.integers(V_dis))
    return np.array(toks), facts


def part_hmr(args, dev, out):
    size = {"smoke": dict(T=512, facts=8, streams=2, train=2), "cpu": dict(T=4096, facts=64, streams=20, train=20),
            "full": dict(T=16384, facts=256, streams=50, train=50)}[args.size]
    T, n_facts = size["T"], size["facts"]
    V_fill, V_key, V_dis, d = 64, 1024, 1024, 64
    V = V_fill + 2 * V_key + V_dis
    slots = 64 if T >= 4096 else 16
    g = torch.Generator().manual_seed(0)
    E = F.normalize(torch.randn(V, d, generator=g), dim=-1)                   # token embeddings (keys and values)
    theta = 10.0                                                              # bits: a fact's tokens are unseen bigrams, filler is not
    configs = {"HMR (short/mid/long, surprise segments)": (HMRConfig(short_slots=slots // 4, mid_slots=slots // 4, long_slots=slots // 2), "surprise"),
               "flat, surprise segments, FIFO": (HMRConfig(short_slots=0, mid_slots=slots, long_slots=0), "surprise"),
               "flat, chunks of 8 (MM-Rec-style), FIFO": (HMRConfig(short_slots=0, mid_slots=slots, long_slots=0), 8),
               f"flat, chunks of {T // slots} (covers the stream)": (HMRConfig(short_slots=0, mid_slots=slots, long_slots=0), T // slots)}
    conditions = {"no distractors": (0, 0.1), f"{n_facts} distractors": (n_facts, 0.1), f"{4 * n_facts} distractors": (4 * n_facts, 0.1),
                  "noisy filler (30% jumps)": (0, 0.3)}
    results, by_age = {}, {}
    for cond, (n_dis, p_jump) in conditions.items():
        rng = np.random.default_rng(0)
        succ = np.random.default_rng(123).permutation(V_fill)                # the filler "language", the same in every stream
        counts = np.ones((V, V))                                              # add-one bigram model of the stream, the surprise estimator
        for _ in range(size["train"]):
            toks, _ = hmr_stream(rng, succ, T, n_facts, n_dis, p_jump, V_key, V_dis)
            np.add.at(counts, (toks[:-1], toks[1:]), 1)
        logq = np.log2(counts / counts.sum(1, keepdims=True))
        acc = {k: [] for k in configs}
        for _ in range(size["streams"]):
            toks, facts = hmr_stream(rng, succ, T, n_facts, n_dis, p_jump, V_key, V_dis)
            surprise = torch.tensor(np.concatenate([[99.0], -logq[toks[:-1], toks[1:]]]), dtype=torch.float32)
            x = torch.tensor(toks)
            keys, values = E[x[:-1]], E[x[1:]]                                # entry t: (token t, token t+1)
            for name, (cfg, seg) in configs.items():
                starts = surprise[:-1] > theta if seg == "surprise" else torch.arange(T - 1) % seg == 0
                starts[0] = True
                mem = HierarchicalMemoryRouter(cfg, d, d).write(keys, values, starts, surprise[:-1]).flush()
                read = mem.read(E[x[facts]])                                  # query each fact's key
                pred = (read @ E[V_fill + V_key:V_fill + 2 * V_key].T).argmax(-1) + V_fill + V_key
                acc[name] += [(T - f, bool(p == x[f + 1])) for f, p in zip(facts, pred.tolist())]
        results[cond] = {k: float(np.mean([c for _, c in v])) for k, v in acc.items()}
        by_age[cond] = acc
        print(cond, json.dumps(results[cond]), flush=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    edges = np.linspace(0, T, 5)
    for name in configs:
        ages = by_age["no distractors"][name]
        axes[0].plot((edges[:-1] + edges[1:]) / 2, [np.mean([c for a, c in ages if lo <= a < hi]) for lo, hi in zip(edges, edges[1:])], "o-", label=name)
    axes[0].set(xlabel="tokens since the fact", ylabel="recall accuracy", title="no distractors", ylim=(0, 1.05)); axes[0].legend(fontsize=7)
    for i, name in enumerate(configs):
        axes[1].bar(np.arange(len(conditions)) + 0.2 * (i - 1.5), [results[c][name] for c in conditions], 0.2, label=name)
    axes[1].set_xticks(range(len(conditions)), list(conditions), fontsize=7); axes[1].set(ylabel="recall accuracy", title="by condition")
    plt.tight_layout()
    lines = ["| memory (" + f"{slots} slots each) | " + " | ".join(conditions) + " |", "|---|" + "---|" * len(conditions)]
    lines += [f"| {n} | " + " | ".join(f"{results[c][n]:.3f}" for c in conditions) + " |" for n in configs]
    notes = (f"Streams of {T} tokens: a filler Markov chain ({V_fill} tokens, each followed by its fixed successor except for random jumps), "
             f"{n_facts} facts (a key token then a value token, keys distinct) and distractor tokens (unseen, as surprising as a key) at random places; "
             f"{size['streams']} test streams per condition. Surprise = -log2 of an add-one bigram model fitted on {size['train']} streams of the same kind; "
             f"segments start above {theta:g} bits. Entry t = (embedding of token t, embedding of token t+1), random unit vectors in {d} dimensions; "
             f"a fact is recalled when reading with its key's embedding gives its value (nearest value embedding).")
    return lines, notes, fig, {"results": results, "slots": slots, "T": T}


# ---------------------------------------------------------------- reflection, CCM, MRL
def solver_size(size):
    "Sizes of the solver, the reflection network and GRPO; `task`: the arith_problem settings (one-digit numbers: a solver this small gets some right, some wrong)."
    return {"smoke": dict(task=dict(n_terms=3, max_operand=9), dim=32, layers=1, steps=3, bs=8, n_train=64, n_test=32, n_probe=16, refl_steps=3, refl_dim=32,
                          grpo_steps=2, grpo_lr=1e-4, groups=2, G=4),
            "cpu": dict(task=dict(n_terms=3, max_operand=9), dim=64, layers=2, steps=600, bs=64, n_train=12000, n_test=1000, n_probe=300, refl_steps=1600, refl_dim=64,
                        grpo_steps=100, grpo_lr=1e-4, groups=16, G=8),
            "full": dict(task=dict(n_terms=3, max_operand=99), dim=256, layers=4, steps=3000, bs=128, n_train=20000, n_test=5000, n_probe=1000, refl_steps=5000,
                         refl_dim=128, grpo_steps=300, grpo_lr=1e-4, groups=32, G=16)}[size]


def is_test_question(q):
    "A fixed fifth of all questions (by a hash of the text) is held out: the reflection network and GRPO never train on them."
    return zlib.crc32(q.encode()) % 5 == 0


def problems(rng, n, split, task):
    "`n` (question, reference chain, answer) of the `split` ('train' or 'test') questions."
    out = []
    while len(out) < n:
        p = arith_problem(rng, **task)
        if is_test_question(p[0]) == (split == "test"): out.append(p)
    return out


def sample_all(model, questions, dev, temperature=1.0, seed=0, batch=500):
    texts, lps = [], []
    for i in range(0, len(questions), batch):
        t, _, _, lp = sample_chains(model, questions[i:i + batch], temperature=temperature, generator=torch.Generator(dev).manual_seed(seed + i))
        texts += t; lps += lp.tolist()
    return texts, np.array(lps)


def accuracy(model, questions, dev, temperature, seed=0):
    "Fraction of `questions` the model answers right (temperature 0: greedy)."
    chains, _ = sample_all(model, questions, dev, temperature=temperature, seed=seed)
    return float(np.mean([score_chain(q, c) for q, c in zip(questions, chains)]))


def auroc_diff_ci(y, a, b, n_boot=1000, seed=0):
    "AUROC(a) - AUROC(b) on labels y, with a 95% paired bootstrap interval over the answers: (diff, low, high)."
    if not 0 < y.mean() < 1: return (float("nan"),) * 3
    rng, diffs = np.random.default_rng(seed), []
    while len(diffs) < n_boot:
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].mean() < 1: diffs.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    return float(roc_auc_score(y, a) - roc_auc_score(y, b)), *map(float, np.quantile(diffs, [0.025, 0.975]))


def paired_diff_ci(a, b):
    "Mean of a - b per reward, a and b (N, K) rewards of the same N questions, with a 95% normal interval: {reward: (diff, low, high)}."
    d = a - b
    half = 1.96 * d.std(0, ddof=1) / math.sqrt(len(d)) if len(d) > 1 else np.full(d.shape[1], np.nan)
    return {k: (float(m), float(m - h), float(m + h)) for k, m, h in zip(REWARDS, d.mean(0), half)}


def train_solver(s, dev, probe=None):
    "A byte-level MM-Rec trained on question + reference chain, each batch padded with '.' (it learns to stop); (model, seconds, [(step, probe(model))] at 6 points)."
    seed_everything(0)
    model = MMRecModel(lm_config(256, s["dim"], s["layers"], 8)).to(dev)
    def batch(step, micro):
        rng = random.Random(10**7 + step)
        rows = [(q + c).encode() for q, c, _ in (arith_problem(rng, **s["task"]) for _ in range(s["bs"]))]
        L = max(map(len, rows)) + 1
        return torch.tensor([list(r.ljust(L, b".")) for r in rows]).to(dev)
    _, secs, probes = train(model, s["steps"], 3e-3, batch, probe=probe, n_probes=6 if probe else 1)
    return model, secs, probes


def part_reflect(args, dev, out):
    s = solver_size(args.size)
    train_q = [q for q, _, _ in problems(random.Random(1), s["n_train"], "train", s["task"])]
    test_q = [q for q, _, _ in problems(random.Random(2), s["n_test"], "test", s["task"])]
    solver, solver_secs, solver_curve = train_solver(s, dev, probe=lambda m: [accuracy(m, test_q[:s["n_probe"]], dev, T, seed=50) for T in (1.0, 0.0)])
    t0 = time.perf_counter()
    tr_chain, tr_lp = sample_all(solver, train_q, dev, seed=0)
    gen_secs = (time.perf_counter() - t0) / len(train_q)
    te_chain, te_lp = sample_all(solver, test_q, dev, seed=1)
    tr_y = np.array([score_chain(q, c) for q, c in zip(train_q, tr_chain)])
    te_y = np.array([score_chain(q, c) for q, c in zip(test_q, te_chain)])
    greedy_acc = accuracy(solver, test_q, dev, 0.0)
    ccm = CognitiveControl(max_depth=4)
    # reflection network on (question + chain) -> correct?
    seed_everything(0)
    net = ReflectionNet(ReflectionConfig(dim=s["refl_dim"], num_layers=2, max_len=48)).to(dev)
    X = encode_texts([q + c for q, c in zip(train_q, tr_chain)], 48)
    Y = torch.tensor(tr_y, dtype=torch.long)
    def batch(step, micro):
        idx = torch.randint(0, len(X), (s["bs"],), generator=torch.Generator().manual_seed(step))
        return torch.cat([Y[idx, None], X[idx]], 1).to(dev)
    _, refl_train_secs, _ = train(net, s["refl_steps"], 1e-3, batch, loss_fn=reflection_loss)
    t0 = time.perf_counter()
    refl = lambda qs, cs: reflection_scores(net, [q + c for q, c in zip(qs, cs)]).cpu().numpy()
    te_refl = refl(test_q, te_chain)
    refl_secs = (time.perf_counter() - t0) / len(test_q)
    scorers = {"reflection network": (te_refl, refl), "mean log-prob": (te_lp, None), "length (shorter = better)": (-np.array([len(c) for c in te_chain], float), None),
               "CCM verifies the chain": (np.array([ccm.check(c, q).ok for q, c in zip(test_q, te_chain)], float), None)}
    auroc = {k: float(roc_auc_score(te_y, v)) if 0 < te_y.mean() < 1 else float("nan") for k, (v, _) in scorers.items()}
    auroc_gap = {k: auroc_diff_ci(te_y, te_refl, scorers[k][0]) for k in ("mean log-prob", "length (shorter = better)")}
    # flag-and-retry: flag the answers scored below the threshold that flags the train error rate; resample up to 3 times
    err_rate = 1 - tr_y.mean()
    tr_scores = {"reflection network": refl(train_q, tr_chain), "mean log-prob": tr_lp, "CCM verifies the chain": np.array([ccm.check(c, q).ok for q, c in zip(train_q, tr_chain)], float)}
    retries = [sample_all(solver, test_q, dev, seed=100 * (k + 1)) for k in range(3)]
    retry_ok = np.array([[score_chain(q, c) for q, c in zip(test_q, r[0])] for r in retries])       # (3, N)
    retry_scores = {"reflection network": [refl(test_q, r[0]) for r in retries], "mean log-prob": [r[1] for r in retries],
                    "CCM verifies the chain": [np.array([ccm.check(c, q).ok for q, c in zip(test_q, r[0])], float) for r in retries]}
    retry_rows = {}
    for k, rs in retry_scores.items():
        thr = 0.5 if k == "CCM verifies the chain" else float(np.quantile(tr_scores[k], err_rate))
        flagged = scorers[k][0] < thr
        final, extra = te_y.copy(), 0
        for i in np.nonzero(flagged)[0]:
            for j in range(3):
                extra += 1
                if rs[j][i] >= thr: final[i] = retry_ok[j, i]; break
            else: final[i] = [te_y[i], *retry_ok[:, i]][int(np.argmax([scorers[k][0][i], *[r[i] for r in rs]]))]   # keep the best-scored
        retry_rows[k] = dict(flagged=int(flagged.sum()), flagged_correct=int((flagged & te_y).sum()), right_to_wrong=int((te_y & ~final).sum()),
                             wrong_to_right=int((~te_y & final).sum()), acc_before=float(te_y.mean()), acc_after=float(final.mean()), extra_samples_per_q=extra / len(test_q))
    oracle = float((te_y | retry_ok.any(0)).mean())
    ccm_recall = float(np.mean([not ccm.check(c, q).ok for q, c, y in zip(test_q, te_chain, te_y) if not y])) if (~te_y).any() else float("nan")
    ccm_false_alarm = float(np.mean([not ccm.check(c, q).ok for q, c, y in zip(test_q, te_chain, te_y) if y])) if te_y.any() else float("nan")
    with FlopCounterMode(display=False) as fc: net(encode_texts([test_q[0] + te_chain[0]], 48).to(dev))
    refl_flops = fc.get_total_flops()
    prompt = torch.tensor([list(test_q[0].encode())], device=dev)
    with FlopCounterMode(display=False) as fc: solver.generate(prompt, max_new_tokens=len(te_chain[0]), temperature=0)
    gen_flops = fc.get_total_flops()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    from sklearn.metrics import roc_curve
    for k, (v, _) in scorers.items():
        if 0 < te_y.mean() < 1: fpr, tpr, _ = roc_curve(te_y, v); axes[0].plot(fpr, tpr, label=f"{k} ({auroc[k]:.3f})")
    axes[0].plot([0, 1], [0, 1], "k:", lw=0.8); axes[0].set(xlabel="false positive rate", ylabel="true positive rate", title="is the solver's answer correct?"); axes[0].legend(fontsize=7)
    steps_, accs = zip(*solver_curve)
    for i, label in enumerate(("sampled, temperature 1", "greedy")): axes[1].plot(steps_, [a[i] for a in accs], "o-", label=label)
    axes[1].set(xlabel="solver training step", ylabel=f"test accuracy ({s['n_probe']} questions)", title="the solver during training", ylim=(0, 1)); axes[1].legend(fontsize=7)
    plt.tight_layout()
    lines = ["| scorer | AUROC (test) | reflection network minus this (95% bootstrap interval) |", "|---|---|---|"]
    lines += [f"| {k} | {v:.3f} | " + ("{:+.3f} ({:+.3f}, {:+.3f})".format(*auroc_gap[k]) if k in auroc_gap else "") + " |" for k, v in auroc.items()]
    lines += ["", "| flag-and-retry with | flagged (of which correct) | correct -> wrong | wrong -> correct | accuracy before -> after | extra samples per question |", "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {r['flagged']} ({r['flagged_correct']}) | {r['right_to_wrong']} | {r['wrong_to_right']} | {r['acc_before']:.3f} -> {r['acc_after']:.3f} | {r['extra_samples_per_q']:.2f} |" for k, r in retry_rows.items()]
    lines += ["", f"CCM on the test answers: flags {ccm_recall:.3f} of the wrong ones and {ccm_false_alarm:.3f} of the right ones. "
              f"Best possible with 3 retries (an oracle picks any right sample): {oracle:.3f}.",
              f"Cost: reflection {refl_flops:.3g} FLOPs and {1000 * refl_secs:.2f} ms per answer vs generation {gen_flops:.3g} FLOPs and {1000 * gen_secs:.2f} ms per answer "
              f"(ratio {refl_flops / gen_flops:.2f} in FLOPs, {refl_secs / gen_secs:.2f} in time)."]
    example_q, example_c, _ = arith_problem(random.Random(0), **s["task"])
    notes = (f"Questions: {s['task']['n_terms']} numbers from 0 to {s['task']['max_operand']} (e.g. `{example_q}` -> `{example_c}`); the test questions are a fixed fifth of all questions "
             f"(by a hash) that neither the reflection network nor GRPO trains on; {len(test_q)} test and {len(train_q)} train draws ({len(set(test_q))} and {len(set(train_q))} distinct). Solver: byte-level MM-Rec, width {s['dim']}, {s['layers']} layers, "
             f"{s['steps']} steps ({solver_secs:.0f} s); answers sampled at temperature 1. Solver accuracy: train {tr_y.mean():.3f}, test {te_y.mean():.3f} "
             f"(greedy: {greedy_acc:.3f}). Reflection network: {s['refl_dim']} wide, 2 layers, {sum(p.numel() for p in net.parameters()):,} parameters, "
             f"trained {s['refl_steps']} steps on the {len(train_q)} train answers ({refl_train_secs:.0f} s). "
             f"Thresholds flag the train error rate ({err_rate:.3f}) of the train answers; a flagged answer is resampled up to 3 times, "
             f"the first retry scored above the threshold is kept (else the best-scored of all).")
    return lines, notes, fig, dict(auroc=auroc, auroc_gap=auroc_gap, retry=retry_rows, oracle=oracle, ccm_recall=ccm_recall, ccm_false_alarm=ccm_false_alarm,
                                   solver_acc=float(te_y.mean()), solver_acc_greedy=greedy_acc, solver_curve=solver_curve,
                                   refl_flops=refl_flops, gen_flops=gen_flops, refl_secs=refl_secs, gen_secs=gen_secs)


def part_mrl(args, dev, out):
    s = solver_size(args.size)
    solver, _, _ = train_solver(s, dev)
    ccm = CognitiveControl(max_depth=4)
    test = problems(random.Random(2), s["n_test"], "test", s["task"])
    def evaluate(model):
        "Per-answer rewards (N, K) of answers sampled at temperature 1 (what GRPO optimises), and the greedy answers' accuracy."
        chains, _ = sample_all(model, [q for q, _, _ in test], dev, temperature=1.0, seed=7)
        return np.array([[chain_rewards(q, c, ref, ccm)[k] for k in REWARDS] for (q, ref, _), c in zip(test, chains)]), accuracy(model, [q for q, _, _ in test], dev, 0.0)
    variants = {"accuracy only": (torch.tensor([1.0, 0, 0, 0]), "weighted_sum"), "4 rewards, weighted sum": (torch.tensor([1.0, 1, 1, 1]), "weighted_sum"),
                "4 rewards, per-reward normalisation": (torch.tensor([1.0, 1, 1, 1]), "per_reward")}
    per_answer, greedy = {}, {}
    per_answer["solver before RL"], greedy["solver before RL"] = evaluate(solver)
    curves = {}
    for name, (w, mode) in variants.items():
        model = copy.deepcopy(solver); opt = torch.optim.AdamW(model.parameters(), lr=s["grpo_lr"], weight_decay=0.0)
        rng, curve = random.Random(3), []
        for step in range(s["grpo_steps"]):
            probs = [p for p in problems(rng, s["groups"], "train", s["task"]) for _ in range(s["G"])]
            texts, comp, mask, _ = sample_chains(model, [q for q, _, _ in probs], temperature=1.0, generator=torch.Generator(dev).manual_seed(step))
            r = torch.tensor([[chain_rewards(q, c, ref, ccm)[k] for k in REWARDS] for (q, ref, _), c in zip(probs, texts)])
            adv = group_advantages(r.view(s["groups"], s["G"], len(REWARDS)), w, mode).flatten().to(dev)
            model.train()
            prompts = torch.tensor([list(q.encode()) for q, _, _ in probs], device=dev)
            grpo_loss(model, prompts, comp, mask, adv).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step(); opt.zero_grad(set_to_none=True)
            curve.append(r.mean(0).tolist())
        curves[name] = np.array(curve); per_answer[name], greedy[name] = evaluate(model)
        print(name, per_answer[name].mean(0).round(3).tolist(), greedy[name], flush=True)
    means = {n: {**dict(zip(REWARDS, r.mean(0).tolist())), "greedy accuracy": greedy[n]} for n, r in per_answer.items()}
    pairs = [(v, "solver before RL") for v in variants] + [("4 rewards, weighted sum", "accuracy only"), ("4 rewards, per-reward normalisation", "accuracy only"),
                                                           ("4 rewards, per-reward normalisation", "4 rewards, weighted sum")]
    diffs = {f"{a} - {b}": paired_diff_ci(per_answer[a], per_answer[b]) for a, b in pairs}
    fig, axes = plt.subplots(1, len(REWARDS), figsize=(14, 3))
    k_smooth = max(1, s["grpo_steps"] // 12)
    for i, rw in enumerate(REWARDS):
        for name, c in curves.items():
            axes[i].plot(np.convolve(c[:, i], np.ones(k_smooth) / k_smooth, mode="valid"), label=name)
        axes[i].set(title=rw, xlabel="GRPO step")
    axes[0].set_ylabel(f"mean sampled reward (moving avg {k_smooth})"); axes[-1].legend(fontsize=7)
    plt.tight_layout()
    cols = [*REWARDS, "greedy accuracy"]
    lines = ["| policy | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    lines += [f"| {n} | " + " | ".join(f"{a[k]:.3f}" for k in cols) + " |" for n, a in means.items()]
    lines += ["", "| difference of sampled rewards (95% interval) | " + " | ".join(REWARDS) + " |", "|---|" + "---|" * len(REWARDS)]
    lines += [f"| {pair} | " + " | ".join("{:+.3f} ({:+.3f}, {:+.3f})".format(*d[k]) for k in REWARDS) + " |" for pair, d in diffs.items()]
    last = max(1, s["grpo_steps"] // 10)
    lines += ["", f"Sampled training rewards, mean of the last {last} GRPO steps: " + "; ".join(
        f"{n}: " + ", ".join(f"{k} {v:.3f}" for k, v in zip(REWARDS, c[-last:].mean(0))) for n, c in curves.items()) + "."]
    notes = (f"GRPO from the solver of `reflect` ({s['grpo_steps']} steps, {s['groups']} train questions x {s['G']} samples per step, temperature 1, "
             f"AdamW lr {s['grpo_lr']:g}, one update per batch, no KL). Tables: mean rewards of answers sampled at temperature 1 for {len(test)} draws of the held-out test questions ({len(set(p[0] for p in test))} distinct) "
             f"(hallucination = -fraction of numbers with no source; efficiency = min(1, reference length / length)) and the accuracy of greedy answers; "
             f"differences per question with a 95% normal interval. Curves: the sampled training rewards.")
    return lines, notes, fig, dict(means=means, diffs=diffs, curves={k: v.tolist() for k, v in curves.items()})


PARTS = {"pse": part_pse, "hmr": part_hmr, "reflect": part_reflect, "mrl": part_mrl}

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=[*PARTS, "all"], default="all")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (the machine is shared)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the script runs, measures nothing")
    g.add_argument("--full", action="store_true", help="the larger configuration (meant for a GPU)")
    args = p.parse_args()
    args.size = "smoke" if args.smoke else "full" if args.full else "cpu"
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available(): p.error("--device cuda: no CUDA device here")
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    name = machine(dev)
    slug = machine_slug(dev)
    for part in (PARTS if args.part == "all" else [args.part]):
        t = time.perf_counter()
        lines, notes, fig, data = PARTS[part](args, dev, out)
        stem = f"pdclm_{part}_{slug}"
        fig.savefig(out / f"{stem}.png", dpi=100); plt.close(fig)
        head = [f"# PD-CLM {part}: {name}", "", f"{datetime.date.today()}, {args.size} size, {time.perf_counter() - t:.0f} s. {notes}"
                + (" SMOKE RUN: not a measurement." if args.smoke else ""), ""]
        rows = json.loads(json.dumps({"machine": name, "size": args.size, "date": str(datetime.date.today()), **data}, default=float))
        write_results(stem, head + lines + ["", f"![{part}]({stem}.png)"], rows=rows, out=out)
        print("\n".join(head + lines), flush=True)


if __name__ == "__main__":
    main()
