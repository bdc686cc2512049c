"""Train a tiny MM-Rec for a few steps with `Trainer`, alone or under torchrun; rank 0 writes result.json to argv[1].

Used by tests/test_train_ddp.py and nbs/lm/24_train.ipynb: two gloo processes must reproduce one process."""
import json, sys
from pathlib import Path

import torch

from evotr_lib.config import seed_everything
from evotr_lib.mmrec.model import MMRecConfig, MMRecModel
from evotr_lib.lm.train import TrainConfig, Trainer, world


def batch(step, micro):
    g = torch.Generator().manual_seed(step * 101 + micro)
    motif = torch.randint(0, 32, (8, 8), generator=g)
    return motif.repeat(1, 5)[:, :33]


def main(out):
    torch.set_num_threads(1)
    seed_everything(0)
    model = MMRecModel(MMRecConfig(vocab_size=32, model_dim=32, num_layers=2, num_heads=4, inner_dim=8, num_memories=2,
                                   mem_dim=16, mem_slots=4, chunk_size=8))
    trainer = Trainer(model, TrainConfig(max_steps=8, lr=3e-3, warmup_steps=2, log_every=1, progress=False), batch, out)
    losses = [r["loss"] for r in trainer.fit()]
    rank, size = world()
    if rank == 0: (Path(out) / "result.json").write_text(json.dumps({"losses": losses, "world_size": size}))
    if size > 1: torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
