"""Benchmark long-term memory (evotr_lib.assistant.memory) on the CPU: recall on the held-out memory set and search latency.

Recall@1/@3 over `data/memories/` (60 memories, 18 distractors, 120 queries), on the default embedding in an
embedded Chroma store: alone, and among 1,000 filler memories; bilingual (the core word list, with FreeDict behind it
when installed) and monolingual. The development sets `data/memories/dev/` and `dev2/` (used to choose the lexicon and
`translations`) are reported beside it. Latency is the wall time of
`MemoryHandler.search(query, top_k=3)` (embedding the query + the Chroma query), one query at a time after a
warm-up, with 1K and 100K memories stored. Filler memories are sentences of the project's corpora
(`load_corpus("tr+en", "train")`), paired into distinct texts, embedded in batches and added in bulk (no
de-duplication check, which only matters for single adds). Targets (issue #7): recall@3 >= 0.9, p95 < 100 ms at
100K (aim < 30 ms).

    python bench/rag.py                        # writes bench/results/rag_cpu_x86_64_2_cores.md (100K: ~1 h)
    python bench/rag.py --sizes 1000,10000     # the same with smaller latency stores
    python bench/rag.py --smoke --out /tmp/x   # tiny sizes, to check the script runs
"""
import argparse, datetime, os, platform, re, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

from _common import ROOT, cpu_name, machine as bench_machine, machine_slug, write_results


def filler_texts(n: int) -> list[str]:
    "`n` distinct memory-sized texts from the corpus: sentences (30-200 chars), paired deterministically."
    from evotr_lib.lm.corpus import load_corpus
    sents = sorted({s.strip() for doc in load_corpus("tr+en", "train") for s in re.split(r"(?<=[.!?])\s+", doc) if 30 <= len(s.strip()) <= 200})
    rng = np.random.default_rng(0)
    texts = [sents[i] for i in rng.permutation(len(sents))[:n]]   # single sentences first, then distinct pairs
    seen = set(texts)
    while len(texts) < n:
        i, j = rng.integers(len(sents), size=2)
        if (t := f"{sents[i]} {sents[j]}") not in seen: seen.add(t); texts.append(t)
    return texts


def bulk_add(handler, texts: list[str], batch: int = 1000) -> float:
    "Embed and add `texts` in batches with the handler's embedding and metadata layout; returns seconds."
    t0 = time.perf_counter()
    for s in range(0, len(texts), batch):
        chunk = texts[s:s + batch]
        handler.collection.add(ids=[f"filler-{s + i}" for i in range(len(chunk))], embeddings=handler.embedding.embed(chunk),
                               documents=chunk, metadatas=[{"evotr_type": "memory", "evotr_created": time.time()}] * len(chunk))
        if (s + batch) % 10_000 == 0: print(f"  added {s + batch:,} in {time.perf_counter() - t0:.0f} s", flush=True)
    return time.perf_counter() - t0


def recall(handler, memories, queries) -> dict:
    from evotr_lib.assistant.embedding import recall_at
    ids = {m["id"]: handler.add_memory(m["text"], {"set": "memory-set"}) for m in memories}
    out = {}
    for part, sel in (("same-language", [q for q in queries if not q["cross_lingual"]]),
                      ("cross-lingual", [q for q in queries if q["cross_lingual"]]), ("all", queries)):
        ranked = [[h.id for h in handler.search(q["query"], top_k=3)] for q in sel]
        out[part] = (len(sel), *(recall_at(ranked, [ids[q["memory_id"]] for q in sel], k) for k in (1, 3)))
    return out


def latency(handler, queries: list[str], repeats: int) -> dict:
    for q in queries[:10]: handler.search(q)   # warm-up
    total, embed = [], []
    for _ in range(repeats):
        for q in queries:
            t0 = time.perf_counter(); handler.embedding.embed([q]); t1 = time.perf_counter()
            handler.search(q); t2 = time.perf_counter()
            embed.append(t1 - t0); total.append(t2 - t1)
    pct = lambda xs, p: 1e3 * float(np.percentile(xs, p))
    return {"p50": pct(total, 50), "p95": pct(total, 95), "p99": pct(total, 99), "embed_p50": pct(embed, 50), "n": len(total)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,100000", help="stored memories for the latency runs, comma separated")
    p.add_argument("--repeats", type=int, default=2, help="timed passes over the 120 held-out queries")
    p.add_argument("--threads", type=int, default=1, help="torch threads (MiniLM); more threads than free cores give second-long stalls")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script runs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from evotr_lib.assistant.memory import MemoryHandler
    from evotr_lib.assistant.embedding import MEMORY_SET_DIR, MemoryEmbedding, load_memory_set
    from evotr_lib.assistant.context import MemoryConfig
    sizes = [100, 200] if args.smoke else [int(s) for s in args.sizes.split(",")]
    n_distract = 50 if args.smoke else 1000
    memories, queries = load_memory_set()
    if args.smoke: args.repeats, memories, queries = 1, memories[:20], [q for q in queries if q["memory_id"] in {m["id"] for m in memories[:20]}]
    config = MemoryConfig()
    embedding = MemoryEmbedding.from_config(config)
    monolingual = MemoryEmbedding.from_config(MemoryConfig(bilingual=False))
    dev_sets = {name: load_memory_set(MEMORY_SET_DIR / name) for name in ("dev", "dev2")}
    fillers = filler_texts(max(sizes + [n_distract]))
    lines, t_start, results = [], time.time(), {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, emb in (("bilingual", embedding), ("monolingual", monolingual)):
            cfg = MemoryConfig(bilingual=emb.lexicon is not None)
            results[(name, "held-out", f"{len(memories)} memories")] = recall(MemoryHandler(Path(tmp) / f"alone-{name}", config=cfg, embedding=emb), memories, queries)
            crowd = MemoryHandler(Path(tmp) / f"crowd-{name}", config=cfg, embedding=emb)
            bulk_add(crowd, fillers[:n_distract])
            results[(name, "held-out", f"... + {n_distract:,} filler")] = recall(crowd, memories, queries)
            for split, (dev_memories, dev_queries) in dev_sets.items():
                results[(name, split, f"{len(dev_memories)} memories")] = recall(MemoryHandler(Path(tmp) / f"{split}-{name}", config=cfg, embedding=emb), dev_memories, dev_queries)
            print(name, "recall done", flush=True)
        lat = {}
        for n in sizes:
            h = MemoryHandler(Path(tmp) / f"lat{n}", config=config, embedding=embedding)
            secs = bulk_add(h, fillers[:n])
            h.close(); h = MemoryHandler(Path(tmp) / f"lat{n}", config=config, embedding=embedding)   # reopen: the index is loaded from disk
            lat[n] = {**latency(h, [q["query"] for q in queries], args.repeats), "add_s": secs}
            print(n, lat[n], flush=True)
    machine = bench_machine()
    lines += ["# Long-term memory (evotr_lib.assistant.memory): recall and search latency", ""]
    if args.smoke: lines += ["**SMOKE RUN**: tiny sizes, to check the script; the numbers mean nothing.", ""]
    lines += [f"Machine: {machine} ({cpu_name()}), torch threads {args.threads}, shared with other work. "
              f"Date {datetime.date.today()}. Embedding {embedding.get_config()} ({embedding.dim} dims), Chroma embedded "
              f"(`PersistentClient`, HNSW, cosine). Lexicon: {embedding.lexicon}. Run time {time.time() - t_start:.0f} s.", "",
              "## Recall on the memory sets (`data/memories/`: held-out; `data/memories/dev/` and `dev2/`: development)", "",
              "| embedding | set | store | queries | n | recall@1 | recall@3 |", "|---|---|---|---|---|---|---|"]
    for (name, split, store), res in results.items():
        for part, (n, r1, r3) in res.items(): lines.append(f"| {name} | {split} | {store} | {part} | {n} | {r1:.3f} | {r3:.3f} |")
    lines += ["", "Target: recall@3 >= 0.9 on the held-out set. Bilingual: every text is embedded with its word-by-word "
              f"Turkish <-> English translation (up to {config.translations} per word, chosen on the development sets).", "",
              "## Search latency (`search(query, top_k=3)`: embed the query + Chroma query), one query at a time", "",
              "| stored memories | searches | p50 ms | p95 ms | p99 ms | of which embedding p50 ms | bulk add s |", "|---|---|---|---|---|---|---|"]
    for n, r in lat.items():
        lines.append(f"| {n:,} | {r['n']} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['embed_p50']:.1f} | {r['add_s']:.0f} |")
    lines += ["", "Target: p95 < 100 ms at 100K (aim < 30 ms)."]
    path = write_results(f"rag_{machine_slug()}", lines, out=Path(args.out))
    print(path.read_text())


if __name__ == "__main__":
    main()
