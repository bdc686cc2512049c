"""The benchmark scripts run end to end (with --smoke: tiny sizes, any device), so they cannot rot unnoticed."""
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_scan_bench_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "scan.py"), "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    (result,) = tmp_path.glob("scan_*.md")
    text = result.read_text()
    assert "Device copy bandwidth" in text and "SMOKE RUN" in text
    for provider in ("evotr triton", "evotr torch (chunked)", "naive loop"):
        assert f"| {provider} | float32 |" in text and f"| {provider} | bfloat16 |" in text
    assert "failed" not in text


def test_model_bench_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "model.py"), "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    (result,) = tmp_path.glob("model_*.md")
    text = result.read_text()
    assert "SMOKE RUN" in text and "| 128 |" in text and "| 256 |" in text


def test_compare_bench_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "compare.py"), "--task", "mqar", "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    (result,) = tmp_path.glob("compare_mqar_*.md")
    text = result.read_text()
    assert "SMOKE RUN" in text and "| 64 | 4 | mmrec |" in text and "| 64 | 4 | gpt |" in text
    assert list(tmp_path.glob("compare_mqar_*.png"))
