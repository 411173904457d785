"""`factgpt curve`: what a profile's pretraining has stored and made extractable, epoch by epoch.

One pretraining of the profile runs to its last epoch; at chosen epochs a copy
of the model is probed:

  line recall before finetuning   given a held-out person's pretraining line up
                                  to the birthplace, does greedy continuation
                                  write it? (is the fact stored?)
  held-out accuracy               the copy finetuned as the profile finetunes a
                                  pretrained model, on the training pairs minus
                                  the held-out slice, then asked the slice's
                                  questions (is the fact extractable?)
  line recall after finetuning    the same continuation on the finetuned copy

Dev is never touched. The JSON is rewritten after every probe, so a run cut
short keeps what it measured; with --time_limit a run stops on time and
--resume goes on from the saved training state, bit for bit as if it had not
stopped (the probes leave the pretraining's random streams as they were).
Pretraining minutes exclude the probes: they are the training's own time.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import save_model
from .config import Profile, same_training
from .datasets import QA
from .errors import InputError
from .evaluate import line_recall, predict
from .experiment import FORMATS, DataBundle, Score, finetune_on, provenance, unfinished_run
from .fileio import write_text_atomic
from .model import GPT
from .pipeline import Corpus, pretrain_stage, stage_config
from .runinfo import git_commit

FORMAT = FORMATS["curve"]


def probe_epochs(max_epochs: int, every: int, extra: list[int] | None = None) -> list[int]:
    """Every `every`-th epoch, the extra ones asked for, and always the last."""
    if every <= 0:
        raise InputError("--probe_every", f"must be a positive number of epochs, got {every}")
    chosen = set(range(every, max_epochs + 1, every)) | {max_epochs} | set(extra or [])
    bad = [e for e in chosen if not 1 <= e <= max_epochs]
    if bad:
        raise InputError("--probe_at", f"epoch {bad[0]} is outside the profile's 1..{max_epochs}")
    return sorted(chosen)


@dataclass
class HeldoutProbe:
    """The held-out slice of the training pairs and what a probe does with it: is a model's fact
    stored (line recall), and does finetuning on the other pairs get it out (held-out accuracy)?"""

    data: DataBundle
    profile: Profile
    lines: dict[str, str]  # each person's pretraining line, as the profile changes and cuts it

    @classmethod
    def of(cls, profile: Profile) -> "HeldoutProbe":
        data = DataBundle.load(profile.model.block_size)
        return cls(data, profile, data.lines(profile.data))

    @property
    def held(self) -> list[QA]:
        return self.data.heldout

    def stored(self, model: GPT) -> dict[str, Any]:
        """Line recall of the slice's people: does greedy continuation of the line write the birthplace?"""
        return line_recall(model, self.data.vocab, self.lines, self.held)

    def finetune_and_score(self, model: GPT, seed: int, device: torch.device, **overrides: Any) -> dict[str, Any]:
        """Finetune `model` in place as the profile finetunes (overrides: experiment.finetune_on's),
        then score the slice's questions and line recall."""
        ft = finetune_on(model, self.data, self.profile, seed, device, "probe finetune", **overrides)
        preds = predict(ft.model, self.data.vocab, [r.question for r in self.held])
        score = Score.of(self.held, [p.text for p in preds])
        return {"finetune_loss": ft.progress.history[-1]["loss"], "batch_size": ft.cfg.batch_size,
                "heldout_correct": score.correct,
                "heldout_total": score.total, "heldout_accuracy": score.accuracy,
                "line_recall_finetuned": self.stored(ft.model)}


def run_curve(profile: Profile, corpus: Corpus, out: Path, *, variant: str = "vanilla", seed: int = 0,
              every: int = 10, extra: list[int] | None = None, device: torch.device = torch.device("cpu"),
              time_limit_s: float | None = None, resume: bool = False, quiet: bool = False,
              keep_weights: bool = False, command: str = "") -> dict[str, Any]:
    """Pretrain with probes; returns the record written to out/curve.json.
    keep_weights: save each probe's pretrained weights as out/pretrain-epochNNN.safetensors."""
    out.mkdir(parents=True, exist_ok=True)
    record_path, state_model = out / "curve.json", out / "pretrain.safetensors"
    slice_ = HeldoutProbe.of(profile)
    max_epochs = stage_config(profile, "pretrain", corpus.n_docs).max_epochs
    epochs = probe_epochs(max_epochs, every, extra)

    commit = git_commit()  # the code that runs, read before anything can change it
    if resume:
        record_path, record = unfinished_run(str(out), record_path.name)
        if record.get("format") != FORMAT:
            raise InputError(record_path, f"written by another version of factgpt ({record.get('format')}); "
                                          "use a new --out")
        if not same_training(record.get("profile", {}), profile):
            raise InputError(record_path, "this curve was measured with another profile; use a new --out")
        if record.get("variant") != variant or record.get("seed") != seed:
            raise InputError(record_path, f"this curve is of {record.get('variant')} seed {record.get('seed')}")
        record["pieces"].append({"command": command, "commit": commit})
    else:
        if record_path.exists():
            raise InputError(record_path, "a curve is already here; --resume goes on with it, or choose a new --out")
        # partial until the pretraining has run to its end; each piece (a start, each --resume)
        # records its command and commit, as a study's run does
        record = {**provenance(device, command, commit), "format": FORMAT, "profile": profile.to_dict(),
                  "variant": variant, "seed": seed, "probe_epochs": epochs, "heldout": len(slice_.held),
                  "finetune_pairs": len(slice_.data.finetune), "pieces": [{"command": command, "commit": commit}],
                  "probes": [], "pretrain_done": False, "partial": True}
    probe_s = sum(p["probe_seconds"] for p in record["probes"])

    def probe(tr) -> None:
        nonlocal probe_s
        ep = tr.progress.epoch
        if ep not in epochs or any(p["epoch"] == ep for p in record["probes"]):
            return
        t0 = time.time()
        with torch.random.fork_rng(devices=[]):  # the pretraining's dropout stream stays as it was
            model = copy.deepcopy(tr.model)
            if keep_weights:
                save_model(out / f"pretrain-epoch{ep:03d}.safetensors", model, corpus.vocab,
                           {"stage": f"pretrain {variant}", "steps": tr.progress.step, "epoch": ep,
                            "profile": profile.name, "data": asdict(profile.data)})
            stored = slice_.stored(model)
            scored = slice_.finetune_and_score(model, seed, device)
        losses = [h["loss"] for h in tr.progress.history if h["epoch"] == ep]
        seconds = time.time() - t0
        record["probes"].append({
            "epoch": ep, "step": tr.progress.step,
            "pretrain_minutes": (tr.progress.elapsed - probe_s) / 60,
            "pretrain_loss": sum(losses) / max(1, len(losses)),
            "finetune_loss": scored["finetune_loss"],
            "heldout_correct": scored["heldout_correct"], "heldout_total": scored["heldout_total"],
            "heldout_accuracy": scored["heldout_accuracy"],
            "line_recall_pretrained": stored, "line_recall_finetuned": scored["line_recall_finetuned"],
            "probe_seconds": seconds})
        probe_s += seconds
        write_text_atomic(record_path, json.dumps(record, indent=1) + "\n")
        if not quiet:
            p = record["probes"][-1]
            after = p["line_recall_finetuned"]
            print(f"epoch {ep}: {p['pretrain_minutes']:.1f} pretraining minutes, loss {p['pretrain_loss']:.3f}, "
                  f"held-out {p['heldout_correct']}/{p['heldout_total']}, line recall "
                  f"{stored['correct']}/{stored['total']} (after finetuning {after['correct']}/{after['total']})",
                  file=sys.stderr, flush=True)

    _, status = pretrain_stage(profile, corpus, variant, device, state_model, f"pretrain {variant}", quiet=quiet,
                               train_overrides={"seed": seed}, resume=resume, time_limit_s=time_limit_s,
                               save_every=500, on_epoch_end=probe)
    record["pretrain_done"] = status == "done"
    if record["pretrain_done"]:
        record.pop("partial", None)
    write_text_atomic(record_path, json.dumps(record, indent=1) + "\n")
    return record
