"""The assistant on this machine, measured as a person meets it: the speed of a chat turn with memory context on the default
engine (llama.cpp, Gemma 3 270M), and what the experts change, on evaluation sets they never trained on (37_evals):

    python bench/assistant.py                   # the dev and the held-out splits (about 40 minutes on 2 cores)
    python bench/assistant.py --split dev       # one split
    python bench/assistant.py --parts speed turkish facts   # some parts only; the others keep their last results
    python bench/assistant.py --smoke           # a few items of each set (CI): checks that the script runs, measures nothing

- speed: first-token latency and decode speed of a chat turn (two earlier turns, three memories, the message), the first turn
  of a conversation (empty prompt cache) and the next one (its prefix cached), median of repeats, `cpu_threads()` threads;
- python_coder: pass@1 on small Python function tasks (the code runs in a sandboxed subprocess), the bare base model against
  the expert, greedy with the assistant's repeat penalty for code (none);
- Turkish: the share of Turkish prompts answered in Turkish without degenerate repetition, through the whole assistant (router,
  experts; its answers end at their first repeated sentence), against the bare base model;
- memory: facts told in one session and asked about in a later one (Turkish, English, mixed), the share of answers that
  contain the fact, through the whole assistant with a fresh embedded memory;
- held-out loss: answer-token cross-entropy of base and experts on each expert's validation examples (transformers, fp32).

Results: bench/results/assistant_<machine>.md and bench/results/assistant.json.
"""
import argparse, datetime, json, os, platform, re, statistics, sys, tempfile, time, warnings
from pathlib import Path

from _common import ROOT, machine as bench_machine, machine_slug, write_results
from evotr_lib.assistant.orchestrator import AssistantConfig
from evotr_lib.config import atomic_write_text, cpu_threads
from evotr_lib.assistant.evals import fact_answer_rate, load_facts, load_python_tasks, load_turkish_prompts, pass_at_1, turkish_answer_rate

EXPERTS = ("tr_chat", "python_coder")


def speed(engine, repeats: int, new_tokens: int) -> dict:
    "First token and decode speed of a chat turn with memory context: a first turn (nothing cached) and the next turn (prefix cached)."
    from evotr_lib.assistant.base_model import with_memories
    memories = ["Kedimin adı Pamuk.", "Kız kardeşim İzmir'de oturuyor.", "I work as a nurse at the city hospital."]
    history = [{"role": "user", "content": "Merhaba! Bugün biraz yorgunum."},
               {"role": "assistant", "content": "Merhaba! Yorgun olmana üzüldüm. Biraz dinlenmek iyi gelebilir; sana nasıl yardımcı olabilirim?"},
               {"role": "user", "content": "Akşam için hafif bir yemek önerir misin?"},
               {"role": "assistant", "content": "Zeytinyağlı bir sebze yemeği ve yanında yoğurt hafif ve doyurucu olur."}]
    first = history + [{"role": "user", "content": with_memories("Kedimin adı neydi, hatırlıyor musun?", memories)}]
    rows = {"cold": [], "cached": []}
    for i in range(repeats):
        engine.llm.reset()                                                       # a new conversation: nothing cached
        answer = engine.generate(first, max_tokens=new_tokens, expert="tr_chat", seed=i)
        rows["cold"].append((engine.last.first_token_s, engine.last.new_tokens, engine.last.total_s, engine.last.prompt_tokens, 0))
        nxt = first[:-1] + [{"role": "user", "content": "Kedimin adı neydi, hatırlıyor musun?"}, {"role": "assistant", "content": answer},
                            {"role": "user", "content": with_memories("Peki kız kardeşim nerede oturuyor?", memories)}]
        engine.eos_ids, eos = set(), engine.eos_ids                              # decode the full number of tokens
        engine.generate(nxt, max_tokens=new_tokens, expert="tr_chat", seed=i)
        engine.eos_ids = eos
        info = engine.last
        rows["cached"].append((info.first_token_s, info.new_tokens, info.total_s, info.prompt_tokens, info.cached_prompt_tokens))
    out = {}
    for kind, rs in rows.items():
        out[kind] = {"first_token_s": statistics.median(r[0] for r in rs),
                     "decode_tokens_per_s": statistics.median((r[1] - 1) / (r[2] - r[0]) for r in rs if r[1] > 1),
                     "prompt_tokens": rs[0][3], "cached_prompt_tokens": rs[0][4]}
    return out


def chat_fn(engine, expert, max_tokens, penalty):
    return lambda prompt: engine.generate([{"role": "user", "content": prompt}], max_tokens=max_tokens, expert=expert, temperature=0.0,
                                          repeat_penalty=penalty)


def assistant_for(engine, home: Path, memory: bool, max_tokens: int, penalty: float, forced: str | None = None):
    from evotr_lib.assistant.orchestrator import Assistant
    bot = Assistant.default(home=home, engine=engine, memory=memory, config={"temperature": 0.0, "seed": 0, "max_tokens": max_tokens, "repeat_penalty": penalty})
    if forced: bot.command(f"/switch {forced}")
    return bot


def fact_rate(engine, items: list[dict], home: Path, penalty: float, forced: str | None = None) -> dict:
    "Tell every fact in one session, then ask about each in a new session (a new process would see the same stores)."
    teller = assistant_for(engine, home, True, 48, penalty, forced)                       # what it answers to a statement is not scored
    told = sum(bool(teller.ask(item["fact"]).remembered) for item in items)
    teller.memory.close()
    asker = assistant_for(engine, home, True, 128, penalty, forced)
    def answer(fact, question):
        asker.memory.short_term.clear()                                          # each question on its own, like a new session
        return asker.ask(question).text
    result = fact_answer_rate(answer, items)
    asker.memory.close()
    return {**result, "told_and_remembered": told / len(items)}


def held_out_losses(n: int) -> dict:
    "Answer-token loss (nats) of base and experts on the first `n` validation examples of each expert's data."
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from evotr_lib.assistant.expert_data import load_expert_data
    from evotr_lib.assistant.experts import answer_loss, base_model_path, GEMMA_BASE
    from evotr_lib.assistant.registry import load_registry
    torch.set_num_threads(cpu_threads())
    path = base_model_path(GEMMA_BASE)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    sets = {e: load_expert_data(e, "validation")[:n] for e in EXPERTS}
    out = {"base": {e: answer_loss(model, tok, sets[e]) for e in EXPERTS}}
    reg = load_registry()
    peft = None
    for expert in EXPERTS:
        spec = reg.adapter(expert, "transformers")
        if spec is None: continue
        if peft is None: peft = PeftModel.from_pretrained(model, spec.path, adapter_name=expert)
        else: peft.load_adapter(spec.path, adapter_name=expert)
        peft.set_adapter(expert)
        out[expert] = {e: answer_loss(peft, tok, sets[e]) for e in EXPERTS}
    return out


def code_part(engine, split, k, work, penalty):
    from evotr_lib.assistant.task_examples import all_tasks
    tasks = load_python_tasks(split)[:k]
    penalty = AssistantConfig(repeat_penalty=penalty).repeat_penalty_for("python_coder")     # as the assistant answers code; the base alike
    code = {name: pass_at_1(chat_fn(engine, expert, 384, penalty), tasks) for name, expert in (("base", "base"), ("python_coder", "python_coder"))}
    trained = {t[0] for t in all_tasks()}                                        # the function names of the expert's training tasks
    unseen = [r["passed"] for t, r in zip(tasks, code["python_coder"]["results"]) if t["entry_point"] not in trained]
    return {"n": len(tasks), "pass_at_1": {n: r["pass_at_1"] for n, r in code.items()},
            "unseen_names": {"n": len(unseen), "pass_at_1": sum(unseen) / len(unseen) if unseen else None},
            "failures": [{k: r[k] for k in ("id", "error")} for r in code["python_coder"]["results"] if not r["passed"]]}

def turkish_part(engine, split, k, work, penalty):
    prompts = load_turkish_prompts(split)[:k]
    chat_bot = assistant_for(engine, work / f"tr-{split}", False, 160, penalty)                 # router and experts; no memory, so each prompt stands alone
    tr = {"assistant": turkish_answer_rate(lambda p: chat_bot.ask(p).text, prompts), "base": turkish_answer_rate(chat_fn(engine, "base", 160, penalty), prompts)}
    return {"n": len(prompts), "turkish_answer_rate": {n: r["turkish_answer_rate"] for n, r in tr.items()}, "echo": {n: r["echo"] for n, r in tr.items()},
            "misses": [r for r in tr["assistant"]["results"] if not r["ok"]][:8]}

def facts_part(engine, split, k, work, penalty):
    facts = load_facts(split)[:k]
    r = fact_rate(engine, facts, work / f"facts-{split}", penalty)
    return {"n": len(facts), "fact_answer_rate": r["fact_answer_rate"], "by_lang": r["by_lang"], "told_and_remembered": r["told_and_remembered"],
            "misses": [x for x in r["results"] if not x["ok"]][:8]}

SPLIT_PARTS = {"code": code_part, "turkish": turkish_part, "facts": facts_part}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="a few items of each set (CI)")
    p.add_argument("--split", choices=["dev", "heldout", "both"], default="both")
    p.add_argument("--parts", nargs="+", choices=["speed", *SPLIT_PARTS, "loss"], default=["speed", *SPLIT_PARTS, "loss"])
    p.add_argument("--repeat-penalty", type=float, default=AssistantConfig().repeat_penalty, help="the answers' repeat penalty (default: the assistant's)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    from evotr_lib.assistant.llamacpp import LlamaCppEngine
    from evotr_lib.assistant.registry import load_registry
    needed = {"tr_chat"} if set(args.parts) & {"speed", "turkish", "facts"} else set()
    needed |= {"python_coder"} if "code" in args.parts else set()
    if missing := [e for e in sorted(needed) if not load_registry().adapter(e, "llamacpp")]:
        sys.exit(f"the registry lacks the llamacpp experts {missing}: train them first (38_experts)")
    machine, slug = bench_machine(), machine_slug()
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    json_path = out / ("assistant_smoke.json" if args.smoke else "assistant.json")
    result = json.loads(json_path.read_text()) if json_path.is_file() and not args.smoke else {}
    if result.get("machine", machine) != machine: result = {}                  # parts from another machine are not mixed in
    t0 = time.perf_counter(); engine = LlamaCppEngine(); load_s = time.perf_counter() - t0
    result.update({"machine": machine, "date": str(datetime.date.today()), "threads": cpu_threads(), "smoke": args.smoke,
                   "repeat_penalty": args.repeat_penalty, "stop_repeats": AssistantConfig().stop_repeats})
    k = 3 if args.smoke else None
    if "speed" in args.parts: result["speed"] = {**speed(engine, 2 if args.smoke else 5, 16 if args.smoke else 128), "engine_load_s": load_s}
    with tempfile.TemporaryDirectory() as d:
        for split in (["dev", "heldout"] if args.split == "both" else [args.split]):
            for part in SPLIT_PARTS:
                if part in args.parts:
                    t1 = time.perf_counter()
                    result.setdefault("splits", {}).setdefault(split, {})[part] = {**SPLIT_PARTS[part](engine, split, k, Path(d), args.repeat_penalty), "minutes": (time.perf_counter() - t1) / 60}
    if "loss" in args.parts: result["held_out_loss"] = held_out_losses(4 if args.smoke else 60)
    main = result.get("splits", {}).get("heldout") or next(iter(result.get("splits", {}).values()), {})
    result.update(first_token_s=result.get("speed", {}).get("cached", {}).get("first_token_s"),
                  decode_tokens_per_s=result.get("speed", {}).get("cached", {}).get("decode_tokens_per_s"),
                  pass_at_1=main.get("code", {}).get("pass_at_1"), fact_answer_rate=main.get("facts", {}).get("fact_answer_rate"),
                  turkish_answer_rate=main.get("turkish", {}).get("turkish_answer_rate", {}).get("assistant"))
    atomic_write_text(json_path, json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(write_results(f"assistant_{slug}", markdown(result), out=out).read_text())


def markdown(r: dict) -> list[str]:
    lines = [f"# The assistant, {r['machine']}", "",
             f"{r['date']}; llama.cpp (llama-cpp-python) on Gemma 3 270M Q4_K_M with the shipped GGUF LoRA experts, {r['threads']} thread(s), greedy answers with the repeat penalty {r.get('repeat_penalty', 1.0)} (none for code, as in the assistant)"
             + ("; the assistant's answers end at their first repeated sentence." if r.get("stop_repeats") else ".")
             + (" SMOKE RUN: not a measurement." if r["smoke"] else ""), ""]
    if "speed" in r:
        s = r["speed"]
        lines += ["## Speed of a chat turn with memory context (expert tr_chat)", "", f"Engine load {s['engine_load_s']:.2f} s; median of the repeats.", "",
                  "| turn | prompt tokens | reused from cache | first token (s) | decode (tokens/s) |", "|---|---|---|---|---|"]
        for kind, label in (("cold", "first turn of a conversation"), ("cached", "next turn")):
            lines.append(f"| {label} | {s[kind]['prompt_tokens']} | {s[kind]['cached_prompt_tokens']} | {s[kind]['first_token_s']:.3f} | {s[kind]['decode_tokens_per_s']:.1f} |")
    for split, x in r.get("splits", {}).items():
        lines += ["", f"## {split} split", "", "| measure | items | bare base model | the assistant (router, experts, memory) |", "|---|---|---|---|"]
        if "code" in x:
            lines.append(f"| python_coder pass@1 | {x['code']['n']} | {x['code']['pass_at_1']['base']:.3f} | {x['code']['pass_at_1']['python_coder']:.3f} |")
            if (u := x["code"].get("unseen_names")) and u["n"]:
                lines.append(f"| of them, tasks whose function name no training task has | {u['n']} | | {u['pass_at_1']:.3f} |")
        if "turkish" in x:
            t = x["turkish"]
            lines.append(f"| Turkish prompts answered in Turkish, not degenerate, not an echo | {t['n']} | {t['turkish_answer_rate']['base']:.3f} | {t['turkish_answer_rate']['assistant']:.3f} |")
            if "echo" in t: lines.append(f"| of them, answers that only repeat the prompt (echo) | {t['n']} | {t['echo']['base']:.3f} | {t['echo']['assistant']:.3f} |")
        if "facts" in x:
            f = x["facts"]
            lines += [f"| facts told in one session, answered with the fact in the next | {f['n']} | - | {f['fact_answer_rate']:.3f} |", "",
                      "Facts by language: " + ", ".join(f"{k} {v:.2f}" for k, v in f["by_lang"].items())
                      + f"; facts filed into memory when told: {f['told_and_remembered']:.2f}."]
    if "held_out_loss" in r:
        lines += ["", "## Held-out answer loss (nats per answer token on the experts' validation examples, transformers fp32)", "",
                  "| model | " + " | ".join(f"{e} data" for e in EXPERTS) + " |", "|---|" + "---|" * len(EXPERTS)]
        for model, row in r["held_out_loss"].items():
            lines.append(f"| {model} | " + " | ".join(f"{row[e]:.3f}" for e in EXPERTS) + " |")
    return lines


if __name__ == "__main__":
    main()
