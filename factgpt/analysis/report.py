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
from .evidence import char_diff
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
td.line{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82em;max-width:30em;word-break:break-word}
del{background:#fde2e2;color:#9b1c1c}ins{background:#dcfce7;color:#14532d}
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


def findings(a: dict) -> str:
    """What the numbers say, one line a model, written from analysis.json."""
    items = []
    for row, m in a["models"].items():
        c, u = a["confidence"][row], a["unseen"]["rows"][row]
        h = a["hypothesis_c"]["rows"][row]
        top = u["top_answers"][0] if u.get("top_answers") else {"answer": "", "share": None}
        ab = c.get("abstention")
        said = (f"answers {pct(ab['dev_answered'])} of dev ({pct(ab['dev_wrong_answered'])} wrongly) and refuses "
                f"{pct(ab['made_up_refused'])} of the made-up names; " if ab else "")
        items.append(
            f"<li><strong>{esc(m['title'])}</strong>: {pct(c['accuracy'])} of dev right; {said}its confidence tells "
            f"right from wrong with AUROC {num(c['answer']['auroc'], 2)} and real from made-up names with "
            f"{num(u['auroc_dev_vs_unseen']['answer'], 2)}; made to answer for a made-up name it says "
            f"{esc(answer(top['answer']))} {pct(top['share'])} of the time. Hypothesis (c), by spelling: "
            f"{esc(h['spelling']['verdict'])}; by the model's reading: {esc(h['model_state']['verdict'])}.</li>")
    return "<p>What the numbers say:</p><ul>" + "".join(items) + "</ul>"


def models_section(a: dict) -> str:
    rows = []
    for row, m in a["models"].items():
        c = a["confidence"][row]
        rows.append([m["title"], m["kind"], m["pretraining_view"], m["abstention_rule"] or "–",
                     f"{c['correct']}/{c['n']}", pct(c["accuracy"]), m["path"]])
    parts = ["<h2>The models</h2>",
             "<p>Each model is analysed the way it answers: a course-objective model (span-corruption pretraining, "
             "then finetuning on the question) by greedy decoding after the question; the recite model by reciting "
             "the line it stored for the name, then reading the answer off it, and by its abstention rule where "
             "it has one. &ldquo;Pretraining view&rdquo; is how each model's pretraining showed a wiki.txt line: "
             "the splits below use it.</p>",
             table(["model", "kind", "pretraining view", "abstention rule", "dev right", "dev accuracy", "checkpoint"],
                   rows, numeric=(4, 5), caption="Models analysed (the first is the main model)")]
    parts.append(findings(a))
    if a.get("missing"):
        parts.append("<p class=\"note\">Not analysed: " + "; ".join(
            f"{esc(x['title'])} ({esc(x['why'])})" for x in a["missing"]) + ".</p>")
    return "\n".join(parts)


def confidence_section(a: dict, out: Path) -> str:
    conf = a["confidence"]
    main = a["main"]
    n_bins = len(conf[main]["answer"]["bins"])
    parts = [
        "<h2>Confidence: does the model know when it is right?</h2>",
        "<p>Each model has two confidences for every dev answer: for a course-objective model the product of the "
        "answer's character probabilities and its first character's; for the recite model the confidence "
        "<code>factgpt ask</code> shows (line score × span probability) and the line score alone. "
        f"The reliability diagrams put the answers into {n_bins} equal-width confidence bins and compare each "
        "bin's accuracy with its mean confidence (the dashed diagonal is perfect calibration). The expected "
        "calibration error (ECE) is the gap of each bin weighted by its share of the answers; the AUROC is the "
        "probability that a right answer gets a higher confidence than a wrong one (0.5: confidence says "
        "nothing; undefined when all answers are right or all are wrong).</p>",
    ]
    rows = []
    for row, c in conf.items():
        labels = a["models"][row]["confidences"]
        rows.append([a["models"][row]["title"], f"{c['correct']}/{c['n']}", pct(c["accuracy"]),
                     labels["answer"], num(c["answer"]["mean"]), num(c["answer"]["ece"]), num(c["answer"]["auroc"]),
                     labels["first_char"], num(c["first_char"]["mean"]), num(c["first_char"]["auroc"])])
    parts.append(table(["model", "right", "accuracy", "confidence", "mean", "ECE", "AUROC right/wrong",
                        "second confidence", "mean", "AUROC right/wrong"], rows, numeric=(1, 2, 4, 5, 6, 8, 9),
                       caption="Calibration and discrimination on the dev set"))
    ab = [(row, c["abstention"]) for row, c in conf.items() if "abstention" in c]
    if ab:
        parts.append(table(["model", "rule", "dev answered", "dev answered and right", "dev answered and wrong",
                            "made-up names refused"],
                           [[a["models"][r]["title"], x["rule"], pct(x["dev_answered"]), pct(x["dev_correct_answered"]),
                             pct(x["dev_wrong_answered"]), pct(x["made_up_refused"])] for r, x in ab],
                           numeric=(2, 3, 4, 5), caption="What the abstention rule lets through"))
    agree = [(row, m["study_predictions_agreement"]) for row, m in a["models"].items()
             if m["study_predictions_agreement"] is not None]
    if agree:
        parts.append('<p class="note">Agreement of these predictions with the dev predictions '
                     "<code>factgpt reproduce</code> wrote beside each checkpoint: "
                     + "; ".join(f"{esc(a['models'][r]['title'])} {pct(x)}" for r, x in agree) + ".</p>")
    parts.append('<div class="grid">' + "".join(
        figure(out / a["figures"][f"reliability_{row}"], f"Reliability of {a['models'][row]['title']}")
        for row in conf) + "</div>")
    return "\n".join(parts)


def unseen_section(a: dict, out: Path) -> str:
    u = a["unseen"]
    main = a["main"]
    m = u["rows"][main]
    parts = [
        "<h2>Made-up names: what does it guess?</h2>",
        f"<p>{u['n_names']} plausible names were made by recombining first names and surnames of the people in "
        "the data (seeded), keeping only names that occur nowhere in wiki.txt or in the train, dev and test "
        f"files, e.g. {esc(', '.join(m['example_names'][:6]))}. No model can know where these people were "
        "born; the answers show what each falls back on, and the confidence whether it can tell a person it "
        "has read about from one it has not (AUROC real against made-up: 0.5 means it cannot).</p>",
    ]
    rows = []
    for r, x in u["rows"].items():
        top = x["top_answers"][0] if x.get("top_answers") else {"answer": "", "share": None}
        rows.append([a["models"][r]["title"], x["distinct_answers"], f"{answer(top['answer'])} ({pct(top['share'])})",
                     pct(x["top5_share"]), pct(x["share_training_answers"]),
                     num(x["confidence"]["answer"]["unseen"]["mean"]), num(x["confidence"]["answer"]["dev"]["mean"]),
                     num(x["auroc_dev_vs_unseen"]["answer"]), num(x["auroc_dev_vs_unseen"]["first_char"]),
                     pct(x["refused"]) if "refused" in x else "–"])
    parts.append(table(["model", "distinct answers", "most frequent answer", "five most frequent",
                        "training answers", "mean conf. made-up", "mean conf. dev", "AUROC real/made-up",
                        "AUROC (second conf.)", "refused"], rows, numeric=(1, 3, 4, 5, 6, 7, 8, 9),
                       caption="Every model on the same made-up names"))
    k = max(len(m["top_answers"]), len(m["top_training_places"]))
    trows = []
    for i in range(k):
        ua = m["top_answers"][i] if i < len(m["top_answers"]) else None
        tp = m["top_training_places"][i] if i < len(m["top_training_places"]) else None
        left = [answer(ua["answer"]), ua["count"], pct(ua["share"])] if ua else ["", "", ""]
        right = [tp["place"], tp["count"], pct(tp["share"])] if tp else ["", "", ""]
        trows.append([i + 1, *left, *right])
    t = a["models"][main]["title"]
    parts.append(table(["#", "answer for made-up names", "count", "share", "place in the training file", "count",
                        "share"], trows, numeric=(0, 2, 3, 5, 6),
                       caption=f"The {k} most frequent answers of {t} for made-up names, beside the "
                               f"{k} most frequent training places"))
    figs = []
    for r in u["rows"]:
        title = a["models"][r]["title"]
        figs.append(figure(out / a["figures"][f"unseen_answers_{r}"], f"{title}: answers for made-up names"))
        figs.append(figure(out / a["figures"][f"unseen_confidence_{r}"], f"{title}: confidence, real and made-up"))
    parts.append('<div class="grid">' + "".join(figs) + "</div>")
    return "\n".join(parts)


def hypothesis_section(a: dict) -> str:
    h = a["hypothesis_c"]
    parts = [
        "<h2>Hypothesis (c): does a made-up name get the birthplace of a close, seen name?</h2>",
        "<p>The seed write-up suggests that for a name it never saw, the model &ldquo;relates it to some close, "
        "already seen name&rdquo; and outputs that person's birthplace. For every made-up name the nearest "
        f"people of {esc(h['people'])} are found by spelling (edit distance of the first name plus that of the "
        "surname) and by the model's own reading (cosine similarity of its last hidden state at the name's last "
        "character in the question). <em>Observed</em> is how often the model's answer is a nearest person's "
        "birthplace (ties share the credit; 95% bootstrap interval over the names); <em>chance</em> is the rate "
        "expected if the answers, with the model's own answer frequencies, had nothing to do with the names "
        "(with the 95% range of a permutation test that shuffles the answers among the names, and its "
        "one-sided p-value). A recite model's answer here is what it says when made to answer, refused or "
        "not.</p>",
    ]
    rows = []
    for r, x in h["rows"].items():
        for kind, label in (("spelling", "spelling"), ("model_state", "model's reading")):
            t = x[kind]
            lo, hi = t["observed_ci95"]
            clo, chi = t["chance_range95"]
            rows.append([a["models"][r]["title"], label, f"{pct(t['observed'])} [{pct(lo)}, {pct(hi)}]",
                         f"{pct(t['chance'])} [{pct(clo)}, {pct(chi)}]",
                         "–" if t["lift"] is None else f"{t['lift']:.2f}×", f"{t['p_value']:.3g}", t["verdict"]])
    parts.append(table(["model", "nearest by", "observed [95% CI]", "chance [95% range]", "lift", "p", "verdict"],
                       rows, numeric=(2, 3, 4, 5), caption="The nearest person's birthplace as the answer"))
    main = a["main"]
    ex = h["rows"][main]["spelling"]["examples"]
    parts.append(table(["made-up name", "answer", "nearest by spelling", "their birthplaces"],
                       [[e["name"], answer(e["answer"]), "; ".join(e["nearest"]), "; ".join(e["their_places"])]
                        for e in ex], caption=f"First made-up names and their nearest people ({a['models'][main]['title']})"))
    return "\n".join(parts)


def errors_section(a: dict, out: Path) -> str:
    e = a["errors"]["rows"]
    rows = list(e)
    parts = [
        "<h2>Error analysis: which facts come out?</h2>",
        "<p>Dev accuracy of each model, split by what pretraining could have shown: whether the person has a "
        "wiki.txt line, whether the gold place is in the line as that model's pretraining showed it (its own "
        "changes and cut: "
        + "; ".join(f"{esc(a['models'][r]['title'])}: {esc(e[r]['view'])}" for r in rows)
        + "), how often the place is a training answer, and the length of the name. Each split covers every "
          "dev question once; a cell is right / questions.</p>",
    ]
    tables = []
    first = e[rows[0]]["splits"]
    for key, s in first.items():
        body = []
        for i, b in enumerate(s["buckets"]):
            cells = [b["bucket"]]
            for r in rows:
                x = e[r]["splits"][key]["buckets"][i]
                cells.append(f"{x['correct']}/{x['n']} ({pct(x['accuracy'], 0)})" if x["n"] else "0/0")
            body.append(cells)
        tables.append(table(["bucket", *[a["models"][r]["title"] for r in rows]], body,
                            numeric=range(1, len(rows) + 1), caption=s["title"]))
    parts.append('<div class="grid">' + "".join(tables) + "</div>")
    parts.append('<div class="grid">' + "".join(
        figure(out / a["figures"][f"errors_{r}"], f"Dev accuracy of {a['models'][r]['title']} by split")
        for r in rows) + "</div>")

    def ex_table(items: list[dict], caption: str) -> str:
        return table(["question", "gold", "prediction", "confidence"],
                     [[x["question"], x["gold"], answer(x["prediction"]), num(x["confidence"])] for x in items],
                     numeric=(3,), caption=caption)

    main = a["main"]
    ex = e[main]["examples"]
    t = a["models"][main]["title"]
    parts.append('<div class="grid">' + ex_table(ex["correct"], f"{t}: {len(ex['correct'])} right answers (random)")
                 + ex_table(ex["wrong"], f"{t}: {len(ex['wrong'])} wrong answers (random)") + "</div>")
    parts.append(ex_table(ex["most_confident_wrong"], f"{t}: the {len(ex['most_confident_wrong'])} most confident "
                                                      "wrong answers"))
    return "\n".join(parts)


def marked(recited: str, real: str) -> tuple[str, str]:
    """Both lines as HTML, what differs marked: <del> only in the recitation, <ins> only in the real line."""
    left, right = [], []
    for op, x, y in char_diff(recited, real):
        if op == "equal":
            left.append(esc(x))
            right.append(esc(y))
        else:
            if x:
                left.append(f"<del>{esc(x)}</del>")
            if y:
                right.append(f"<ins>{esc(y)}</ins>")
    return "".join(left), "".join(right)


def evidence_section(a: dict) -> str:
    if not a.get("evidence"):
        return ""
    parts = ["<h2>The recite model's evidence: what it recited against what it read</h2>",
             "<p>The recite model answers by reciting a line and copying the place out of it. Below, its recited "
             "line next to the real pretraining line (as pretraining showed it: keyed by the question, birth "
             "clause first, cut), with what differs marked: <del>struck through</del> only in the recitation, "
             "<ins>underlined</ins> only in the real line. For a made-up name the real line is the pretraining "
             "line most like the recitation.</p>"]
    for row, ev in a["evidence"].items():
        title = a["models"][row]["title"]
        errs = ev["errors"]
        wrong = ev["n"] - errs["correct"]
        labels = {"answer_not_in_line": "the line as cut does not hold the answer",
                  "line_not_recited": "the line holds it but the recitation lost it",
                  "copied_another_span": "another piece of the recited line was copied",
                  "garbled_copy": "the copy is in neither line"}
        parts.append(table(["where the wrong answer went wrong", "dev questions", "share of the wrong"],
                           [[labels[k], errs[k], pct(errs[k] / wrong if wrong else None)] for k in labels],
                           numeric=(1, 2), caption=f"{title}: its {wrong} wrong dev answers of {ev['n']}"))
        near = ev["made_up_reciting_a_nearest_persons_line"]
        parts.append(f"<p>For {ev['made_up_reciting_a_real_line']} of {ev['made_up_total']} made-up names the "
                     f"recitation is close to some real line (difflib ratio ≥ {ev['real_line_ratio']}); "
                     + ("" if near is None else f"for {near} of them that line is of a person nearest in spelling. ")
                     + f"Mean ratio of a made-up name's recitation to its closest real line: "
                       f"{num(ev['mean_closest_ratio'], 2)}.</p>")

        def rows_of(items: list[dict], made_up: bool = False) -> list[str]:
            out = []
            for x in items:
                left, right = marked(x["recited"], x["real"])
                who = (f"{esc(x['name'])} → {esc(answer(x['answer']))}"
                       f"{'' if x['answered'] else ' (refused)'}<br><span class=\"note\">closest real line: "
                       f"{esc(x['real_person'] or '–')}, ratio {num(x['ratio'], 2)}</span>"
                       if made_up else
                       f"{esc(x['question'])}<br>gold {esc(x['gold'])}, answer {esc(answer(x['answer']))}"
                       f"{'' if x['answered'] else ' (refused)'}")
                out.append(f"<tr><td>{who}</td><td class=\"line\">{left}</td><td class=\"line\">{right}</td></tr>")
            return out

        for key, cap, mu in (("correct", "right answers", False), ("wrong", "wrong answers", False),
                             ("made_up", "made-up names", True)):
            body = "".join(rows_of(ev[key], mu))
            parts.append(f"<table><caption>{esc(title)}: {esc(cap)} (random)</caption><thead><tr><th>question</th>"
                         f"<th>recited line</th><th>real line</th></tr></thead><tbody>{body}</tbody></table>")
    return "\n".join(parts)


def render(a: dict, results: dict | None, study_dir: Path | None, out: Path) -> str:
    head = (f'<p class="meta">Decoding on {esc(a["device"])} in {esc(a["precision"])}; seed {esc(a["seed"])}'
            + (f"; <code>{esc(a['command'])}</code>" if a.get("command") else "")
            + ". Every number below comes from <code>analysis.json</code> or the study's "
              "<code>results.json</code>.</p>")
    body = "\n".join([
        "<h1>factgpt: what the models know, guess, and cannot tell apart</h1>", head, models_section(a),
        study_section(results, study_dir), confidence_section(a, out), unseen_section(a, out),
        hypothesis_section(a), errors_section(a, out), evidence_section(a),
    ])
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<title>factgpt study report</title>\n"
            f"<style>{CSS}</style>\n<script>{SCRIPT}</script>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def write_report(path: Path, a: dict, results: dict | None, study_dir: Path | None, out: Path) -> Path:
    write_text_atomic(path, render(a, results, study_dir, out))
    return path
