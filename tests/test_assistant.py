"""The assistant as a user meets it: `evotr chat` driven through a pseudo-terminal (teach a fact, leave, come back, recall
it; feedback; a killed session keeps every acknowledged turn), and a conversation that goes on when the Chroma server dies."""
import os, signal, subprocess, sys, time
from pathlib import Path

import pexpect
import pytest

from evotr_lib.lifecycle import ConversationLog, FeedbackDB
from evotr_lib.train import DEFAULT_LM_DIR
from test_rag import free_port, heartbeat

EVOTR = str(Path(sys.executable).with_name("evotr"))
PROMPT = "sen> "


def start_chat(home, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "EVOTR_CHROMA_URL": ""}
    return pexpect.spawn(EVOTR, ["chat", "--home", str(home), "--seed", "0", "--max-tokens", "8", *args], env=env,
                         encoding="utf-8", timeout=300, dimensions=(50, 400))


@pytest.mark.skipif(not (DEFAULT_LM_DIR / "lm.json").is_file(), reason="the shipped default model is missing")
def test_scripted_conversation_teaches_and_recalls_a_fact(tmp_path):
    chat = start_chat(tmp_path)
    chat.expect_exact(PROMPT)
    chat.sendline("Benim en sevdiğim renk turuncu.")
    chat.expect_exact(PROMPT)
    chat.sendline("/quit")
    chat.expect(pexpect.EOF); chat.close()
    assert chat.exitstatus == 0

    chat = start_chat(tmp_path)                                     # a new process: only the stores remember
    chat.expect_exact(PROMPT)
    chat.sendline("En sevdiğim renk neydi?")
    chat.expect(r"memory: [^\r\n]*turuncu")
    chat.expect_exact(PROMPT)
    chat.sendline("/good")
    chat.expect_exact("marked good")
    chat.expect_exact(PROMPT)                                       # acknowledged: the next prompt is shown
    chat.kill(signal.SIGKILL); chat.close()

    turns = ConversationLog(tmp_path / "logs").read()
    assert [t["user"] for t in turns] == ["Benim en sevdiğim renk turuncu.", "En sevdiğim renk neydi?"]
    assert turns[1]["memory_hits"] >= 1 and turns[0]["session"] != turns[1]["session"]
    with FeedbackDB(tmp_path / "feedback.db") as db:
        (row,) = db.rows()
        assert (row["kind"], row["turn_id"]) == ("good", turns[1]["id"])


def test_chat_goes_on_when_the_memory_server_dies(tmp_path):
    from evotr_lib.assistant import Assistant
    from evotr_lib.engine import MMRecEngine
    from evotr_lib.lora import tiny_lm
    from evotr_lib.rag import MemoryManager
    port, url = free_port(), None
    exe = str(Path(sys.executable).with_name("chroma"))
    server = subprocess.Popen([exe, "run", "--path", str(tmp_path / "chroma"), "--host", "localhost", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not heartbeat(f"http://localhost:{port}") and server.poll() is None and time.monotonic() < deadline: time.sleep(0.3)
        if not heartbeat(f"http://localhost:{port}"): pytest.skip("`chroma run` did not start")
        memory = MemoryManager(url=f"http://localhost:{port}", config={"embedding": "ngram"})
        bot = Assistant(MMRecEngine(tiny_lm(tmp_path / "model")), memory=memory, log=ConversationLog(tmp_path / "logs"),
                        config={"max_tokens": 8, "seed": 0})
        assert bot.ask("Benim adım Kaan.").skipped == ["router"]    # no router given; memory works
        os.killpg(server.pid, signal.SIGKILL); server.wait()
        reply = bot.ask("Adım neydi?")
        assert reply.text and "memory" in reply.skipped and "memory-save" in reply.skipped
        assert [t["user"] for t in ConversationLog(tmp_path / "logs").read()] == ["Benim adım Kaan.", "Adım neydi?"]
    finally:
        if server.poll() is None: os.killpg(server.pid, signal.SIGKILL)
