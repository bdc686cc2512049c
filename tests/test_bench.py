"""The benchmark scripts run end to end (with --smoke: tiny sizes, any device), so they cannot rot unnoticed."""
import os, subprocess, sys
from pathlib import Path

import pytest

from evotr_lib.assistant.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]


def smoke(script, out, *args) -> Path:
    "Run bench/<script> --smoke into `out`; returns the one results file it wrote."
    r = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--smoke", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    (result,) = out.glob(f"{script.removesuffix('.py')}_*.md")
    assert "SMOKE RUN" in result.read_text()
    return result


def test_scan_bench_smoke(tmp_path):
    text = smoke("scan.py", tmp_path).read_text()
    assert "Device copy bandwidth" in text and "failed" not in text
    for provider in ("evotr triton", "evotr torch (chunked)", "naive loop"):
        assert f"| {provider} | float32 |" in text and f"| {provider} | bfloat16 |" in text


def test_model_bench_smoke(tmp_path):
    text = smoke("model.py", tmp_path).read_text()
    assert "| 128 |" in text and "| 256 |" in text


def test_compare_bench_smoke(tmp_path):
    "The GPT and every MM-Rec memory variant are trained and scored; the same call again reads the finished runs back."
    args = ("--task", "mqar", "--work", str(tmp_path / "runs"), "--jobs", "2")
    text = smoke("compare.py", tmp_path / "out", *args).read_text()
    assert "| 64 | 4 | gpt |" in text
    for variant in ("chunk-mean", "conv", "delta", "conv+delta"): assert f"| 64 | 4 | mmrec | {variant} |" in text
    assert list((tmp_path / "out").glob("compare_mqar_*.png"))
    results = sorted((tmp_path / "runs").glob("*/result.json"))
    assert len(results) == 5
    written = [r.stat().st_mtime_ns for r in results]
    assert smoke("compare.py", tmp_path / "again", *args).read_text() == text
    assert [r.stat().st_mtime_ns for r in results] == written


def test_compare_zoology_regime_smoke(tmp_path):
    result = smoke("compare.py", tmp_path, "--task", "mqar", "--regime", "zoology")
    assert result.name.startswith("compare_mqar_zoology_")
    text = result.read_text()
    assert "a fixed training set of 64 examples without filler" in text and "| 64 | 4 | gpt |" in text


def test_compare_passkey_smoke(tmp_path):
    text = smoke("compare.py", tmp_path, "--task", "passkey").read_text()
    assert "| model | parameters | best lr | L=32 | L=64 |" in text and "| mmrec |" in text and "| gpt |" in text


def test_compare_lm_smoke_ships_a_loadable_model(tmp_path):
    "The lm task trains both models, writes the table and exports the MM-Rec run as a model folder that load_lm reads."
    text = smoke("compare.py", tmp_path / "results", "--task", "lm", "--ship", str(tmp_path / "model")).read_text()
    assert "| mmrec |" in text and "| gpt |" in text and "test bpb" in text
    from evotr_lib.lm.train import load_lm
    model, tok, info = load_lm(tmp_path / "model")
    assert info["tokenizer"] == "bpe8192" and set(info["scores"]) >= {"test_bpb_mmrec", "test_bpb_gpt"}
    assert 0 < info["scores"]["test_bpb_mmrec"] < 8


def test_compare_lm_memory_variants_smoke(tmp_path):
    "--variants with --width: bits per byte of the MQAR-sized models, one row per variant, in their own results file."
    result = smoke("compare.py", tmp_path, "--task", "lm", "--variants", "chunk-mean,conv+delta", "--width", "32", "--lrs", "3e-3")
    assert result.name.startswith("compare_lm_memory_")
    text = result.read_text()
    assert "| mmrec chunk-mean |" in text and "| mmrec conv+delta |" in text and "| gpt |" in text


def test_pdclm_bench_smoke(tmp_path):
    "Every part of bench/pdclm.py runs end to end and writes its table, plot and JSON."
    expect = {"pse": "| pse |", "hmr": "| HMR (short/mid/long, surprise segments) |", "reflect": "| reflection network |",
              "mrl": "| 4 rewards, per-reward normalisation |"}
    for part, row in expect.items():
        out = tmp_path / part
        text = smoke("pdclm.py", out, "--part", part).read_text()
        assert row in text, text
        assert list(out.glob(f"pdclm_{part}_*.png")) and list(out.glob(f"pdclm_{part}_*.json"))


def test_rag_bench_smoke(tmp_path):
    text = smoke("rag.py", tmp_path).read_text()
    assert "| same-language |" in text and "| 100 |" in text and "| 200 |" in text


def test_engine_bench_smoke(tmp_path):
    text = smoke("engine.py", tmp_path).read_text()
    for backend in ("mmrec", "transformers", "mlx"): assert f"| {backend} |" in text
    for model in ("base", "tr_chat", "python_coder"): assert f"| {model} |" in text


@pytest.mark.skipif(not load_registry().adapter("python_coder", "llamacpp"), reason="the shipped registry has no llama.cpp experts")
def test_assistant_bench_smoke(tmp_path):
    text = smoke("assistant.py", tmp_path, "--split", "dev").read_text()
    assert "| next turn |" in text and "python_coder pass@1" in text and "| python_coder |" in text
