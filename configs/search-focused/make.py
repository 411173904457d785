"""Writes the candidate profiles of the focused-line search (held-out only) into this folder.

Round 3 of the small-model search (configs/search-small/ holds rounds 1 and 2). Every candidate is
the course_keyed profile's objective (named laptop when the round ran) (span corruption on every person's line, question key, birth clause
first) on lines with their dates taken out (data.drop_dates) and cut shorter, so that an epoch costs
fewer characters and a larger share of them is the birthplace; a smaller model; its own learning
rate and length, on a cosine that ends where its pretraining stops (127 tokens an example an epoch).
"""
import json
from pathlib import Path

HERE = Path(__file__).parent
SIZES = {"l2d128": (2, 4, 128), "l4d128": (4, 4, 128), "l2d192": (2, 6, 192), "l2d256": (2, 8, 256),
         "l3d192": (3, 6, 192), "l4d256": (4, 8, 256)}


def candidate(size: str, lr: float, epochs: int, chars: int = 64, batch: int = 64,
              ft: tuple[int, float] | None = None) -> tuple[str, dict]:
    n_layer, n_head, n_embd = SIZES[size]
    name = f"f{chars}_{size}_lr{lr:g}_b{batch}_e{epochs}" + (f"_ft{ft[0]}x{ft[1]:g}" if ft else "")
    prof = {"base": "course_keyed",
            "description": f"focused-line candidate: dates out, lines cut to {chars} characters; {n_layer} layers, "
                           f"{n_head} heads, {n_embd}-d; pretraining {epochs} epochs of batch {batch} at peak lr "
                           f"{lr:g} on a cosine ending at epoch {epochs}",
            "model": {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd},
            "data": {"drop_dates": True, "max_chars": chars},
            "pretrain": {"max_epochs": epochs, "batch_size": batch, "learning_rate": lr,
                         "final_tokens_per_pretrain_example": 127 * epochs}}
    if ft:
        prof["finetune_pretrained"] = {"max_epochs": ft[0], "learning_rate": ft[1]}
    return name, prof


# In the order they ran (one training at a time on 2 CPU cores).
GRID = [
    candidate("l4d128", 3e-3, 60, chars=56),
    # after the first stored almost nothing by epoch 40: the course's size, to see what focusing buys it
    candidate("l4d256", 2e-3, 60, chars=56),
]


if __name__ == "__main__":
    for name, prof in GRID:
        (HERE / f"{name}.json").write_text(json.dumps(prof, indent=1) + "\n")
    (HERE / "candidates.txt").write_text("\n".join(name for name, _ in GRID) + "\n")
    # the queue bench/search_cpu.sh runs: written by hand as results come in (variant, seed, probe every)
