"""The lifecycle stores under real concurrency and crashes: two processes writing at once lose nothing, and a process
killed with SIGKILL loses no turn or feedback row it had acknowledged."""
import signal, subprocess, sys
from collections import Counter

from evotr_lib.assistant.lifecycle import ConversationLog, FeedbackDB

WRITER = """
import sys
from evotr_lib.assistant.lifecycle import ConversationLog, FeedbackDB
root, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
log, db = ConversationLog(root + "/logs", max_bytes=4096), FeedbackDB(root + "/feedback.db")
for i in range(n):
    turn = {"session": name, "user": f"{name} {i}", "assistant": "answer " * 10, "expert": "tr_chat"}
    turn["id"] = log.append(turn)
    fid = db.record(("good", "bad")[i % 2], turn) if i % 3 else db.record("correction", turn, f"fix {i}")
    print(turn["id"], fid, flush=True)
"""


def spawn(root, name, n):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(root), name, str(n)], stdout=subprocess.PIPE, text=True)


def test_two_writers_lose_nothing(tmp_path):
    procs = [spawn(tmp_path, name, 150) for name in ("cli", "notebook")]
    for p in procs: assert p.wait(timeout=300) == 0
    turns = ConversationLog(tmp_path / "logs").read()
    assert Counter(t["session"] for t in turns) == {"cli": 150, "notebook": 150}
    assert len(ConversationLog(tmp_path / "logs").files()) > 1          # rotated while both were writing
    with FeedbackDB(tmp_path / "feedback.db") as db:
        rows = db.rows()
        assert len(rows) == 300 and len({r["turn_id"] for r in rows}) == 300
        assert db.counts()["correction"] == 100


def test_sigkill_loses_nothing_acknowledged(tmp_path):
    p = spawn(tmp_path, "doomed", 10**6)
    acked = [p.stdout.readline().split() for _ in range(100)]
    p.send_signal(signal.SIGKILL); p.wait()
    logged = {t["id"] for t in ConversationLog(tmp_path / "logs").read()}
    with FeedbackDB(tmp_path / "feedback.db") as db:
        stored = {r["id"] for r in db.rows()}
        assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert {turn for turn, _ in acked} <= logged
    assert {int(fid) for _, fid in acked} <= stored
