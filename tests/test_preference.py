"""The nightly job's entry point (`evotr night` calls `run_night(home=..., day=...)`) on homes without trainable data."""
import json

from evotr_lib.assistant.lifecycle import ConversationLog, FeedbackDB, new_preference_pairs
from evotr_lib.assistant.preference import new_kto_rows, run_night
from evotr_lib.assistant.registry import load_registry


def test_run_night_empty_home(tmp_path):
    out = run_night(home=tmp_path, day="2024-05-01")
    assert out["report"].is_file() and out["report"].name == "night-2024-05-01.md"
    assert out["training"] == [] and "(not triggered)" in out["report"].read_text()


def test_kto_needs_a_transformers_expert(tmp_path):
    "Thumbs for an expert that has only an MM-Rec adapter: reported, not trained, not marked as used; nothing is loaded."
    reg = load_registry().to_dict()
    reg["experts"] = {name: {"description": e["description"]} for name, e in reg["experts"].items()}
    reg["experts"]["tr_chat"]["adapters"] = {"mmrec": {"path": "tr_chat/mmrec", "base_model": "nowhere", "base_fingerprint": "sha256:0"}}
    (tmp_path / "adapters").mkdir(); (tmp_path / "adapters" / "registry.json").write_text(json.dumps(reg))
    log, fb = ConversationLog(tmp_path / "logs"), FeedbackDB(tmp_path / "feedback.db")
    for i in range(10):
        turn = {"session": "s", "user": f"soru {i}", "assistant": f"cevap {i}", "expert": "tr_chat"}
        turn["id"] = log.append(turn); fb.record("good" if i % 2 else "bad", turn)
    out = run_night(home=tmp_path, registry=tmp_path / "adapters" / "registry.json")
    assert out["training"] == []
    assert any("KTO trains transformers experts" in e for e in out["errors"]), out["errors"]
    assert "KTO trains transformers experts" in out["report"].read_text()
    assert len(new_kto_rows(fb, 10)["tr_chat"]) == 10 and new_preference_pairs(fb) == {}
