"""Writes the candidate profiles of the small-batch search (held-out only) into this folder.

Rounds 1-3 (configs/search-small, configs/search-focused) kept batches of 32-64 lines, so a line
was part of 46-92 updates an epoch, and storage started only after about a hundred epochs. With
Adam an update moves the weights by about the learning rate whatever the batch, so a smaller batch
gives each line a larger share of more updates an epoch, at a small extra cost an epoch on a CPU
(results/search-batch/cpu-step-time/ has the candidates' step times). Every
candidate is the course_keyed profile's data and objective (named laptop when the round ran) (question-keyed lines, birth clause first,
cut to 80 characters, span corruption) with its own model size, batch and learning rate, on a
cosine that ends where its pretraining stops (127 tokens an example an epoch).
"""
import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).parent
# the candidates are rounds 1-2's (configs/search-small/make.py), named by their batch first
_spec = importlib.util.spec_from_file_location("search_small", HERE.parent / "search-small" / "make.py")
_small = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_small)


def candidate(size: str, lr: float, epochs: int, batch: int) -> tuple[str, dict]:
    _, prof = _small.candidate(size, lr, epochs, batch=batch)
    return f"b{batch}_{size}_lr{lr:g}_e{epochs}", prof


GRID = [
    candidate("l4d128", 2e-3, 40, 16),
    candidate("l2d128", 2e-3, 60, 8),
]


if __name__ == "__main__":
    for name, prof in GRID:
        (HERE / f"{name}.json").write_text(json.dumps(prof, indent=1) + "\n")
    (HERE / "candidates.txt").write_text("\n".join(name for name, _ in GRID) + "\n")
