"""The shipped router loads and predicts in a fresh process with the network blocked, and `bench/router.py` runs end to end."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Every way out of the process fails: a download attempt would raise instead of silently succeeding.
OFFLINE_PROBE = r"""
import json, socket
def refuse(*args, **kwargs): raise OSError("network access attempted during an offline router test")
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
from evotr_lib.assistant.router import Router
router = Router.load()
print(json.dumps([vars(router.predict(t)) for t in ["Osmanlı tarihi anlat", "TypeError: 'NoneType' object is not subscriptable", ""]]))
"""


def test_router_loads_offline_in_a_fresh_process(tmp_path):
    # HF_HUB_OFFLINE=0: even a user who allows the hub gets no download; HF_HOME empty: nothing comes from a cache.
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf")}
    r = subprocess.run([sys.executable, "-c", OFFLINE_PROBE], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    history, debug, empty = json.loads(r.stdout.strip().splitlines()[-1])
    assert (history["intent"], history["expert"], history["fallback"]) == ("history", "tr_chat", False)
    assert (debug["intent"], debug["expert"]) == ("code_debug", "python_coder")
    assert empty == {"intent": "general_chat", "confidence": 0.0, "expert": "base", "fallback": True}
    assert not (tmp_path / "hf").exists() or not any((tmp_path / "hf").rglob("*.safetensors"))


def test_router_bench_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "router.py"), "--smoke", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    text = (tmp_path / "router_cpu.md").read_text()
    assert "SMOKE RUN" in text and " cores" in text and "CPU " in text     # the machine is named
    assert "| held-out messages | 9 |" in text and "| one 100 KB message" in text
