"""run_analysis: predict once per model, measure, plot, and write analysis.json and report.html."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_model
from ..datasets import parse_tsv
from ..errors import InputError
from ..fileio import bundled_path, read_text, write_text_atomic
from ..heldout import name_of
from ..lines import pretraining_lines
from ..pipeline import load_corpus, load_qa
from ..results import ROW_TITLES
from ..runinfo import device_name, git_commit
from . import breakdown as E
from . import confidence as C
from . import evidence as V
from . import neighbours as N
from . import unseen as U
from .answers import KINDS, answer_all, model_view
from .report import write_report

FORMAT = "factgpt-analysis-2"


def load_results(path: str | Path) -> dict:
    p = Path(path)
    try:
        res = json.loads(read_text(p))
    except json.JSONDecodeError as e:
        raise InputError(p, f"invalid JSON: {e.msg}", e.lineno) from None
    if not isinstance(res, dict) or not {"profile", "rows", "seeds"} <= res.keys():
        raise InputError(p, "not a results.json written by `factgpt reproduce`")
    return res


def prepare_out(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(out, f"cannot create the output folder: {e.strerror}") from None
    return out


def _study_predictions(ckpt: Path, row: str) -> list[str] | None:
    """The dev predictions `factgpt reproduce` wrote beside a checkpoint, if any."""
    f = ckpt.parent / f"{row}.dev.predictions"
    if not f.is_file():
        return None
    return f.read_text(encoding="utf-8").split("\n")[:-1]


def _tsv(preds, questions, golds=None) -> str:
    """One line per question; a recite model's also say whether it answered and what it recited."""
    recite = any(p.recitation is not None for p in preds)
    cols = ["question", *(["gold"] if golds else []), "prediction", "prob", "first_prob",
            *(["answered", "recitation"] if recite else [])]
    lines = []
    for i, (q, p) in enumerate(zip(questions, preds)):
        cells = [q, *([golds[i]] if golds else []), p.text, f"{p.prob:.6g}", f"{p.first_prob:.6g}"]
        if recite:
            cells += ["yes" if p.answered else "no", (p.recitation or "").replace("\t", " ")]
        lines.append("\t".join(cells))
    return "\t".join(cols) + "\n" + "\n".join(lines) + "\n"


def _shown(path: Path) -> str:
    """A checkpoint's path as the report shows it: relative to here when it is below."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def title_of(row: str) -> str:
    """'laptop/vanilla_pretrain' → 'laptop: vanilla, pretrain → finetune'; a study row or any other name as is."""
    group, _, rest = row.rpartition("/")
    t = ROW_TITLES.get(rest, "recite model (recite, then copy)" if rest == "recite" else rest)
    return f"{group}: {t}" if group else t


def run_analysis(model_paths: dict[str, Path], out_dir: Path, results_json: Path | None, seed: int = 0, *,
                 n_unseen: int = 500, device: str | torch.device = "cpu", batch_size: int = 512,
                 command: str | None = None, quiet: bool = True, missing: list[dict] | None = None) -> dict:
    """Analyse finetuned checkpoints side by side; the first entry of model_paths is the main model.

    Writes into out_dir: analysis.json (every number), the figures (PNG),
    per-question TSVs with confidences, and report.html (self-contained).
    `missing`: models the report should name as not available, with why.
    Returns the analysis dict that analysis.json holds.
    """
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    if not model_paths:
        raise InputError("--reading_params_path", "no model to analyse")
    if n_unseen <= 0:
        raise InputError("--n_unseen", f"must be a positive integer, got {n_unseen}")
    results = load_results(results_json) if results_json is not None else None
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise InputError(out_dir, "exists and is not a folder")
    device = torch.device(device)

    corpus = load_corpus(bundled_path("wiki.txt"))  # the vocabulary is always the pretraining corpus's
    wiki_text = corpus.text
    tsv_texts = {name: read_text(bundled_path(name))
                 for name in ("birth_places_train.tsv", "birth_dev.tsv", "birth_test_inputs.tsv")}
    train_rows = parse_tsv(tsv_texts["birth_places_train.tsv"], "birth_places_train.tsv", True)
    train_answers = [r.answer for r in train_rows]
    people = [name_of(r.question) or r.question for r in train_rows]

    # Load every model before any work, so a bad path fails at once.
    models = {}
    for row, path in model_paths.items():
        model, meta = load_model(path, vocab=corpus.vocab, device=device)
        models[row] = (Path(path), model, meta, model_view(meta, results.get("profile") if results else None))
    main_row = next(iter(models))
    out = prepare_out(out_dir)

    names = U.unseen_names(wiki_text, list(tsv_texts.values()), n_unseen, seed)
    unseen_q = [U.question(n) for n in names]
    spelling = N.nearest_by_spelling(names, people)  # the same for every model

    analysis: dict[str, Any] = {
        "format": FORMAT,
        "command": command,
        "commit": git_commit(),
        "torch": torch.__version__,
        "seed": seed,
        "device": device_name(device),
        "precision": "fp32",
        "main": main_row,
        "results_json": str(results_json) if results_json is not None else None,
        "models": {},
        "missing": list(missing or []),
        "confidence": {},
        "unseen": {"n_names": len(names), "seed": seed, "rows": {}},
        "errors": {"rows": {}},
        "hypothesis_c": {"people": "the training pairs' people (birth_places_train.tsv)", "rows": {}},
        "evidence": {},
        "figures": {},
    }
    figures = analysis["figures"]
    for row, (path, model, meta, view) in models.items():
        title = title_of(row)
        safe = row.replace("/", "_")
        kinds = KINDS[view.kind]
        dev_rows = load_qa(bundled_path("birth_dev.tsv"), corpus.vocab, True, model.config.block_size)
        t0 = time.time()
        dev = answer_all(model, view, corpus.vocab, [r.question for r in dev_rows], batch_size)
        uns = answer_all(model, view, corpus.vocab, unseen_q, batch_size)
        secs = time.time() - t0
        correct = [r.answer == a.text for r, a in zip(dev_rows, dev)]
        study = _study_predictions(path, row.rpartition("/")[2])
        analysis["models"][row] = {
            "title": title, "path": _shown(path), "variant": meta.get("variant"), "kind": view.kind,
            "pretraining_view": view.describe(), "cut": view.cut,
            "abstention_rule": view.rule.describe() if view.rule else None,
            "config": {k: meta["config"][k] for k in ("n_layer", "n_head", "n_embd", "block_size")},
            "prediction_seconds": secs,
            "confidences": {k: label for k, label in kinds},
            # agreement with the dev predictions `factgpt reproduce` wrote beside the checkpoint
            "study_predictions_agreement": (sum(a == p.text for a, p in zip(study, dev)) / len(dev)
                                            if study is not None and len(study) == len(dev) else None),
        }
        say(f"{title}: {sum(correct)}/{len(dev)} dev answers right; {len(uns)} unseen names ({secs:.1f} s)")

        conf: dict[str, Any] = {"n": len(dev), "correct": sum(correct), "accuracy": sum(correct) / len(dev),
                                "empty_answers": sum(a.text == "" for a in dev)}
        for kind, label in kinds:
            attr = "prob" if kind == "answer" else "first_prob"
            conf[kind] = C.summarize([getattr(a, attr) for a in dev], correct)
        if view.rule is not None:
            answered = [a.answered for a in dev]
            conf["abstention"] = {
                "rule": view.rule.describe(),
                "dev_answered": sum(answered) / len(dev),
                "dev_correct_answered": sum(c and a for c, a in zip(correct, answered)) / len(dev),
                "dev_wrong_answered": sum((not c) and a for c, a in zip(correct, answered)) / len(dev),
                "made_up_refused": sum(not a.answered for a in uns) / len(uns),
            }
        analysis["confidence"][row] = conf
        figures[f"reliability_{row}"] = C.plot_reliability(
            out / f"reliability_{safe}.png", f"{title}: reliability on {len(dev)} dev questions",
            {label: conf[kind] for kind, label in kinds}).name

        analysis["unseen"]["rows"][row] = U.analyze(names, uns, dev, correct, train_answers, full=True)
        if view.rule is not None:
            analysis["unseen"]["rows"][row]["refused"] = sum(not a.answered for a in uns) / len(uns)
        write_text_atomic(out / f"dev_{safe}.tsv", _tsv(dev, [r.question for r in dev_rows],
                                                        [r.answer for r in dev_rows]))
        write_text_atomic(out / f"unseen_{safe}.tsv", _tsv(uns, unseen_q))
        res = analysis["unseen"]["rows"][row]
        figures[f"unseen_answers_{row}"] = U.plot_answers(out / f"unseen_answers_{safe}.png", res, title).name
        figures[f"unseen_confidence_{row}"] = U.plot_confidence(out / f"unseen_confidence_{safe}.png", res, title,
                                                                kinds).name

        feats = E.features(dev_rows, wiki_text, train_answers, view.data, view.cut)
        sp = E.splits(feats, correct, [a.prob for a in dev])
        analysis["errors"]["rows"][row] = {"n": len(dev_rows), "splits": sp, "cut": view.cut,
                                           "view": view.describe(),
                                           "examples": E.examples(dev_rows, dev, feats, seed)}
        figures[f"errors_{row}"] = E.plot_splits(out / f"errors_{safe}.png", sp, title).name

        hc = N.hypothesis_c(model, corpus.vocab, names, [a.text for a in uns], people, train_answers, seed, spelling)
        analysis["hypothesis_c"]["rows"][row] = hc
        say(f"{title}: hypothesis (c) by spelling: {hc['spelling']['verdict']}")

        if view.kind == "recite":
            lines = pretraining_lines(wiki_text, view.data)
            nearest_people = [[people[j] for j in near] for near in spelling]
            analysis["evidence"][row] = V.recite_evidence(dev_rows, dev, names, uns, lines, seed,
                                                          nearest_people=nearest_people)
    analysis["unseen"]["main"] = analysis["unseen"]["rows"][main_row]

    if results is not None:
        analysis["study"] = {k: results.get(k) for k in ("profile", "device", "precision", "commit", "seeds")}
    write_text_atomic(out / "analysis.json", json.dumps(analysis, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    write_report(out / "report.html", analysis, results,
                 Path(results_json).parent if results_json is not None else None, out)
    say(f"wrote {out / 'analysis.json'} and {out / 'report.html'}")
    return analysis
