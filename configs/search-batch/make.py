"""Writes the candidate profiles of the small-batch search (held-out only) into this folder.

Rounds 1-3 (configs/search-small, configs/search-focused) kept batches of 32-64 lines, so a line
was part of 46-92 updates an epoch, and storage started only after about a hundred epochs. With
Adam an update moves the weights by about the learning rate whatever the batch, so a smaller batch
gives each line a larger share of more updates an epoch, at little extra cost an epoch on a CPU
(the course's size: 40 s an epoch at batch 16 against 32 s at 64, 2-core AVX2 EPYC, fp32). Every
candidate is the laptop profile's data and objective (question-keyed lines, birth clause first,
cut to 80 characters, span corruption) with its own model size, batch and learning rate, on a
cosine that ends where its pretraining stops (127 tokens an example an epoch).
"""
import json
from pathlib import Path

HERE = Path(__file__).parent
SIZES = {"l2d128": (2, 4, 128), "l4d128": (4, 4, 128), "l4d256": (4, 8, 256), "l3d192": (3, 6, 192)}


def candidate(size: str, lr: float, epochs: int, batch: int) -> tuple[str, dict]:
    n_layer, n_head, n_embd = SIZES[size]
    name = f"b{batch}_{size}_lr{lr:g}_e{epochs}"
    prof = {"base": "laptop",
            "description": f"search candidate: {n_layer} layers, {n_head} heads, {n_embd}-d; pretraining {epochs} "
                           f"epochs of batch {batch} at peak lr {lr:g} on a cosine ending at epoch {epochs}",
            "model": {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd},
            "pretrain": {"max_epochs": epochs, "batch_size": batch, "learning_rate": lr,
                         "final_tokens_per_pretrain_example": 127 * epochs}}
    return name, prof


GRID = [
    candidate("l4d128", 2e-3, 40, 16),
    candidate("l2d128", 2e-3, 60, 8),
]


if __name__ == "__main__":
    for name, prof in GRID:
        (HERE / f"{name}.json").write_text(json.dumps(prof, indent=1) + "\n")
    (HERE / "candidates.txt").write_text("\n".join(name for name, _ in GRID) + "\n")
