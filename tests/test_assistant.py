"""The assistant as a user meets it: `evotr chat` on the shipped defaults (Gemma 3 270M on llama.cpp with the shipped experts)
driven through a pseudo-terminal (teach a fact, leave, come back, get it back in the answer; feedback and corrections; a pasted
text far longer than a terminal line; a killed session keeps every acknowledged turn), and a conversation that goes on when the
Chroma server dies."""
import os, signal, subprocess, sys, time
from pathlib import Path

import pexpect
import pytest

from evotr_lib.assistant.lifecycle import ConversationLog, FeedbackDB
from evotr_lib.assistant.registry import load_registry
from test_rag import free_port, heartbeat

EVOTR = str(Path(sys.executable).with_name("evotr"))
PROMPT = "sen> "


def start_chat(home, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "EVOTR_CHROMA_URL": ""}
    return pexpect.spawn(EVOTR, ["chat", "--home", str(home), "--seed", "0", "--temperature", "0", "--max-tokens", "48", *args], env=env,
                         encoding="utf-8", timeout=300, dimensions=(50, 400))


SHIPPED = load_registry()
needs_experts = pytest.mark.skipif(not SHIPPED.adapter("tr_chat", "llamacpp"), reason="the shipped registry has no llama.cpp experts")


@needs_experts
def test_scripted_conversation_teaches_and_recalls_a_fact(tmp_path):
    chat = start_chat(tmp_path)
    chat.expect_exact(PROMPT)
    chat.sendline("Benim en sevdiğim renk turuncu.")
    chat.expect(r"remembered: Benim en sevdiğim renk turuncu\.")
    chat.expect_exact(PROMPT)
    chat.sendline("/quit")
    chat.expect(pexpect.EOF); chat.close()
    assert chat.exitstatus == 0

    chat = start_chat(tmp_path)                                     # a new process: only the stores remember
    chat.expect_exact(PROMPT)
    chat.sendline("En sevdiğim renk neydi?")
    chat.expect(r"evo> ([^\r\n]*)\r?\n")
    answer = chat.match.group(1)
    assert "turuncu" in answer.lower(), answer                      # the fact comes back in the answer, not only under it
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


@needs_experts
def test_pasted_text_arrives_whole_and_a_correction_says_what_it_corrects(tmp_path):
    chat = start_chat(tmp_path)
    chat.expect_exact(PROMPT)
    lines = [(f"Bu uzun bir metnin {i}. satırı. " * 10)[:100] for i in range(200)]   # 20,000 characters pasted as lines
    pasted = "\n".join(lines)
    chat.sendline('"""')
    for line in lines: chat.sendline(line)
    chat.sendline("ikinci satır"); chat.sendline('"""')
    chat.expect(r"the message is [\d,]+ tokens long")
    chat.expect_exact(PROMPT)
    chat.sendline("/correct Kısa bir özet istiyordum.")
    chat.expect(r"correction saved \(#1\) for the answer to 'Bu uzun bir metnin 0\. satırı\.")
    chat.expect_exact(PROMPT)
    chat.sendline("/quit"); chat.expect(pexpect.EOF); chat.close()
    (turn,) = ConversationLog(tmp_path / "logs").read()
    assert turn["user"] == pasted + "\nikinci satır"


def test_chat_goes_on_when_the_memory_server_dies(tmp_path):
    from evotr_lib.assistant.orchestrator import Assistant
    from evotr_lib.assistant.engine import MMRecEngine
    from evotr_lib.testing import tiny_lm
    from evotr_lib.assistant.memory import MemoryManager
    port, url = free_port(), None
    exe = str(Path(sys.executable).with_name("chroma"))
    server = subprocess.Popen([exe, "run", "--path", str(tmp_path / "chroma"), "--host", "localhost", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not heartbeat(f"http://localhost:{port}") and server.poll() is None and time.monotonic() < deadline: time.sleep(0.3)
        if not heartbeat(f"http://localhost:{port}"): pytest.skip("`chroma run` did not start")
        memory = MemoryManager(url=f"http://localhost:{port}", config={"embedding": "ngram"}, history=tmp_path / "h.db")
        bot = Assistant(MMRecEngine(tiny_lm(tmp_path / "model")), memory=memory, log=ConversationLog(tmp_path / "logs"),
                        config={"max_tokens": 8, "seed": 0, "fallback_expert": None})
        assert bot.ask("Benim adım Kaan.").skipped == ["router: off"]    # no router given; memory works
        os.killpg(server.pid, signal.SIGKILL); server.wait()
        reply = bot.ask("Benim doğum günüm 5 Mayıs.")              # a fact to file: the store is gone
        assert reply.text and [s.split(":")[0] for s in reply.skipped] == ["router", "memory", "memory-save"], reply.skipped
        assert [t["user"] for t in ConversationLog(tmp_path / "logs").read()] == ["Benim adım Kaan.", "Benim doğum günüm 5 Mayıs."]
    finally:
        if server.poll() is None: os.killpg(server.pid, signal.SIGKILL)
