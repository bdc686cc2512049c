"""Long-term memory across processes: persistence, SIGKILL mid-write and mid-supersession, two concurrent writers, two
users, bad inputs. Every test runs on an embedded store and against a real `chroma run` server started here on a free
localhost port; the token test runs against Chroma's Python server started with token authentication."""
import importlib.util, os, random, shutil, signal, socket, subprocess, sys, time, urllib.request, warnings
from pathlib import Path
import pytest
from evotr_lib.assistant.memory import MemoryManager

WORKER = Path(__file__).resolve().parent / "rag_worker.py"
CONFIG = {"embedding": "ngram"}   # as in the worker: no MiniLM load per process; the store code is the same


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as r: return r.status == 200
    except OSError: return False


def serve(command: list[str], path: Path, url: str, what: str, env: dict | None = None, wait: float = 60):
    "Run a server (its log in `path`), yield its URL once it answers its heartbeat, kill it at the end; skip if it never does."
    log = open(path / "server.log", "w")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + wait
        while not heartbeat(url) and proc.poll() is None and time.monotonic() < deadline: time.sleep(0.3)
        if not heartbeat(url): pytest.skip(f"{what} did not answer its heartbeat at {url}: {(path / 'server.log').read_text()[-500:]}")
        yield url
    finally:
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(); log.close()


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    "A `chroma run` server on a free localhost port (killed at the end); skipped, saying why, if it cannot start."
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None: pytest.skip("no `chroma` command (package chromadb): cannot start a Chroma server")
    port, path = free_port(), tmp_path_factory.mktemp("chroma_server")
    yield from serve([exe, "run", "--path", str(path / "data"), "--host", "localhost", "--port", str(port)], path,
                     f"http://localhost:{port}", "`chroma run`")


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    "A data home of the test's own: a server store's history (feedback.db) goes there, not into the real one."
    monkeypatch.setenv("EVOTR_HOME", str(tmp_path / "home"))


@pytest.fixture(params=["embedded", "server"])
def store(request, tmp_path, monkeypatch):
    "(path for MemoryManager, path argument for the worker); in server mode $EVOTR_CHROMA_URL is set and the collection emptied."
    if request.param == "embedded":
        monkeypatch.delenv("EVOTR_CHROMA_URL", raising=False)
        return tmp_path / "store", str(tmp_path / "store")
    monkeypatch.setenv("EVOTR_CHROMA_URL", request.getfixturevalue("chroma_server"))
    MemoryManager(config=CONFIG).clear_all()   # the server is shared by the tests of this module
    return None, "-"


def start_worker(worker_path: str, tag: str, n: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), worker_path, tag, str(n)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def acknowledged(out: str) -> list[str]:
    "The ids a worker printed (a line cut by a kill is not an acknowledgement)."
    return [l.split()[0] for l in out.splitlines(keepends=True) if l.endswith("\n") and l != "ready\n"]


def test_persistence_across_processes(store):
    path, worker_path = store
    p = start_worker(worker_path, "A", 5); out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    ids = acknowledged(out)
    mm = MemoryManager(path, config=CONFIG)   # this process is the "restart"
    assert len(ids) == 5 and [h.id for h in mm.get(ids)] == ids
    assert mm.search("A hatırası 3: bugün 21. gün", top_k=1)[0].id == ids[3]
    assert mm.get_stats()["count"] == 5


def test_sigkill_loses_nothing_acknowledged(store):
    path, worker_path = store
    p = start_worker(worker_path, "K", 100_000)
    acked, t0 = [], time.monotonic()
    while len(acked) < 40 and time.monotonic() - t0 < 240:   # kill mid-way, right after an acknowledgement
        line = p.stdout.readline()
        if not line: break
        if line != "ready\n": acked.append(line.split()[0])
    p.send_signal(signal.SIGKILL); p.wait()
    assert len(acked) == 40, p.stderr.read()[-2000:]
    mm = MemoryManager(path, config=CONFIG)
    missing = set(acked) - {h.id for h in mm.get(acked)}   # every acknowledged id is there
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged ids are missing: {sorted(acked.index(m) for m in missing)}"
    assert mm.get_stats()["count"] >= len(acked)                            # (one more may have landed unacknowledged)
    hit = mm.search("K hatırası 17: bugün 26. gün", top_k=1)[0]             # the index is readable and complete
    assert hit.id == acked[17] and hit.metadata["i"] == 17
    assert mm.add_memory("after the crash") not in acked                    # and writable


def test_two_concurrent_writers_lose_nothing(store):
    path, worker_path = store
    procs = [start_worker(worker_path, tag, 40) for tag in ("P", "Q")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-2000:] for _, e in outs]
    ids = [acknowledged(o) for o, _ in outs]
    assert [len(i) for i in ids] == [40, 40]
    mm = MemoryManager(path, config=CONFIG)
    assert mm.get_stats()["count"] == 80 and {h.id for h in mm.get(ids[0] + ids[1])} == set(ids[0] + ids[1])
    for tag, tag_ids in zip(("P", "Q"), ids):                               # every memory is in the vector index, too
        for i in (0, 13, 39):
            assert mm.search(f"{tag} hatırası {i}: bugün {i * 7 % 31}. gün, not {i * 13 % 97}.", top_k=1)[0].id == tag_ids[i]


def test_a_process_sees_memories_another_process_added(store):
    path, worker_path = store
    mm = MemoryManager(path, config=CONFIG)
    mm.add_memory("Kaan'ın kedisinin adı Pamuk.")
    p = start_worker(worker_path, "V", 3); out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-2000:]
    assert mm.search("V hatırası 2: bugün 14. gün, not 26.", top_k=1)[0].id == acknowledged(out)[2]


def test_bad_inputs_get_clear_errors_and_write_nothing(store):
    path, _ = store
    mm = MemoryManager(path, config=CONFIG)
    mm.add_memory("ilk hatıra")
    for text, metadata, error, message in [("", None, ValueError, "memory text is empty"),
                                           ("   ", None, ValueError, "memory text is empty"),
                                           ("x" * 100_000, None, ValueError, "more than max_chars=4,000"),
                                           (None, None, TypeError, "memory text must be a str"),
                                           ("ok", {"tags": ["a", "b"]}, TypeError, "values must be str, int, float or bool"),
                                           ("ok", {"when": None}, TypeError, "NoneType"),
                                           ("ok", {"nested": {"a": 1}}, TypeError, "is a dict"),
                                           ("ok", "not a dict", TypeError, "metadata must be a dict")]:
        with pytest.raises(error, match=message.replace("(", r"\(")): mm.add_memory(text, metadata)
    with pytest.raises(ValueError, match="query is empty"): mm.search("")
    with pytest.raises(KeyError, match="no memory with id"): mm.delete("nope")
    assert mm.get_stats()["count"] == 1


def test_server_store_is_reembedded_only_when_asked(chroma_server, monkeypatch):
    "Clients of one server with other embedding settings (e.g. no FreeDict) get an error, not a silent re-embedding of the shared store."
    monkeypatch.setenv("EVOTR_CHROMA_URL", chroma_server)
    MemoryManager(config=CONFIG).clear_all()
    mid = MemoryManager(config=CONFIG).add_memory("Kedimin adı Pamuk.")
    monolingual = {**CONFIG, "bilingual": False}
    try:
        with pytest.raises(ValueError, match="re-embedding it was not asked for"): MemoryManager(config=monolingual)
        assert [h.id for h in MemoryManager(config=CONFIG).get([mid])] == [mid]          # untouched
        with pytest.warns(UserWarning, match="re-embedding the 1 memories"): mono = MemoryManager(config=monolingual, reembed=True)
        assert mono.search("Pamuk", top_k=1)[0].id == mid
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            MemoryManager(config=CONFIG, reembed=True).clear_all()                      # as the other tests expect it


def test_users_never_see_each_others_memories(store):
    path, _ = store
    ayse, bora = (MemoryManager(path, config=CONFIG, user=u) for u in ("ayse", "bora"))
    for who in (ayse, bora): who.clear_all()
    mine, theirs = ayse.add_memory("Kedimin adı Pamuk."), bora.add_memory("Kedimin adı Karabaş.")
    assert [h.id for h in ayse.search("Kedimin adı ne?", top_k=5)] == [mine]
    assert [h.id for h in bora.search("Kedimin adı ne?", top_k=5)] == [theirs]
    assert ayse.get([theirs]) == [] and [h.id for h in ayse.memories()] == [mine]
    with pytest.raises(KeyError, match="no memory"): ayse.delete(theirs)
    with pytest.raises(KeyError, match="no memory"): ayse.forget(theirs[:8])
    assert ayse.clear_all() == 1 and [h.id for h in bora.get()] == [theirs]           # one user's clear leaves the other


def test_sigkill_mid_supersession_leaves_the_old_state_or_the_new(store):
    """A process that keeps replacing one fact (a new home city at every add) is killed at random moments: no fact is
    ever marked invalid without its replacement stored, exactly one city is current, and the history claims nothing
    the store lacks."""
    path, worker_path = store
    first = MemoryManager(path, config=CONFIG, user="mover")
    first.clear_all(); first.close()   # (a client left open in this process would serve the reopened store stale)
    rng, acked = random.Random(0), []
    for kill_after in (3, 9, 17):
        p = start_worker(worker_path, "MOVE", 100_000)
        run = []
        while len(run) < kill_after:
            line = p.stdout.readline()
            if not line: break
            if line != "ready\n": run.append(line.split()[0])
        time.sleep(rng.uniform(0, 0.3))   # somewhere inside the next add: its search, its write, its history
        p.send_signal(signal.SIGKILL); p.wait()
        assert len(run) == kill_after, p.stderr.read()[-2000:]
        acked += run
        mm = MemoryManager(path, config=CONFIG, user="mover")
        stored = {h.id: h for h in mm.get()}
        assert set(acked) <= set(stored)                                               # nothing acknowledged is lost
        replaced = mm.invalidated()
        assert all(h.metadata["evotr_superseded_by"] in stored for h in replaced), "invalid without its replacement"
        assert len(mm.memories()) == 1 and len(replaced) == len(stored) - 1
        assert mm.search("Where do I live?", top_k=1)[0].id == mm.memories()[0].id
        added = {e["memory_id"] for e in mm.history.events("mover") if e["event"] == "add"}
        assert added <= set(stored)                                                    # no event the store lacks
        if path is not None: assert added == set(stored)                               # ... nor a change it missed
        mm.close()


TOKEN = "evotr-test-token"


@pytest.fixture(scope="module")
def chroma_token_server(tmp_path_factory):
    """Chroma's Python server (`uvicorn chromadb.app:app`) with token authentication, on a free port; skipped, saying
    why, without its packages (the `test` extra installs them). `chroma run` (Chroma 1.x's Rust server) has no
    authentication to test."""
    missing = [m for m in ("uvicorn", "fastapi", "opentelemetry.instrumentation.fastapi")
               if importlib.util.find_spec(m) is None]
    if missing: pytest.skip(f"Chroma's Python server needs {missing} (pip install -e '.[test]')")
    port, path = free_port(), tmp_path_factory.mktemp("chroma_token_server")
    env = {**os.environ, "IS_PERSISTENT": "1", "PERSIST_DIRECTORY": str(path / "data"), "ANONYMIZED_TELEMETRY": "False",
           "CHROMA_SERVER_AUTHN_PROVIDER": "chromadb.auth.token_authn.TokenAuthenticationServerProvider",
           "CHROMA_SERVER_AUTHN_CREDENTIALS": TOKEN}
    serve_code = ("import evotr_lib.assistant.embedding, uvicorn; "   # the server must know the memory embedding's name
                  f"uvicorn.run('chromadb.app:app', host='127.0.0.1', port={port})")
    yield from serve([sys.executable, "-c", serve_code], path, f"http://127.0.0.1:{port}", "Chroma's Python server", env,
                     wait=90)


def test_a_token_server_serves_only_clients_with_the_token(chroma_token_server, monkeypatch):
    monkeypatch.setenv("EVOTR_CHROMA_URL", chroma_token_server)
    monkeypatch.delenv("EVOTR_CHROMA_TOKEN", raising=False)
    with pytest.raises(PermissionError, match="EVOTR_CHROMA_TOKEN"): MemoryManager(config=CONFIG)
    monkeypatch.setenv("EVOTR_CHROMA_TOKEN", "not-the-token")
    with pytest.raises(PermissionError, match="refused this client"): MemoryManager(config=CONFIG)
    monkeypatch.setenv("EVOTR_CHROMA_TOKEN", TOKEN)
    ayse, bora = MemoryManager(config=CONFIG, user="ayse"), MemoryManager(config=CONFIG, user="bora")
    mine = ayse.add_memory("I live in Ankara.")
    moved = ayse.add_memory("I moved to Izmir last month.")
    assert [h.id for h in ayse.search("Where do I live?", top_k=3)] == [moved]
    assert [h.id for h in ayse.invalidated()] == [mine] and bora.search("Where do I live?") == []
