"""Writes the candidate profiles of the small-model search (held-out only) into this folder.

Every candidate is the course_keyed profile's data and objective (named laptop when the round ran) (question-keyed lines, birth clause
first, cut to 80 characters, span corruption) with a smaller model, its own learning rate, batch
and length, on a cosine that ends where its pretraining stops (127 tokens an example an epoch).
"""
import json
from pathlib import Path

HERE = Path(__file__).parent
SIZES = {"l2d128": (2, 4, 128), "l4d128": (4, 4, 128), "l2d192": (2, 6, 192), "l4d256": (4, 8, 256),
         "l3d160": (3, 4, 160), "l2d256": (2, 8, 256)}


def candidate(size: str, lr: float, epochs: int, batch: int = 64, chars: int = 80,
              ft: tuple[int, float] | None = None) -> tuple[str, dict]:
    n_layer, n_head, n_embd = SIZES[size]
    name = f"{size}_lr{lr:g}_b{batch}_e{epochs}" + (f"_c{chars}" if chars != 80 else "") + \
        (f"_ft{ft[0]}x{ft[1]:g}" if ft else "")
    prof = {"base": "course_keyed",
            "description": f"search candidate: {n_layer} layers, {n_head} heads, {n_embd}-d; pretraining {epochs} "
                           f"epochs of batch {batch} at peak lr {lr:g} on a cosine ending at epoch {epochs}",
            "model": {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd},
            "pretrain": {"max_epochs": epochs, "batch_size": batch, "learning_rate": lr,
                         "final_tokens_per_pretrain_example": 127 * epochs}}
    if chars != 80:
        prof["data"] = {"max_chars": chars}
    if ft:
        prof["finetune_pretrained"] = {"max_epochs": ft[0], "learning_rate": ft[1]}
    return name, prof


GRID = [
    candidate("l2d128", 3e-3, 60), candidate("l2d128", 6e-3, 60), candidate("l2d128", 1e-2, 60),
    candidate("l2d128", 6e-3, 40), candidate("l2d128", 6e-3, 90), candidate("l2d128", 6e-3, 40, batch=32),
    candidate("l2d128", 1e-2, 40, batch=32), candidate("l2d128", 6e-3, 60, chars=64),
    candidate("l2d128", 6e-3, 60, ft=(8, 1e-3)),
    candidate("l4d128", 3e-3, 30), candidate("l4d128", 6e-3, 30), candidate("l4d128", 6e-3, 45),
    candidate("l4d128", 1e-2, 30), candidate("l4d128", 4e-3, 25, batch=32), candidate("l4d128", 6e-3, 30, ft=(8, 1e-3)),
    candidate("l2d192", 5e-3, 45), candidate("l3d160", 5e-3, 40), candidate("l4d256", 2e-3, 40),
    candidate("l4d256", 4e-3, 30),
]

# Round 2, after round 1 stored almost nothing by epoch 90: long cosines, to find where storage starts.
LONG = [
    candidate("l2d128", 3e-3, 200), candidate("l4d128", 3e-3, 160), candidate("l2d128", 3e-3, 200, chars=64),
    candidate("l4d128", 3e-3, 160, chars=64), candidate("l2d192", 3e-3, 160), candidate("l2d256", 2e-3, 110),
    candidate("l4d256", 2e-3, 100, chars=64),
]


def write(grid: list[tuple[str, dict]], listing: str) -> None:
    for name, prof in grid:
        (HERE / f"{name}.json").write_text(json.dumps(prof, indent=1) + "\n")
    (HERE / listing).write_text("\n".join(name for name, _ in grid) + "\n")


if __name__ == "__main__":
    write(GRID, "candidates.txt")
    write(LONG, "candidates-long.txt")
