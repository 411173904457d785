"""The `factgpt` command.

The course's command lines work with `factgpt` in place of `python src/run.py`:
    factgpt pretrain vanilla wiki.txt --writing_params_path vanilla.pretrain.params
    factgpt finetune vanilla wiki.txt --reading_params_path vanilla.pretrain.params \
        --writing_params_path vanilla.finetune.params --finetune_corpus_path birth_places_train.tsv
    factgpt evaluate vanilla wiki.txt --reading_params_path vanilla.finetune.params \
        --eval_corpus_path birth_dev.tsv --outputs_path vanilla.pretrain.dev.predictions
Omitted data paths default to the copies shipped inside the package.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .argtypes import positive_float, positive_int
from .errors import InputError
from .fileio import DEFAULT_MODEL, SHIPPED_MODELS, bundled_path, check_writable, run_folder, shipped_model
from .choices import PRECISIONS, VARIANTS



class Parser(argparse.ArgumentParser):
    """Argument errors as one line and exit code 2, like every other bad input."""

    def error(self, message: str):  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: {message}\n")
        sys.exit(2)


# ---- argument groups ----------------------------------------------------------------
def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto picks CUDA when present")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: fp32 until bf16 or tf32 (CUDA) is shown to train the same (bench/precision_check.py)")


def add_corpus(p: argparse.ArgumentParser) -> None:
    p.add_argument("variant", choices=VARIANTS)
    p.add_argument("pretrain_corpus_path", nargs="?", default=None,
                   help="the pretraining corpus; the vocabulary is always built from it (default: bundled wiki.txt)")


def add_training(p: argparse.ArgumentParser, model_size: bool) -> None:
    g = p.add_argument_group("training (defaults: the course's hyperparameters)")
    g.add_argument("--max_epochs", "--epochs", type=positive_int, default=None)
    g.add_argument("--batch_size", type=positive_int, default=None)
    g.add_argument("--learning_rate", type=positive_float, default=None)
    g.add_argument("--warmup_tokens", type=int, default=None)
    g.add_argument("--final_tokens", type=positive_int, default=None)
    g.add_argument("--weight_decay", type=float, default=None)
    g.add_argument("--shuffle", action="store_true", default=None, help="shuffle batches (the original did not)")
    g.add_argument("--decay_matmul_weights_only", action="store_true",
                   help="fix the original's weight-decay filter: no decay on LayerNorm weights, embeddings, biases")
    g.add_argument("--scheduled_first_step", action="store_true",
                   help="fix the original's full learning rate on the first step")
    g.add_argument("--reference", action="store_true",
                   help="the plain reference path: per-example dataset, padded batches, explicit attention")
    g.add_argument("--no_pack", action="store_true", help="padded batches instead of packed rows")
    g.add_argument("--compile", action="store_true", help="torch.compile the model (useful on CUDA)")
    g.add_argument("--profile", default="course", help="named profile or JSON file giving the defaults")
    if model_size:
        g.add_argument("--n_layer", type=positive_int, default=None)
        g.add_argument("--n_head", type=positive_int, default=None)
        g.add_argument("--n_embd", type=positive_int, default=None)
        g.add_argument("--dropout", type=float, default=None, help="embedding, residual and attention dropout (course: 0.1)")
    r = p.add_argument_group("long runs")
    r.add_argument("--save_every", type=positive_int, default=None, help="save the training state every N steps")
    r.add_argument("--time_limit", type=positive_float, default=None, metavar="MINUTES",
                   help="stop cleanly after this many minutes with the state saved; continue with --resume")
    r.add_argument("--resume", action="store_true", help="continue from <writing_params_path>.state")


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="factgpt", description="How pretraining puts facts into a transformer, and how finetuning gets them out.")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("pretrain", help="span-corruption pretraining on the corpus")
    add_corpus(p)
    p.add_argument("--writing_params_path", required=True)
    add_training(p, model_size=True)
    add_common(p)

    p = sub.add_parser("finetune", help="finetune on question<TAB>answer pairs, from scratch or a pretrained model")
    add_corpus(p)
    p.add_argument("--writing_params_path", required=True)
    p.add_argument("--reading_params_path", default=None, help="a pretrained model (omit to train from scratch)")
    p.add_argument("--finetune_corpus_path", default=None, help="default: bundled birth_places_train.tsv")
    add_training(p, model_size=True)
    add_common(p)

    p = sub.add_parser("evaluate", help="greedy answers to every question; accuracy when answers are given")
    add_corpus(p)
    p.add_argument("--reading_params_path", default=None, metavar="NAME|PATH",
                   help=f"a checkpoint, or a shipped model: {', '.join(SHIPPED_MODELS)} (default {DEFAULT_MODEL})")
    p.add_argument("--eval_corpus_path", default=None, help="default: bundled birth_dev.tsv")
    p.add_argument("--outputs_path", default=None, help="where to write one prediction per line")
    p.add_argument("--reference", action="store_true", help="one question at a time without a cache")
    add_common(p)

    p = sub.add_parser("baseline", help="the London baseline")
    p.add_argument("name", choices=["london"])
    p.add_argument("--eval_corpus_path", default=None, help="default: bundled birth_dev.tsv")
    p.add_argument("--outputs_path", default=None)

    p = sub.add_parser("ask", help="answer questions with confidence and the recited line, or say the model does not know")
    p.add_argument("question", nargs="?", default=None,
                   help="'Where was NAME born?' (omit to read questions from standard input, one a line)")
    p.add_argument("--json", action="store_true", help="one JSON object a line (fields: docs/serve.md)")
    p.add_argument("--reading_params_path", default=None, metavar="NAME|PATH",
                   help=f"a checkpoint, or a shipped model: {', '.join(SHIPPED_MODELS)} (default {DEFAULT_MODEL})")
    p.add_argument("--pretrain_corpus_path", default=None)
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])

    p = sub.add_parser("serve", help="the model behind a JSON API and a page at / (loopback unless --host says otherwise)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", default=None, metavar="NAME|PATH",
                   help=f"a checkpoint, or a shipped model: {', '.join(SHIPPED_MODELS)} (default {DEFAULT_MODEL})")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"],
                   help="auto picks CUDA, then Apple's MPS, where torch reports one")
    p.add_argument("--quiet", action="store_true", help="no request log")

    p = sub.add_parser("abstention", help="choose when a recite model says it does not know (held-out slice and "
                                          "made-up names), then measure it on dev and fresh made-up names")
    p.add_argument("--reading_params_path", default=None, metavar="NAME|PATH",
                   help=f"a recite checkpoint, or a shipped model (default {DEFAULT_MODEL})")
    p.add_argument("--made_up", type=positive_int, default=500, help="made-up names in each of the two sets")
    p.add_argument("--answers", default=None, metavar="FILE",
                   help="answers.jsonl of an earlier run on this model: choose and report again without decoding")
    p.add_argument("--out", default=None, help="folder for abstention.json, answers.jsonl and the figure "
                                             "(default: a new runs/abstention-DATE-TIME)")

    p = sub.add_parser("reproduce", help="the whole study: every row, every seed, results JSON, table and plots")
    p.add_argument("--profile", default=None,
                   help="wordkeys_small_e70 | wordkeys_small_e60 | course_keyed | course | laptop120 | quick | smoke | "
                        "a JSON file (default: course on a GPU, wordkeys_small_e70 on a CPU)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=None, help="default: both")
    p.add_argument("--out", default=None, help="the run's folder (default: a new runs/PROFILE-DATE-TIME)")
    p.add_argument("--yes", action="store_true", help="do not ask before a run estimated to take hours")
    p.add_argument("--time_limit", type=positive_float, default=None, metavar="MINUTES",
                   help="stop this piece after this many minutes of training, the stage's state saved; "
                        "--resume goes on")
    p.add_argument("--resume", action="store_true",
                   help="go on with the run in --out: its profile, seeds and variants, finished rows kept, "
                        "a stopped stage resumed exactly (a recipe: its finished seeds kept)")
    p.add_argument("--pretrained", default=None, metavar="DIR",
                   help="a seed folder of a study run (e.g. results/course/seed0): its pretrained checkpoints are "
                        "finetuned and evaluated instead of pretraining again; its no-pretraining model, if there, "
                        "is evaluated")
    p.add_argument("--recipe", default=None, metavar="NAME",
                   help="run a recipe beyond the course (factgpt/configs/recipes/NAME.json or a JSON file) instead of the study")
    add_common(p)

    p = sub.add_parser("curve", help="one pretraining of a profile, probed every few epochs: held-out accuracy "
                                     "and line recall against pretraining minutes")
    p.add_argument("--profile", default="wordkeys_small_e70",
                   help="wordkeys_small_e70 | wordkeys_small_e60 | course_keyed | course | laptop120 | quick | smoke | "
                        "a JSON file (default wordkeys_small_e70)")
    p.add_argument("--variant", choices=VARIANTS, default="vanilla")
    p.add_argument("--probe_every", type=positive_int, default=10, metavar="EPOCHS")
    p.add_argument("--probe_at", type=positive_int, nargs="+", default=None, metavar="EPOCH",
                   help="further epochs to probe (e.g. early ones)")
    p.add_argument("--max_epochs", type=positive_int, default=None,
                   help="the pretraining's length (and the cosine's), instead of the profile's")
    p.add_argument("--time_limit", type=positive_float, default=None, metavar="MINUTES",
                   help="stop once the curve has run this many minutes, counting every piece and its "
                        "probes (state saved); --resume goes on")
    p.add_argument("--resume", action="store_true", help="go on with the curve in --out")
    p.add_argument("--keep_weights", action="store_true",
                   help="also keep each probe's pretrained weights (out/pretrain-epochNNN.safetensors), "
                        "e.g. to finetune them otherwise later")
    p.add_argument("--out", default=None, help="folder for curve.json and the training state "
                                             "(default: a new runs/curve-PROFILE-DATE-TIME)")
    add_common(p)

    p = sub.add_parser("table", help="print the Markdown table of each study's results.json")
    p.add_argument("results", nargs="+", help="results.json files of `factgpt reproduce`")

    p = sub.add_parser("merge", help="one results.json from runs of one study or one recipe made apart (e.g. one process per seed)")
    p.add_argument("results", nargs="+", help="results.json files of `factgpt reproduce` (a study or a recipe)")
    p.add_argument("--out", required=True, help="folder of the merged results.json, table.md and plots")
    p.add_argument("--keep_first", action="store_true",
                   help="where two files give one (row, seed) or recipe seed different results (GPU runs are not bitwise "
                        "deterministic), keep the first file's and record the difference in the merged JSON")

    p = sub.add_parser("explore", help="check the attention claims numerically; writes a report and figures")
    p.add_argument("--out", default=None, help="folder for report.md, figures and results.json "
                                             "(default: a new runs/explore-DATE-TIME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smaller learning experiment")

    p = sub.add_parser("analyze", help="what finetuned models know and guess: calibration, unseen names, "
                                       "error analysis; writes analysis.json, figures and report.html")
    from .analysis.command import add_arguments as add_analyze_arguments

    add_analyze_arguments(p)

    p = sub.add_parser("bench", help="time the reference path and the fast path in one run")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    p.add_argument("--steps", type=positive_int, default=200, help="timed pretraining steps per path")
    p.add_argument("--finetune_steps", type=positive_int, default=20)
    p.add_argument("--eval_reference", type=positive_int, default=100,
                   help="dev questions decoded by the slow reference path (extrapolated to 500)")
    p.add_argument("--reading_params_path", default=None, help="model to decode with (default: shipped, else the benchmark's own)")
    p.add_argument("--out", default=None, help="folder for the timings JSON (default: a new runs/bench-DATE-TIME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the fast path (written to <device>-compile.json)")

    p = sub.add_parser("schedule", help="plot the learning rate of a profile's stage, step by step")
    p.add_argument("--profile", default="course")
    p.add_argument("--stage", default="pretrain", choices=["pretrain", "finetune_pretrained", "finetune_scratch"])
    p.add_argument("--out", default=None, help="folder for the plot and its JSON (default: a new runs/schedule-DATE-TIME)")

    p = sub.add_parser("convert", help="import a torch.save checkpoint of the original code (weights only, no code runs)")
    p.add_argument("variant", choices=VARIANTS)
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--pretrain_corpus_path", default=None)
    p.add_argument("--n_head", type=positive_int, default=8)
    return ap


# ---- commands --------------------------------------------------------------------------
# Each command imports what it needs inside its function, on purpose: torch and
# matplotlib take most of a second to import, and `factgpt --help`, a bad flag or
# `factgpt ask` should not pay for what other commands use.
def _corpus(args):
    from .pipeline import load_corpus

    return load_corpus(args.pretrain_corpus_path or bundled_path("wiki.txt"))


def _train_overrides(args) -> dict:
    o = {k: getattr(args, k, None) for k in ("max_epochs", "batch_size", "learning_rate", "warmup_tokens",
                                             "final_tokens", "weight_decay", "shuffle")}
    o["seed"], o["precision"] = args.seed, args.precision
    if args.decay_matmul_weights_only:
        o["decay_norms_and_embeddings"] = False
    if args.scheduled_first_step:
        o["first_step_full_lr"] = False
    if args.reference:
        o.update(pack=False, reference=True, precision="fp32" if args.precision == "auto" else args.precision)
    elif args.no_pack:
        o["pack"] = False
    return o


def _size(args) -> dict:
    o = {k: getattr(args, k, None) for k in ("n_layer", "n_head", "n_embd")}
    d = getattr(args, "dropout", None)
    if d is not None:
        if not 0.0 <= d < 1.0:
            raise InputError("--dropout", f"must be in [0, 1), got {d}")
        o.update(embd_pdrop=d, resid_pdrop=d, attn_pdrop=d)
    return o


def cmd_pretrain(args) -> int:
    from .distributed import setup
    from .pipeline import load_profile, pretrain_stage
    from .precision import resolve_device

    check_writable(args.writing_params_path)
    device = setup(resolve_device(args.device))
    corpus = _corpus(args)
    return _finish(*pretrain_stage(load_profile(args.profile), corpus, args.variant, device, args.writing_params_path,
                                   "pretrain", reference=args.reference, quiet=args.quiet,
                                   train_overrides=_train_overrides(args), model_overrides=_size(args),
                                   **_long_run(args), extra_meta={"corpus": str(corpus.path)}), args)


def cmd_finetune(args) -> int:
    from .distributed import setup
    from .pipeline import finetune_stage, load_for, load_profile
    from .precision import resolve_device

    check_writable(args.writing_params_path)
    device = setup(resolve_device(args.device))
    corpus = _corpus(args)
    tsv = args.finetune_corpus_path or bundled_path("birth_places_train.tsv")
    model = None
    if args.reading_params_path:
        if any(v is not None for k, v in _size(args).items() if k in ("n_layer", "n_head", "n_embd")):
            raise InputError("--n_layer/--n_head/--n_embd", "the model size comes from --reading_params_path")
        model, _ = load_for(args.reading_params_path, corpus, args.variant, device)
        if args.dropout is not None:
            model.set_dropout(args.dropout)
    stage = "finetune_pretrained" if model is not None else "finetune_scratch"
    return _finish(*finetune_stage(load_profile(args.profile), corpus, tsv, args.variant, device,
                                   args.writing_params_path, stage, model=model, reference=args.reference,
                                   quiet=args.quiet, train_overrides=_train_overrides(args), model_overrides=_size(args),
                                   **_long_run(args), extra_meta={"corpus": str(corpus.path), "finetune_corpus": str(tsv),
                                                                  "pretrained": args.reading_params_path}), args)


def _long_run(args) -> dict:
    return {"compile": args.compile, "resume": args.resume, "time_limit_s": _minutes(args), "save_every": args.save_every}


def _minutes(args) -> float | None:
    return None if args.time_limit is None else args.time_limit * 60.0


def _finish(trainer, status: str, args) -> int:
    from .distributed import cleanup, is_main

    main_rank = is_main()
    cleanup()
    if not main_rank:
        return 0
    p = trainer.progress
    if status == "stopped":
        print(f"stopped after {p.step} of {trainer.total_steps} steps ({args.time_limit} min); state saved to "
              f"{args.writing_params_path}.state; continue with the same command and --resume", file=sys.stderr)
        return 0
    last = p.history[-1]["loss"] if p.history else float("nan")
    print(f"{args.command}: {p.step} steps in {p.elapsed:.1f} s, final loss {last:.4f}; wrote {args.writing_params_path}",
          file=sys.stderr)
    return 0


def _model_path(arg: str | None) -> str:
    """A checkpoint path, or the name of a model shipped with the package (default: the recite model)."""
    name = arg or DEFAULT_MODEL
    if name in SHIPPED_MODELS:
        p = shipped_model(name)
        if p is None:
            raise InputError("--reading_params_path", f"this installation does not ship the {name!r} model")
        return str(p)
    return arg  # type: ignore[return-value]


def cmd_evaluate(args) -> int:
    from .evaluate import accuracy, report_line, write_predictions
    from .grounded import answer_questions
    from .pipeline import evaluate_rows, load_for, load_qa
    from .precision import resolve_device

    if args.outputs_path:
        check_writable(args.outputs_path)
    device = resolve_device(args.device)
    corpus = _corpus(args)
    model, meta = load_for(_model_path(args.reading_params_path), corpus, args.variant, device)
    tsv = args.eval_corpus_path or bundled_path("birth_dev.tsv")
    rows = load_qa(tsv, corpus.vocab, need_answers=False, block_size=model.config.block_size)
    t0 = time.time()
    spec = meta.get("spec", {})
    if spec.get("recite"):  # recite the line, then answer (the same decoding as the recipe's evaluation)
        if args.reference:
            raise InputError("--reference", "a recite model has no one-question-at-a-time reference decoding")
        from tqdm.auto import tqdm

        questions, preds = [r.question for r in rows], []
        chunk = 100  # a progress bar over the questions: each chunk is decoded as one batch
        with tqdm(total=len(questions), desc="evaluate", unit="question", disable=args.quiet) as bar:
            for s in range(0, len(questions), chunk):
                part = questions[s : s + chunk]
                preds += [a.guess for a in answer_questions(model, corpus.vocab, part,
                                                            int(meta.get("max_chars") or model.config.block_size),
                                                            span_answer=spec.get("span_answer", True))]
                bar.update(len(part))
    else:
        preds = [p.text for p in evaluate_rows(model, corpus.vocab, rows, reference=args.reference)]
    if args.outputs_path:
        write_predictions(args.outputs_path, preds)
    s = accuracy(rows, preds) if rows[0].answer is not None else None
    if s is None:
        print(f"No gold answers in {tsv}; wrote {len(preds)} predictions"
              + (f" to {args.outputs_path}" if args.outputs_path else " (give --outputs_path to keep them)"))
    else:
        print(report_line(*s))
    print(f"({len(rows)} questions in {time.time() - t0:.2f} s)", file=sys.stderr)
    return 0


def cmd_baseline(args) -> int:
    from .evaluate import london, report_line, write_predictions
    from .datasets import parse_tsv
    from .fileio import read_text

    if args.outputs_path:
        check_writable(args.outputs_path)
    tsv = args.eval_corpus_path or bundled_path("birth_dev.tsv")
    rows = parse_tsv(read_text(tsv), str(tsv), need_answers=False)
    preds = london(rows)
    if args.outputs_path:
        write_predictions(args.outputs_path, preds)
    if rows[0].answer is None:
        print(f"No gold answers in {tsv}; the baseline answers London to all {len(rows)} questions")
    else:
        print(report_line(sum(r.answer == p for r, p in zip(rows, preds)), len(rows)))
    return 0


def cmd_ask(args) -> int:
    from .ask import answer, render
    from .precision import resolve_device

    replies = answer(_model_path(args.reading_params_path), None if args.question is None else [args.question],
                     sys.stdin if args.question is None else None,
                     args.pretrain_corpus_path or bundled_path("wiki.txt"), resolve_device(args.device, mps=True))
    sys.stdout.write(render(replies, args.json))
    bad = [r for r in replies if not hasattr(r, "question")]
    for r in bad:
        print(r.error, file=sys.stderr)
    return 2 if bad else 0


def cmd_serve(args) -> int:
    import uvicorn

    from .ask import Asker
    from .checkpoint import load_model
    from .pipeline import load_corpus
    from .precision import resolve_device
    from .serve import create_app, keep_large_blocks_out_of_the_heap, model_info
    from .speculative import Drafter

    keep_large_blocks_out_of_the_heap()
    path = _model_path(args.model)
    corpus = load_corpus(bundled_path("wiki.txt"))
    model, meta = load_model(path, vocab=corpus.vocab, device=resolve_device(args.device, mps=True))
    asker = Asker(model, corpus.vocab, meta)
    if asker.recites:  # a lone question's line decoded speculatively, with guesses read off the corpus
        asker.drafter = Drafter(corpus.text, corpus.vocab)
    app = create_app(asker, model_info(args.model or f"{DEFAULT_MODEL} (shipped)", meta, asker))
    print(f"serving {args.model or DEFAULT_MODEL} on http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr,
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.quiet else "info")
    return 0


def cmd_reproduce(args) -> int:
    if args.recipe is not None:
        # what the study takes and a recipe does not: refused, not ignored
        for flag, given, why in (("--profile", args.profile is not None, "a recipe carries its own settings"),
                                 ("--time_limit", args.time_limit is not None, "a recipe's seed runs in one piece"),
                                 ("--variants", args.variants is not None, "a recipe trains the vanilla model only"),
                                 ("--precision", args.precision != "auto", "a recipe trains in its own precision (auto)"),
                                 ("--yes", args.yes, "a recipe does not ask first"),
                                 ("--pretrained", args.pretrained is not None, "a recipe pretrains its own way")):
            if given:
                raise InputError(flag, f"{why}; {flag} is for the study")
        from .recipes.runner import RecipeOptions, run_recipe

        return run_recipe(RecipeOptions(recipe=args.recipe, seeds=args.seeds, out=args.out, resume=args.resume,
                                        device=args.device, quiet=args.quiet, argv=tuple(args.argv)))
    from .study import StudyOptions, reproduce

    return reproduce(StudyOptions(profile=args.profile, seeds=args.seeds, variants=args.variants, out=args.out,
                                  resume=args.resume, device=args.device, precision=args.precision,
                                  time_limit=args.time_limit, quiet=args.quiet, yes=args.yes,
                                  pretrained=args.pretrained, argv=tuple(args.argv)))


def cmd_curve(args) -> int:
    from .curve import run_curve
    from .pipeline import load_corpus, load_profile
    from .plots import curve_plot
    from .precision import resolve_device

    profile = load_profile(args.profile)
    if args.max_epochs is not None:
        profile = profile.with_settings(pretrain={"max_epochs": args.max_epochs})
    if args.precision != "auto":
        profile = profile.with_settings(common={"precision": args.precision})
    if args.resume and args.out is None:
        raise InputError("--resume", "needs --out: the folder of the curve to go on with")
    out = run_folder(args.out, f"curve-{profile.name}")
    record = run_curve(profile, load_corpus(bundled_path("wiki.txt")), out, variant=args.variant, seed=args.seed,
                       every=args.probe_every, extra=args.probe_at, device=resolve_device(args.device),
                       time_limit_s=None if args.time_limit is None else args.time_limit * 60,
                       resume=args.resume, quiet=args.quiet, keep_weights=args.keep_weights,
                       command="factgpt " + " ".join(args.argv))
    png = curve_plot(out / "curve.png", record)
    state = "done" if record["pretrain_done"] else "stopped on time: go on with --resume"
    print(f"wrote {out / 'curve.json'} and {png} ({len(record['probes'])} probes; {state})", file=sys.stderr)
    return 0


def cmd_table(args) -> int:
    from .tables import print_tables

    return print_tables(args.results)


def cmd_merge(args) -> int:
    from .merge import merge_runs

    merged = merge_runs(args.results, Path(args.out), keep_first=args.keep_first)
    if "recipe" in merged:
        print(f"{merged['recipe']}: seeds {merged['seeds']}, held-out {merged['heldout']['mean']:.1f} ± "
              f"{merged['heldout']['std']:.1f}, dev {merged['dev']['mean']:.1f} ± {merged['dev']['std']:.1f}")
        return 0
    from .tables import write_study_outputs

    print(write_study_outputs(Path(args.out), merged))
    return 0


def cmd_explore(args) -> int:
    from .explore import run_exploration

    run_exploration(run_folder(args.out, "explore"), seed=args.seed, quick=args.quick)
    return 0


def cmd_analyze(args) -> int:
    from .analysis import main as analyze

    return analyze(args)


def cmd_bench(args) -> int:
    from .benchmark import run_bench

    model = args.reading_params_path or (str(shipped_model("quick")) if shipped_model("quick") else None)
    run_bench(args.device, args.steps, args.finetune_steps, args.eval_reference, run_folder(args.out, "bench"), args.precision,
              args.seed, model, command="factgpt " + " ".join(args.argv), compile=args.compile)
    return 0


def cmd_schedule(args) -> int:
    import json

    from .fileio import write_text_atomic
    from .pipeline import load_corpus, load_profile
    from .plots import schedule_plot

    out = run_folder(args.out, "schedule")
    out.mkdir(parents=True, exist_ok=True)
    info = schedule_plot(load_profile(args.profile), args.stage, load_corpus(bundled_path("wiki.txt")).n_docs, out)
    info["command"] = "factgpt " + " ".join(args.argv)

    write_text_atomic(out / f"{info['profile']}_{args.stage}_lr.json", json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    return 0


def cmd_convert(args) -> int:
    from .checkpoint import convert_torch_checkpoint

    check_writable(args.dest)
    corpus = _corpus(args)
    cfg = convert_torch_checkpoint(args.source, args.dest, corpus.vocab, args.variant, {"n_head": args.n_head})
    print(f"wrote {args.dest}: {cfg}")
    return 0


def cmd_abstention(args) -> int:
    from .abstention import measure, summary

    label = args.reading_params_path or f"{DEFAULT_MODEL} (shipped)"
    out = run_folder(args.out, "abstention")
    result = measure(Path(_model_path(args.reading_params_path)), out, args.made_up, args.argv, label,
                     Path(args.answers) if args.answers else None)
    print(summary(result))
    print(f"wrote {out / 'abstention.json'} and {out / 'risk_coverage.png'}", file=sys.stderr)
    return 0


COMMANDS = {
    "pretrain": cmd_pretrain, "finetune": cmd_finetune, "evaluate": cmd_evaluate, "baseline": cmd_baseline,
    "ask": cmd_ask, "serve": cmd_serve, "reproduce": cmd_reproduce, "table": cmd_table, "merge": cmd_merge, "explore": cmd_explore,
    "convert": cmd_convert, "bench": cmd_bench, "schedule": cmd_schedule,
    "analyze": cmd_analyze, "abstention": cmd_abstention, "curve": cmd_curve,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    from .train import NonFiniteLoss

    try:
        return COMMANDS[args.command](args)
    except InputError as e:
        print(str(e), file=sys.stderr)
        return 2
    except NonFiniteLoss as e:
        print(f"training stopped: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The `factgpt` console script: main(), then for `ask` an exit that skips the interpreter's
    teardown. With torch loaded, tearing the interpreter down took a quarter to a third of a
    question's whole latency on a 2-core CPU (`import torch` then a normal exit, against os._exit;
    docs/speed.md); `ask` has written everything it writes to stdout and stderr, flushed first."""
    rc = main()
    if sys.argv[1:2] == ["ask"]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    entry()
