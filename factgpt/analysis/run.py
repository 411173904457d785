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
from ..evaluate import predict
from ..fileio import bundled_path, read_text, write_text_atomic
from ..pipeline import load_corpus, load_qa
from ..results import ROW_TITLES
from . import confidence as C
from . import breakdown as E
from . import unseen as U
from .report import write_report

FORMAT = "factgpt-analysis-1"
KINDS = (("answer", "prob", "probability of the answer"),
         ("first_char", "first_prob", "probability of its first character"))


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
    head = "question\tgold\tprediction\tprob\tfirst_prob\n" if golds else "question\tprediction\tprob\tfirst_prob\n"
    lines = []
    for i, (q, p) in enumerate(zip(questions, preds)):
        cells = [q, *([golds[i]] if golds else []), p.text, f"{p.prob:.6g}", f"{p.first_prob:.6g}"]
        lines.append("\t".join(cells))
    return head + "\n".join(lines) + "\n"


def run_analysis(model_paths: dict[str, Path], out_dir: Path, results_json: Path | None, seed: int = 0, *,
                 n_unseen: int = 500, device: str | torch.device = "cpu", batch_size: int = 512,
                 command: str | None = None, quiet: bool = True) -> dict:
    """Analyse finetuned checkpoints; the first entry of model_paths is the main model.

    Writes into out_dir: analysis.json (every number), the figures (PNG),
    per-question TSVs with confidences, and report.html (self-contained).
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
    train_answers = [r.answer for r in parse_tsv(tsv_texts["birth_places_train.tsv"], "birth_places_train.tsv", True)]

    # Load every model before any work, so a bad path fails at once.
    models = {}
    for row, path in model_paths.items():
        model, meta = load_model(path, vocab=corpus.vocab, device=device)
        models[row] = (Path(path), model, meta)
    main_row = next(iter(models))
    out = prepare_out(out_dir)

    names = U.unseen_names(wiki_text, list(tsv_texts.values()), n_unseen, seed)
    unseen_q = [U.question(n) for n in names]

    analysis: dict[str, Any] = {
        "format": FORMAT,
        "command": command,
        "seed": seed,
        "device": str(device),
        "precision": "fp32",
        "main": main_row,
        "results_json": str(results_json) if results_json is not None else None,
        "models": {},
        "confidence": {},
        "unseen": {"n_names": len(names), "seed": seed, "rows": {}},
        "errors": {},
        "figures": {},
    }
    figures = analysis["figures"]
    dev_rows = None
    for row, (path, model, meta) in models.items():
        title = ROW_TITLES.get(row, row)
        dev_rows = load_qa(bundled_path("birth_dev.tsv"), corpus.vocab, True, model.config.block_size)
        t0 = time.time()
        dev = predict(model, corpus.vocab, [r.question for r in dev_rows], batch_size=batch_size)
        uns = predict(model, corpus.vocab, unseen_q, batch_size=batch_size)
        secs = time.time() - t0
        correct = [r.answer == p.text for r, p in zip(dev_rows, dev)]
        study = _study_predictions(path, row)
        analysis["models"][row] = {
            "title": title, "path": str(path), "variant": meta.get("variant"),
            "config": {k: meta["config"][k] for k in ("n_layer", "n_head", "n_embd", "block_size")},
            "prediction_seconds": secs,
            # agreement with the dev predictions `factgpt reproduce` wrote beside the checkpoint
            "study_predictions_agreement": (sum(a == p.text for a, p in zip(study, dev)) / len(dev)
                                            if study is not None and len(study) == len(dev) else None),
        }
        say(f"{title}: {sum(correct)}/{len(dev)} dev answers right; {len(uns)} unseen names ({secs:.1f} s)")

        conf: dict[str, Any] = {"n": len(dev), "correct": sum(correct), "accuracy": sum(correct) / len(dev),
                                "empty_answers": sum(p.text == "" for p in dev)}
        for kind, attr, _ in KINDS:
            conf[kind] = C.summarize([getattr(p, attr) for p in dev], correct)
        analysis["confidence"][row] = conf
        safe = row.replace("/", "_")
        figures[f"reliability_{row}"] = C.plot_reliability(
            out / f"reliability_{safe}.png", f"{title}: reliability on {len(dev)} dev questions",
            {label: conf[kind] for kind, _, label in KINDS}).name

        is_main = row == main_row
        analysis["unseen"]["rows"][row] = U.analyze(names, uns, dev, correct, train_answers, full=is_main)
        write_text_atomic(out / f"dev_{safe}.tsv", _tsv(dev, [r.question for r in dev_rows],
                                                        [r.answer for r in dev_rows]))
        if is_main:
            write_text_atomic(out / f"unseen_{safe}.tsv", _tsv(uns, unseen_q))
            res = analysis["unseen"]["rows"][row]
            figures["unseen_answers"] = U.plot_answers(out / "unseen_answers.png", res, title).name
            figures["unseen_confidence"] = U.plot_confidence(out / "unseen_confidence.png", res, title).name
            feats = E.features(dev_rows, wiki_text, train_answers)
            sp = E.splits(feats, correct, [p.prob for p in dev])
            analysis["errors"] = {"row": row, "n": len(dev_rows), "splits": sp,
                                  "examples": E.examples(dev_rows, dev, feats, seed)}
            figures["errors"] = E.plot_splits(out / "errors.png", sp, title).name
    analysis["unseen"]["main"] = analysis["unseen"]["rows"][main_row]

    if results is not None:
        analysis["study"] = {k: results.get(k) for k in ("profile", "device", "precision", "commit", "seeds")}
    write_text_atomic(out / "analysis.json", json.dumps(analysis, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    write_report(out / "report.html", analysis, results,
                 Path(results_json).parent if results_json is not None else None, out)
    say(f"wrote {out / 'analysis.json'} and {out / 'report.html'}")
    return analysis
