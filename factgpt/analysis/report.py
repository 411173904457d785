"""report.html: the whole study on one self-contained page.

The page holds the study's results table and curves (from results.json and
the PNGs beside it) and the confidence, unseen-name and error analyses (from
analysis.json). Images are embedded as base64 data URIs; the page loads
nothing from anywhere. A small inline script records, once the page has
loaded, how many images decoded and how many errors occurred
(data-images, data-images-total, data-errors on <body>), so a headless
browser can check the page.
"""

from __future__ import annotations

import base64
import html
import statistics
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..fileio import write_text_atomic
from ..results import REFERENCE, ROW_TITLES

STUDY_IMAGES = (("accuracy.png", "dev accuracy per row"),
                ("pretrain_loss.png", "pretraining loss and learning rate"),
                ("finetune_loss.png", "finetuning loss and learning rate"))

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1180px;margin:2em auto;padding:0 1em;
color:#1d1d1f;line-height:1.45}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}h3{margin-top:1.4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #d0d0d0;padding:.25em .55em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:1.2em;align-items:flex-start}
figure{margin:.8em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}.meta{color:#555;font-size:.9em}.note{color:#555;font-size:.9em}
code{background:#f5f5f5;padding:0 .2em}
"""

SCRIPT = """
(function () {
  var errors = 0;
  window.addEventListener('error', function () { errors += 1; }, true);
  window.addEventListener('load', function () {
    var imgs = document.images, ok = 0;
    for (var i = 0; i < imgs.length; i++) {
      if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok += 1; }
    }
    document.body.dataset.images = String(ok);
    document.body.dataset.imagesTotal = String(imgs.length);
    document.body.dataset.errors = String(errors);
  });
})();
"""


# ---- small renderers -----------------------------------------------------------------
def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def answer(a: str) -> str:
    return a if a else "(empty)"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (), caption: str = "") -> str:
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = "".join(f'<td class="n">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>"
                        for i, c in enumerate(r))
        body.append(f"<tr>{cells}</tr>")
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure(path: Path, caption: str) -> str:
    if not path.is_file():
        return ""
    return (f'<figure><img src="{png_data_uri(path.read_bytes())}" alt="{esc(caption)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def title_of(row: str) -> str:
    return ROW_TITLES.get(row, row)


# ---- sections ------------------------------------------------------------------------
def study_section(results: dict | None, study_dir: Path | None) -> str:
    parts = ["<h2>The study</h2>"]
    if results is None:
        parts.append('<p class="note">No results.json was given (<code>--results</code>), so the study\'s table '
                     "and curves are not shown; the analyses below are of the checkpoints named.</p>")
        return "\n".join(parts)
    seeds = results["seeds"]
    commit = str(results.get("commit", "?"))[:12]
    parts.append(f'<p class="meta">Profile <code>{esc(results["profile"])}</code> · {esc(results.get("device", "?"))} · '
                 f'{esc(results.get("precision", "?"))} · torch {esc(results.get("torch", "?"))} · '
                 f'commit <code>{esc(commit)}</code> · seeds {esc(", ".join(map(str, seeds)))}'
                 f'<br>{esc(results.get("command", ""))}</p>')
    if results.get("description"):
        parts.append(f"<p>{esc(results['description'])}</p>")
    ref = results.get("reference", REFERENCE)
    rows = []
    for row, r in results["rows"].items():
        per = ", ".join(f"{x['accuracy']:.1f}" for x in r["runs"])
        mins = []
        for stage in ("pretrain", "finetune", "evaluate"):
            v = [x["seconds"][stage] for x in r["runs"] if stage in x.get("seconds", {})]
            mins.append(f"{statistics.fmean(v) / 60:.1f}" if v else "–")
        rows.append([title_of(row), f"{r['mean']:.1f}% ± {r['std']:.1f}", per,
                     f"{ref[row]:.1f}%" if row in ref else "–", " / ".join(mins)])
    parts.append(table(["row", "dev accuracy (mean ± std)", "per seed", "seed write-up",
                        "minutes per seed (pretrain / finetune / evaluate)"], rows, numeric=(),
                       caption="Dev accuracy of every row of the study (from results.json)"))
    if results["profile"] == "smoke":
        parts.append('<p class="note">The smoke profile checks that the study runs; its small model and few epochs '
                     "are not expected to learn the facts, so its accuracies are not findings.</p>")
    if study_dir is not None:
        figs = [figure(study_dir / name, cap) for name, cap in STUDY_IMAGES]
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
    return "\n".join(parts)


def confidence_section(a: dict, out: Path) -> str:
    conf = a["confidence"]
    main = a["main"]
    n_bins = len(conf[main]["answer"]["bins"])
    parts = [
        "<h2>Confidence: does the model know when it is right?</h2>",
        "<p>For every dev question the model's greedy answer has a probability: the product of its characters' "
        "probabilities (<em>answer</em>), and that of its first character alone (<em>first character</em>). "
        f"The reliability diagrams put the answers into {n_bins} equal-width confidence bins and compare each "
        "bin's accuracy with its mean confidence (the dashed diagonal is perfect calibration). The expected "
        "calibration error (ECE) is the gap of each bin weighted by its share of the answers; the AUROC is the "
        "probability that a right answer gets a higher confidence than a wrong one (0.5: confidence says "
        "nothing; undefined when all answers are right or all are wrong).</p>",
    ]
    rows = []
    for row, c in conf.items():
        rows.append([title_of(row), f"{c['correct']}/{c['n']}", pct(c["accuracy"]), c["empty_answers"],
                     num(c["answer"]["mean"]), num(c["answer"]["ece"]), num(c["answer"]["auroc"]),
                     num(c["answer"]["brier"]), num(c["first_char"]["mean"]), num(c["first_char"]["ece"]),
                     num(c["first_char"]["auroc"])])
    parts.append(table(["model", "right", "accuracy", "empty answers", "mean conf. (answer)", "ECE (answer)",
                        "AUROC (answer)", "Brier (answer)", "mean conf. (first char)", "ECE (first char)",
                        "AUROC (first char)"], rows, numeric=range(1, 11),
                       caption="Calibration and discrimination on the dev set"))
    agree = [(row, m["study_predictions_agreement"]) for row, m in a["models"].items()
             if m["study_predictions_agreement"] is not None]
    if agree:
        parts.append('<p class="note">Agreement of these predictions with the dev predictions '
                     "<code>factgpt reproduce</code> wrote beside each checkpoint: "
                     + "; ".join(f"{esc(title_of(r))} {pct(x)}" for r, x in agree) + ".</p>")
    parts.append('<div class="grid">' + "".join(
        figure(out / a["figures"][f"reliability_{row}"], f"Reliability of {title_of(row)}") for row in conf) + "</div>")
    bins = conf[main]["answer"]["bins"]
    parts.append(table(["confidence bin", "answers", "right", "accuracy", "mean confidence"],
                       [[f"{b['lo']:.1f}–{b['hi']:.1f}", b["count"], b["correct"], pct(b["accuracy"]),
                         num(b["mean_confidence"])] for b in bins], numeric=(1, 2, 3, 4),
                       caption=f"Reliability bins of {title_of(main)} (probability of the answer)"))
    return "\n".join(parts)


def unseen_section(a: dict, out: Path) -> str:
    u = a["unseen"]
    m = u["main"]
    main = a["main"]
    t = title_of(main)
    ca = m["confidence"]["answer"]
    top = m["top_answers"][0] if m["top_answers"] else {"answer": "", "count": 0, "share": None}
    parts = [
        "<h2>Unseen names: what does it guess?</h2>",
        f"<p>{u['n_names']} plausible names were made by recombining first names and surnames of the people in "
        "the data (seeded), keeping only names that occur nowhere in wiki.txt or in the train, dev and test "
        f"files, e.g. {esc(', '.join(m['example_names'][:6]))}. The model cannot know where these people were "
        "born; its answers show what it falls back on, and its confidence shows whether it can tell a person "
        "it has read about from one it has not.</p>",
        "<ul>",
        f"<li>{t} gives {m['distinct_answers']} distinct answers; the most frequent, "
        f"<strong>{esc(answer(top['answer']))}</strong>, is {pct(top['share'])} of them and the five most "
        f"frequent are {pct(m['top5_share'])}.</li>",
        f"<li>{pct(m['share_training_answers'])} of its answers for unseen names are places that occur as "
        f"answers in the training file (dev names: {pct(m['dev_share_training_answers'])}).</li>",
        f"<li>Total variation distance between its answers and the training places: "
        f"{num(m['total_variation_vs_training_places'])} for unseen names, "
        f"{num(m['total_variation_dev_vs_training_places'])} for dev names.</li>",
        f"<li>Mean probability of the answer: {num(ca['unseen']['mean'])} for unseen names against "
        f"{num(ca['dev']['mean'])} for dev names ({num(ca['dev_correct']['mean'])} when right, "
        f"{num(ca['dev_wrong']['mean'])} when wrong). AUROC of that probability for telling a real dev name "
        f"from an unseen one: {num(m['auroc_dev_vs_unseen']['answer'])} (first character: "
        f"{num(m['auroc_dev_vs_unseen']['first_char'])}; 0.5 means it cannot tell them apart).</li>",
        "</ul>",
    ]
    k = max(len(m["top_answers"]), len(m["top_training_places"]))
    rows = []
    for i in range(k):
        ua = m["top_answers"][i] if i < len(m["top_answers"]) else None
        tp = m["top_training_places"][i] if i < len(m["top_training_places"]) else None
        left = [answer(ua["answer"]), ua["count"], pct(ua["share"])] if ua else ["", "", ""]
        right = [tp["place"], tp["count"], pct(tp["share"])] if tp else ["", "", ""]
        rows.append([i + 1, *left, *right])
    parts.append(table(["#", "answer for unseen names", "count", "share", "place in the training file", "count",
                        "share"], rows, numeric=(0, 2, 3, 5, 6),
                       caption=f"The {k} most frequent answers of {t} for unseen names, beside the "
                               f"{k} most frequent training places"))
    crow = []
    for kind, label in (("answer", "answer"), ("first_char", "first character")):
        c = m["confidence"][kind]
        for which, wl in (("dev", "dev names"), ("dev_correct", "dev names, right"), ("dev_wrong", "dev names, wrong"),
                          ("unseen", "unseen names")):
            crow.append([label, wl, c[which]["n"], num(c[which]["mean"]), num(c[which]["median"])])
    parts.append(table(["confidence of the", "questions", "n", "mean", "median"], crow, numeric=(2, 3, 4),
                       caption=f"Confidence of {t}: real dev names against unseen names"))
    parts.append('<div class="grid">' + figure(out / a["figures"]["unseen_answers"], "Answers for unseen names "
                                               "against training places")
                 + figure(out / a["figures"]["unseen_confidence"], "Confidence for real and unseen names") + "</div>")
    if len(u["rows"]) > 1:
        rows = [[title_of(r), x["distinct_answers"], pct(x["top1_share"]), pct(x["share_training_answers"]),
                 num(x["confidence"]["answer"]["unseen"]["mean"]), num(x["confidence"]["answer"]["dev"]["mean"]),
                 num(x["auroc_dev_vs_unseen"]["answer"])] for r, x in u["rows"].items()]
        parts.append(table(["model", "distinct answers", "top answer share", "training answers",
                            "mean conf. unseen", "mean conf. dev", "AUROC real vs unseen"], rows,
                           numeric=range(1, 7), caption="Every model on the same unseen names"))
    return "\n".join(parts)


def errors_section(a: dict, out: Path) -> str:
    e = a["errors"]
    t = title_of(e["row"])
    parts = [
        "<h2>Error analysis: which facts come out?</h2>",
        f"<p>Accuracy of {t} on the {e['n']} dev questions, split by what pretraining could have shown: whether "
        "the person has a wiki.txt line, whether the gold place is in the part of that line span corruption "
        "shows, how often the place is a training answer, and the length of the name. Each split covers every "
        "dev question once.</p>",
    ]
    tables = []
    for key, s in e["splits"].items():
        tables.append(table(["bucket", "questions", "right", "accuracy", "mean confidence"],
                            [[b["bucket"], b["n"], b["correct"], pct(b["accuracy"]), num(b["mean_confidence"])]
                             for b in s["buckets"]], numeric=(1, 2, 3, 4), caption=s["title"]))
    parts.append('<div class="grid">' + "".join(tables) + "</div>")
    parts.append(figure(out / a["figures"]["errors"], f"Dev accuracy of {t} by split"))

    def ex_table(items: list[dict], caption: str) -> str:
        return table(["question", "gold", "prediction", "confidence"],
                     [[x["question"], x["gold"], answer(x["prediction"]), num(x["confidence"])] for x in items],
                     numeric=(3,), caption=caption)

    ex = e["examples"]
    parts.append('<div class="grid">' + ex_table(ex["correct"], f"{len(ex['correct'])} right answers (random)")
                 + ex_table(ex["wrong"], f"{len(ex['wrong'])} wrong answers (random)") + "</div>")
    parts.append(ex_table(ex["most_confident_wrong"], f"The {len(ex['most_confident_wrong'])} most confident wrong "
                                                      "answers"))
    return "\n".join(parts)


def render(a: dict, results: dict | None, study_dir: Path | None, out: Path) -> str:
    models = "; ".join(f"{title_of(r)}: <code>{esc(m['path'])}</code>" for r, m in a["models"].items())
    head = (f'<p class="meta">Models analysed (the first is the main model): {models}.<br>'
            f"Greedy decoding on {esc(a['device'])} in {esc(a['precision'])}; seed {esc(a['seed'])}"
            + (f"; <code>{esc(a['command'])}</code>" if a.get("command") else "")
            + ". Every number below comes from <code>analysis.json</code> or the study's "
              "<code>results.json</code>.</p>")
    body = "\n".join([
        "<h1>factgpt: what the model knows, guesses, and cannot tell apart</h1>", head,
        study_section(results, study_dir), confidence_section(a, out), unseen_section(a, out), errors_section(a, out),
    ])
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>factgpt study report</title>\n"
            f"<style>{CSS}</style>\n<script>{SCRIPT}</script>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def write_report(path: Path, a: dict, results: dict | None, study_dir: Path | None, out: Path) -> Path:
    write_text_atomic(path, render(a, results, study_dir, out))
    return path
