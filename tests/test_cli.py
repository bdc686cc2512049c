"""The installed `evotr` console script and the package imports, run as a user would: in a fresh process."""
import json, os, subprocess, sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(*cmd, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **kw.pop("env", {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, **kw)


def test_core_modules_import():
    r = run(sys.executable, "-c", "import evotr_lib.mmrec.memory_state, evotr_lib.mmrec.mdi, evotr_lib.mmrec.hds")
    assert r.returncode == 0, r.stderr


def test_evotr_info_runs(tmp_path):
    r = run(str(BIN / "evotr"), "info", env={"EVOTR_HOME": str(tmp_path / "home")})
    assert r.returncode == 0, r.stderr
    for word in ("evotr", "torch", "device", "components:", "memory_state", "mdi", "hds", "optional backends:"):
        assert word in r.stdout
    assert str(tmp_path / "home") in r.stdout
    assert "unavailable" not in r.stdout


def test_evotr_info_names_the_base_model_and_lexicon_without_importing_the_library():
    r = run(sys.executable, "-X", "importtime", str(BIN / "evotr"), "info")
    assert r.returncode == 0, r.stderr
    for words in ("google/gemma-3-270m", "Gemma Terms of Use", "lexicon", "core word list", "FreeDict"):
        assert words in r.stdout
    imported = {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert not {"torch", "transformers", "chromadb", "peft", "sentence_transformers"} & imported, "evotr info must stay light"


def test_evotr_info_check_imports_every_module():
    r = run(str(BIN / "evotr"), "info", "--check")
    assert r.returncode == 0 and "unavailable" not in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_night_schedule_names_the_data_home(tmp_path):
    r = run(str(BIN / "evotr"), "night", "--schedule", env={"EVOTR_HOME": str(tmp_path / "my home")})
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip().splitlines()[-1]
    assert line.startswith("0 3 * * * ") and f"--home '{tmp_path / 'my home'}'" in line and "night.log" in line


def test_evotr_info_json():
    r = run(str(BIN / "evotr"), "info", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["device"] in ("cpu", "cuda", "mps") or d["device"].startswith("cuda")
    assert {"mmrec.memory_state", "mmrec.mdi", "mmrec.hds"} <= set(d["components"])


def test_evotr_rejects_bad_usage():
    r = run(str(BIN / "evotr"), "no-such-command")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    assert run(str(BIN / "evotr")).returncode == 2


TINY = ('{"model_dim": 32, "num_layers": 2, "num_heads": 4, "inner_dim": 8, "num_memories": 2, "mem_dim": 16, '
        '"mem_slots": 4, "chunk_size": 16}')


def test_train_resume_eval_end_to_end(tmp_path):
    "evotr train -> stop -> evotr train --resume -> evotr eval, as a user would run them."
    evotr = str(BIN / "evotr")
    common = ["--corpus", "python", "--tokenizer", "byte", "--seq-len", "64", "--batch-size", "4", "--lr", "3e-3", "--model-config", TINY]
    r = run(evotr, "train", str(tmp_path / "run"), "--steps", "10", *common)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained to step 10" in r.stdout
    r = run(evotr, "train", str(tmp_path / "run"), "--steps", "20", "--resume")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained to step 20" in r.stdout
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = {r["step"]: r["loss"] for r in logged if "loss" in r}
    assert sorted(losses) == [10, 20] and losses[20] < losses[10]      # logged every 10 steps, across the resume
    r = run(evotr, "eval", str(tmp_path / "run"), "--max-batches", "2", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout)
    assert result["corpus"] == "python" and 0 < result["bpb"] < 8
    r = run(evotr, "eval", str(tmp_path / "nothing"))
    assert r.returncode != 0 and "not found" in r.stderr
