"""One interface test suite, run against the three inference engines (mmrec, transformers, mlx) on tiny models built here."""
import contextlib, io, warnings
from pathlib import Path

import pytest
import torch

from evotr_lib.lm.corpus import load_corpus
from evotr_lib.assistant.engine import ContextOverflowWarning, MLXEngine, MMRecEngine, TransformersEngine, mlx_fingerprint, train_mlx_lora
from evotr_lib.testing import tiny_hf_model
from evotr_lib.assistant.lora import AdapterError, ExpertChoice, ExpertFallbackWarning, model_fingerprint
from evotr_lib.testing import random_lora, tiny_lm
from evotr_lib.assistant.registry import AdapterRegistry, load_registry
from evotr_lib.lm.train import load_lm

CONTEXT = 128
PROMPT = "def merhaba(isim):\n"
CHAT = [{"role": "system", "content": "Kısa cevap ver."}, {"role": "user", "content": "Merhaba, nasılsın?"}]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    "Tiny model folders for every backend and a registry with a `tr_chat` adapter for each (python_coder has none)."
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("engines")
    mm_dir, hf_dir = tiny_lm(d / "mmrec", max_seq_len=CONTEXT), tiny_hf_model(d / "qwen2", max_positions=CONTEXT)
    raw = load_registry().to_dict()
    reg = AdapterRegistry.from_dict({**raw, "experts": {k: {"description": ""} for k in raw["experts"]}}, "test", d)
    mm = load_lm(mm_dir)[0]
    reg = reg.with_adapter("tr_chat", "mmrec", random_lora(mm, d / "mm_tr", ["W_kvz", "W_up", "W_down"]), "tiny", model_fingerprint(mm))
    from transformers import AutoModelForCausalLM
    hf = AutoModelForCausalLM.from_pretrained(hf_dir)
    reg = reg.with_adapter("tr_chat", "transformers", random_lora(hf, d / "hf_tr", ["q_proj", "v_proj", "down_proj"]), "tiny", model_fingerprint(hf))
    from mlx_lm import load
    with contextlib.redirect_stdout(io.StringIO()):                     # an mlx_lm LoRA trained for a few steps, loaded back below
        mlx_adapter = train_mlx_lora(hf_dir, load_corpus("tr", "validation")[:16], d / "mlx_tr", rank=4, scale=4.0, iters=6, lr=1e-2, max_seq_length=64)
    reg = reg.with_adapter("tr_chat", "mlx", mlx_adapter, "tiny", mlx_fingerprint(load(str(hf_dir))[0]))
    return {"mmrec": (MMRecEngine, mm_dir), "transformers": (TransformersEngine, hf_dir), "mlx": (MLXEngine, hf_dir)}, reg


@pytest.fixture(params=["mmrec", "transformers", "mlx"])
def engine(request, models):
    engines, reg = models
    cls, path = engines[request.param]
    return cls(path, reg)


def test_generate_returns_the_joined_stream(engine):
    out = engine.generate(PROMPT, max_tokens=16)
    chunks = list(engine.stream(PROMPT, max_tokens=16))
    assert isinstance(out, str) and all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks) == out
    info = engine.last
    assert info.choice == ExpertChoice(None, "base") and info.prompt_tokens == len(engine.encode(PROMPT))
    assert info.new_tokens <= 16 and info.finish_reason in ("length", "eos") and 0 < info.first_token_s <= info.total_s


def test_max_tokens(engine):
    assert engine.generate(PROMPT, max_tokens=0) == "" and engine.last.finish_reason == "length"
    engine.generate(PROMPT, max_tokens=5)
    assert engine.last.new_tokens <= 5
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="max_tokens must be an int"): engine.generate(PROMPT, max_tokens=bad)


def test_stop_strings_cut_before_the_first_match(engine):
    full = engine.generate(PROMPT, max_tokens=32)
    starts = [k for k in range(len(full) - 3) if "\ufffd" not in full[k:k + 3]]   # a random byte model also writes invalid UTF-8
    assert len(starts) >= 3, full
    for k in (starts[0], starts[len(starts) // 2], starts[-1]):
        stop = full[k:k + 3]
        out = engine.generate(PROMPT, max_tokens=32, stop=["\x00never", stop])
        assert out == full[:full.find(stop)] and engine.last.finish_reason == "stop"
        assert "".join(engine.stream(PROMPT, max_tokens=32, stop=stop)) == out
    assert engine.generate(PROMPT, max_tokens=32, stop="\x00never") == full
    with pytest.raises(ValueError, match="stop must be"): engine.generate(PROMPT, stop=[""])


def test_sampling_is_reproducible_per_seed(engine):
    kw = dict(max_tokens=16, temperature=1.0, top_k=50, top_p=0.95)
    a = engine.generate(PROMPT, seed=1, **kw)
    assert engine.generate(PROMPT, seed=1, **kw) == a
    assert any(engine.generate(PROMPT, seed=s, **kw) != a for s in (2, 3, 4))
    with pytest.raises(ValueError, match="temperature"): engine.generate(PROMPT, temperature=-1)


def test_chat_messages(engine):
    text = engine.chat_text(CHAT)
    assert "Merhaba, nasılsın?" in text and "Kısa cevap ver." in text
    assert engine.generate(CHAT, max_tokens=8) == engine.generate(text, max_tokens=8)
    for bad in ([], [{"role": "user"}], [{"content": "x"}], 42, ("user", "hi")):
        with pytest.raises(ValueError, match="prompt must be"): engine.generate(bad)
    with pytest.raises(ValueError, match="prompt is empty"): engine.generate("")


def test_long_prompts_lose_their_oldest_tokens(engine):
    long = "Merhaba dünya, nasılsın? " * 60
    n = len(engine.encode(long))
    assert n > CONTEXT
    with pytest.warns(ContextOverflowWarning, match="oldest"):
        engine.generate(long, max_tokens=8)
    assert (engine.last.prompt_tokens, engine.last.dropped_prompt_tokens) == (CONTEXT - 8, n - (CONTEXT - 8))
    with pytest.raises(ValueError, match="leaves no room"): engine.generate(PROMPT, max_tokens=CONTEXT)


def test_experts_swap_and_come_back(engine):
    kw = dict(max_tokens=16, temperature=1.0, seed=0)
    base = engine.generate(PROMPT, **kw)
    expert = engine.generate(PROMPT, expert="tr_chat", **kw)
    assert engine.last.choice == ExpertChoice("tr_chat", "tr_chat") and expert != base
    for _ in range(3):                                                # swapping back and forth: identical outputs
        assert engine.generate(PROMPT, expert="base", **kw) == base
        assert engine.generate(PROMPT, expert="tr_chat", **kw) == expert
    assert engine.generate(PROMPT, expert=None, **kw) == base
    with pytest.raises(KeyError, match="unknown expert 'astrologer'"): engine.generate(PROMPT, max_tokens=4, expert="astrologer")


def test_unservable_experts_are_errors_or_reported_fallbacks(engine, models):
    with pytest.raises(AdapterError, match="'python_coder' has no"): engine.generate(PROMPT, max_tokens=4, expert="python_coder")
    lenient = type(engine)(engine_path(engine, models), models[1], fallback=True)
    base = lenient.generate(PROMPT, max_tokens=8)
    with pytest.warns(ExpertFallbackWarning, match="base model answers"):
        assert lenient.generate(PROMPT, max_tokens=8, expert="python_coder") == base
    assert lenient.last.choice.fallback and lenient.last.choice.expert == "base" and "no" in lenient.last.choice.reason


def engine_path(engine, models):
    return models[0][engine.backend][1]


def test_mismatched_base_model_is_refused(engine, models, tmp_path):
    "An adapter registered for another base model (another fingerprint) is an error, never silently applied."
    _, reg = models
    spec = reg.adapter("tr_chat", engine.backend)
    wrong = reg.with_adapter("tr_chat", engine.backend, spec.path, "another model", "sha256:" + "f" * 64)
    strict = type(engine)(engine_path(engine, models), wrong)
    with pytest.raises(AdapterError, match="trained on base model 'another model'"): strict.generate(PROMPT, max_tokens=4, expert="tr_chat")
    assert strict.experts.active == "base"
