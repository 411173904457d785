"""Stored or extractable? Does a pretrained model complete a person's line with the birthplace?

For every dev person whose wiki.txt line holds the gold place within its first
`--max_chars` characters, the pretrained (not finetuned) model is given the
line up to the place and decodes greedily; it has stored the fact if the
continuation starts with the place. Set beside the finetuned model's dev
accuracy, this separates facts the pretraining did not store from facts it
stored but finetuning could not get out.

    python bench/memorization_probe.py results/laptop/seed0/vanilla.pretrain.safetensors \\
        --out results/laptop/memorization.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from factgpt.checkpoint import load_model
from factgpt.datasets import documents, parse_tsv
from factgpt.fileio import bundled_path, read_text, write_text_atomic
from factgpt.heldout import name_of
from factgpt.lines import split_line
from factgpt.runinfo import device_name, git_commit
from factgpt.vocab import Vocab


@torch.no_grad()
def continues_with(model, vocab: Vocab, prompt: str, answer: str) -> bool:
    ids = torch.tensor([vocab.encode(prompt)], dtype=torch.long)
    for ch in answer:
        logits, _ = model(ids[:, -model.max_len:])
        nxt = int(logits[0, -1].argmax())
        if vocab.chars[nxt] != ch:
            return False
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pretrained", help="a pretrained checkpoint (before finetuning)")
    ap.add_argument("--max_chars", type=int, default=80, help="the longest line prefix the pretraining showed")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    text = read_text(bundled_path("wiki.txt"))
    vocab = Vocab.from_corpus(text)
    model, meta = load_model(a.pretrained, vocab=vocab)
    model.eval()
    lines = {split_line(d)[0]: d for d in documents(text)}
    dev = parse_tsv(read_text(bundled_path("birth_dev.tsv")), "birth_dev.tsv", True)
    asked = stored = 0
    examples = []
    for r in dev:
        line = lines.get(name_of(r.question) or "")
        if line is None:
            continue
        at = line.find(r.answer)
        if at < 0 or at + len(r.answer) > a.max_chars:
            continue
        asked += 1
        ok = continues_with(model, vocab, line[:at], r.answer)
        stored += ok
        if len(examples) < 10:
            examples.append({"prompt": line[:at], "place": r.answer, "stored": ok})
    record = {"checkpoint": a.pretrained, "max_chars": a.max_chars, "dev_people_probed": asked,
              "stored": stored, "stored_share": stored / max(1, asked), "examples": examples,
              "command": "python " + " ".join(sys.argv), "device": device_name(torch.device("cpu")),
              "torch": torch.__version__, "commit": git_commit()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(a.out, json.dumps(record, indent=1) + "\n")
    print(f"{stored}/{asked} dev people's birthplaces continue their line ({100 * stored / max(1, asked):.1f}%)")


if __name__ == "__main__":
    main()
