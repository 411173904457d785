"""`factgpt reproduce`: the whole study, every row and seed, measured and written down.

Rows: the London baseline; vanilla finetuned without pretraining; and, per
attention variant, pretrain → finetune. Each row is scored on the dev set
and writes its dev and test predictions. results.json keeps per-seed
accuracies, mean ± std, the wall-clock time of every stage, the device, the
torch version, the git commit and the command; a Markdown table and the
plots are rendered from it.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_tensors
from .config import RENAMED, DataSettings, same_training
from .experiment import FORMATS, DataBundle, command_line, provenance, unfinished_run
from .errors import InputError
from .estimate import estimate_seed
from .evaluate import london, write_predictions
from .fileio import bundled_path, read_text, run_folder, write_text_atomic
from .model import GPT, VARIANTS
from .pipeline import evaluate_rows, finetune_stage, load_for, load_profile, pretrain_stage, profile_names, score
from .precision import resolve, resolve_device
from .results import REFERENCE, ROW_TITLES, summarize
from .runinfo import device_name, git_commit
from .tables import write_study_outputs


# Training state is saved every this many steps whatever the options, so that a kill costs at most
# this many steps (a course-model step is under a second on a GPU, about a second on 2 CPU cores).
SAVE_EVERY = 500
# Runs estimated to take longer than this on a CPU ask first (--yes answers): a study of many hours
# started by mistake is worth one question.
ASK_ABOVE_HOURS = 12.0


def default_profile(device: torch.device) -> str:
    """The course's scale on a GPU; on a CPU the profile that shows the course's finding in minutes."""
    if device.type == "cuda":
        return "course"
    return "wordkeys_small_e70" if "wordkeys_small_e70" in profile_names() else "smoke"


class _OutOfTime(Exception):
    """This piece's --time_limit ran out inside a stage; the stage's state is saved for --resume."""


@dataclass(frozen=True)
class StudyOptions:
    """What `factgpt reproduce` is asked to do (the command line parses into this; tests build it)."""

    profile: str | None = None  # a shipped name or a JSON file; None: the device's default
    seeds: list[int] | None = None  # None: [0], or the resumed run's
    variants: list[str] | None = None  # None: both, or the resumed run's
    out: str | None = None  # None: a new runs/PROFILE-DATE-TIME
    resume: bool = False
    device: str = "auto"
    precision: str = "auto"
    time_limit: float | None = None  # minutes of training in this piece
    quiet: bool = False
    yes: bool = False  # do not ask before a run of many hours
    pretrained: str | None = None  # a folder of a seed's checkpoints: pretraining (and no-pretraining) loaded
    argv: tuple[str, ...] = ()  # the command line, as the results record it


def _plan(args: StudyOptions) -> tuple[str | None, list[int], list[str], dict | None]:
    """The run's profile, seeds and variants, and (with --resume) what the run in --out already holds.

    A resumed run keeps its own plan: options given again must agree with it, so that
    the pieces of one results.json are of one study.
    """
    if not args.resume:
        return args.profile, args.seeds or [0], args.variants or list(VARIANTS), None
    path, prior = unfinished_run(args.out)
    plan = prior.get("plan")
    if plan is None:
        raise InputError(path, "this run records no plan (it was made before runs could be resumed)")
    profile = RENAMED.get(plan["profile"], plan["profile"])  # a run started before its profile was renamed
    for opt, given, planned in (("--profile", args.profile, profile), ("--seeds", args.seeds, plan["seeds"]),
                                ("--variants", args.variants, plan["variants"])):
        if given is not None and given != planned:
            raise InputError(path, f"this run is of {opt} {planned}; resume it without {opt} or start a new --out")
    return profile, plan["seeds"], plan["variants"], prior


def _check_pretrained(folder: Path, seeds: list[int], variants: list[str], prof) -> None:
    """--pretrained names one seed's folder (vanilla.pretrain.safetensors, synthesizer.pretrain.safetensors,
    and perhaps vanilla.nopretrain.safetensors): one pretraining a variant, so one seed. Each checkpoint
    must be of the profile's model and lines; all is checked before the run folder is made."""
    if not folder.is_dir():
        raise InputError(folder, "--pretrained: no such folder of checkpoints")
    if len(seeds) != 1:
        raise InputError("--pretrained", f"the folder holds one pretraining a variant; run one seed, not {seeds}")
    missing = [f"{v}.pretrain.safetensors" for v in variants if not (folder / f"{v}.pretrain.safetensors").is_file()]
    if missing:
        raise InputError(folder, f"--pretrained: no {missing[0]} here (the seed folder of a study run)")
    for path in sorted(folder.glob("*.safetensors")):
        if path.name not in ("vanilla.nopretrain.safetensors", *(f"{v}.pretrain.safetensors" for v in variants)):
            continue
        _, meta = load_tensors(path)
        config = meta.get("config", {})
        for k, want in asdict(prof.model).items():
            if k in ("n_layer", "n_head", "n_embd", "block_size") and config.get(k) != want:
                raise InputError(path, f"checkpoint has {k}={config.get(k)}, expected {want} (profile {prof.name})")
        if {**asdict(DataSettings()), **meta.get("data", {})} != asdict(prof.data):
            raise InputError(path, f"pretrained on lines changed otherwise ({meta.get('data')}) than profile "
                                   f"{prof.name}'s ({asdict(prof.data)})")


def reproduce(args: StudyOptions) -> int:
    commit = git_commit()  # the code that runs, recorded before anything can change it
    device = resolve_device(args.device)
    profile_arg, seeds, variants, prior = _plan(args)
    if prior is not None:  # a resumed run keeps the checkpoints it started from
        planned = prior["plan"].get("pretrained")
        if args.pretrained is not None and args.pretrained != planned:
            raise InputError(Path(args.out) / "results.json", f"this run is of --pretrained {planned}; resume it "
                                                               "without --pretrained or start a new --out")
        args = replace(args, pretrained=planned)
    profile_name = profile_arg or default_profile(device)
    prof = load_profile(profile_name)
    if args.pretrained is not None:
        _check_pretrained(Path(args.pretrained), seeds, variants, prof)
    name = prof.name
    if prior is not None and not same_training(prior["profile_settings"], prof):
        raise InputError(Path(args.out) / "results.json",
                         f"profile {profile_name} has changed since this run started; start a new --out")
    out = run_folder(args.out, name)
    data = DataBundle.load(prof.model.block_size)
    corpus, dev_rows, test_rows = data.corpus, data.dev, data.test
    train_tsv = bundled_path("birth_places_train.tsv")  # every training pair: the study holds none out
    # --quiet hides the progress bars; these lines are the run's log.
    say = lambda *a: print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)  # noqa: E731
    say(f"profile {name}{'' if profile_arg else ' (the default on this device; choose with --profile)'}: "
        f"{prof.description}")
    say(f"device {device_name(device)}; seeds {seeds}; variants {variants}; "
        f"{'resuming' if prior else 'writing'} {out}")

    precision = resolve(args.precision, device)  # decoding's; training's is resolved per stage
    # Under auto a profile that names its precision keeps it; otherwise bf16 only where this profile's
    # own check passed on this CPU kind (precision.BF16_PROFILE_CHECKS). Resolved once, here, so that
    # every stage trains in what the run prints and records.
    train_choice = args.precision if args.precision != "auto" else (prof.common.precision or "auto")
    train_choice = train_precision = resolve(train_choice, device, training=True, profile=name)
    if prior is None:
        given_dir = Path(args.pretrained) if args.pretrained else None
        est = estimate_seed(prof, corpus, variants, device, dev_rows + test_rows, seeds[0], train_choice,
                            pretrained=given_dir is not None,
                            scratch_given=given_dir is not None and (given_dir / "vanilla.nopretrain.safetensors").is_file())
        hours = est.total * len(seeds) / 3600
        say(f"training in {train_precision}; {len(seeds)} seed{'s' if len(seeds) > 1 else ''}; estimated "
            f"{est.total / 60:.0f} minutes a seed ({est.describe()}), {hours:.1f} h in all")
        if hours > ASK_ABOVE_HOURS and device.type == "cpu" and not args.yes:
            if not sys.stdin.isatty():
                raise InputError("--profile", f"{name} would take about {hours:.0f} h on this CPU; pass --yes "
                                              f"to run it anyway (runs over {ASK_ABOVE_HOURS:.0f} h ask first)")
            if input("continue? [y/N] ").strip().lower() != "y":
                return 1
    out.mkdir(parents=True, exist_ok=True)  # only now: a run that never started leaves no folder
    command = command_line(args.argv)
    # a resumed run keeps the rows it finished and the record of every earlier piece
    runs: dict[str, list[dict[str, Any]]] = {r: list(v["runs"]) for r, v in (prior or {}).get("rows", {}).items()}
    pieces = [*(prior or {}).get("pieces", []), {"command": command, "commit": commit}]
    piece_start = time.time()

    def time_left() -> float | None:
        """Seconds this piece may still train; a stage started with none left still takes one step."""
        return None if args.time_limit is None else max(0.0, 60 * args.time_limit - (time.time() - piece_start))

    def done(row: str, seed: int) -> bool:
        return any(r["seed"] == seed for r in runs.get(row, []))

    def record(row: str, seed: int, preds_dev, preds_test, stages: dict[str, float], extra: dict | None = None):
        sd = out / f"seed{seed}"
        write_predictions(sd / f"{row}.dev.predictions", [p if isinstance(p, str) else p.text for p in preds_dev])
        write_predictions(sd / f"{row}.test.predictions", [p if isinstance(p, str) else p.text for p in preds_test])
        correct, total = score(dev_rows, [_P(p) for p in preds_dev])
        runs.setdefault(row, []).append({"seed": seed, "correct": correct, "total": total,
                                         "accuracy": 100.0 * correct / total, "seconds": stages, **(extra or {})})
        say(f"[seed {seed}] {ROW_TITLES[row]}: {correct}/{total} = {100.0 * correct / total:.1f}% "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in stages.items())})")
        write_results(partial=True)  # a run cut short keeps every row it finished

    def evaluate(model) -> tuple[list, list, float]:
        t0 = time.time()
        d = evaluate_rows(model, corpus.vocab, dev_rows, precision=precision)
        t = evaluate_rows(model, corpus.vocab, test_rows, precision=precision)
        return d, t, time.time() - t0

    def train(stage, seed: int, tag: str, *where, path: Path, **kw) -> tuple[GPT, float, float]:
        """One stage (pipeline.pretrain_stage or finetune_stage) of one seed: its model, training
        seconds (over every piece) and final loss. A stage whose checkpoint a piece already wrote
        is loaded; a stage a time limit stopped goes on from its saved state."""
        history = Path(f"{path}.history.json")
        if prior is not None and path.is_file() and history.is_file():
            model, _ = load_for(path, corpus, where[-1], device)
            h = json.loads(read_text(history))
            say(f"[seed {seed}] {tag}: done in an earlier piece ({path.name})")
            return model, h["seconds"], h.get("final_loss", h["history"][-1]["loss"])
        state = Path(f"{path}.state")
        resume = state.is_file() and prior is not None
        tr, status = stage(prof, corpus, *where, device, path, f"{tag} seed {seed}", quiet=args.quiet,
                           train_overrides={"seed": seed, "precision": train_choice}, resume=resume,
                           time_left_s=time_left(), save_every=SAVE_EVERY, **kw)
        if status != "done":
            raise _OutOfTime(f"{tag} seed {seed} at step {tr.progress.step} of {tr.total_steps}")
        state.unlink(missing_ok=True)  # the checkpoint holds what the state did; states are large
        h = tr.progress.history
        say(f"[seed {seed}] {tag}: {tr.progress.step} steps in {tr.progress.elapsed:.0f} s"
            f"{' (over pieces)' if resume else ''}, loss {h[0]['loss']:.3f} → {h[-1]['loss']:.3f}")
        return tr.model, tr.progress.elapsed, h[-1]["loss"]

    def given(name: str, variant: str) -> tuple[GPT, dict] | None:
        """With --pretrained, the folder's checkpoint of this stage (checked against the profile's
        model and this variant); None where the folder has none."""
        if args.pretrained is None:
            return None
        path = Path(args.pretrained) / name
        if not path.is_file():
            return None
        model, meta = load_for(path, corpus, variant, device, config=asdict(prof.model))
        say(f"{name}: loaded from {path} ({meta.get('steps')} steps of {meta.get('stage')})")
        return model, meta

    def write_results(partial: bool) -> dict:
        results = {
            "format": FORMATS["study"],
            "profile": name,
            "description": prof.description,
            "profile_settings": prof.to_dict(),
            **provenance(device, pieces[0]["command"], pieces[0]["commit"]),
            "precision": train_precision,  # the training's (decoding runs in `precision`)
            "decode_precision": precision,
            "seeds": sorted({x["seed"] for r in runs.values() for x in r}) if partial else seeds,
            "plan": {"profile": profile_name, "seeds": seeds, "variants": variants,
                     **({"pretrained": args.pretrained} if args.pretrained else {})},
            **({"pretrained_from": args.pretrained} if args.pretrained else {}),
            "pieces": pieces,
            "reference": REFERENCE,
            "rows": {row: summarize(r) for row, r in runs.items()},
        }
        if partial:
            results["partial"] = True  # rewritten without this flag once every seed and row is done
        write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
        return results

    write_results(partial=True)  # the plan is on disk before the first stage, so any stop can be resumed
    try:
        for seed in seeds:
            sd = out / f"seed{seed}"
            sd.mkdir(exist_ok=True)
            if not done("london", seed):
                record("london", seed, london(dev_rows), london(test_rows), {})

            if not done("vanilla_nopretrain", seed):
                loaded = given("vanilla.nopretrain.safetensors", "vanilla")
                if loaded is not None:  # the shipped no-pretraining model: evaluated, not trained again
                    d, t, t_ev = evaluate(loaded[0])
                    record("vanilla_nopretrain", seed, d, t, {"evaluate": t_ev},
                           {"loaded": str(Path(args.pretrained) / "vanilla.nopretrain.safetensors")})
                else:
                    model, t_ft, loss = train(finetune_stage, seed, "finetune (no pretraining)", train_tsv,
                                              "vanilla", path=sd / "vanilla.nopretrain.safetensors")
                    d, t, t_ev = evaluate(model)
                    record("vanilla_nopretrain", seed, d, t, {"finetune": t_ft, "evaluate": t_ev},
                           {"final_loss": {"finetune": loss}})

            for variant in variants:
                if done(f"{variant}_pretrain", seed):
                    continue
                loaded = given(f"{variant}.pretrain.safetensors", variant)
                if loaded is not None:  # finetuned from the given pretraining, as the study would have
                    pre, t_pre, pre_loss = loaded[0], None, None
                else:
                    pre, t_pre, pre_loss = train(pretrain_stage, seed, f"pretrain {variant}", variant,
                                                 path=sd / f"{variant}.pretrain.safetensors")
                ft, t_ft, ft_loss = train(finetune_stage, seed, f"finetune {variant}", train_tsv, variant, model=pre,
                                          path=sd / f"{variant}.finetune.safetensors")
                d, t, t_ev = evaluate(ft)
                seconds = {**({"pretrain": t_pre} if t_pre is not None else {}), "finetune": t_ft, "evaluate": t_ev}
                extra = {"final_loss": {"pretrain": pre_loss, "finetune": ft_loss}} if loaded is None else \
                    {"final_loss": {"finetune": ft_loss},
                     "pretrained_from": str(Path(args.pretrained) / f"{variant}.pretrain.safetensors")}
                record(f"{variant}_pretrain", seed, d, t, seconds, extra)
    except _OutOfTime as e:
        write_results(partial=True)
        say(f"time limit reached in {e}; state saved. Go on with: factgpt reproduce --out {out} --resume")
        return 0
    except KeyboardInterrupt:
        write_results(partial=True)
        say(f"interrupted; every finished row and the stage's training state are saved. "
            f"Go on with: factgpt reproduce --out {out} --resume")
        return 130

    results = write_results(partial=False)
    print(write_study_outputs(out, results))
    say(f"wrote {out}/ (results.json, table.md, plots, predictions and checkpoints per seed)")
    return 0


class _P:
    """Adapter so that London's plain strings and Predictions score alike."""

    def __init__(self, p):
        self.text = p if isinstance(p, str) else p.text


