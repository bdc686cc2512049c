"""Subprocess worker for tests/test_rag.py: add `n` memories to the store at `path` (or at $EVOTR_CHROMA_URL when
`path` is '-') and print each id on its own line as soon as `add_memory` has returned (the acknowledgement).
With the tag 'MOVE' it states a new home city each time instead, so that every add replaces the previous fact
(supersession), as the user 'mover'."""
import sys
from evotr_lib.assistant.memory import MemoryManager

path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mm = MemoryManager(None if path == "-" else path, config={"embedding": "ngram"}, user="mover" if tag == "MOVE" else None)
print("ready", flush=True)
for i in range(n):
    text = f"I moved to city number {i}." if tag == "MOVE" else f"{tag} hatırası {i}: bugün {i * 7 % 31}. gün, not {i * 13 % 97}."
    memory_id = mm.add_memory(text, {"worker": tag, "i": i})
    print(memory_id, i, flush=True)
