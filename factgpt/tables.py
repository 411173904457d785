"""Every Markdown table of the project, each made from the results JSON a command wrote.

Pages hold `<!-- NAME -->` … `<!-- /NAME -->` markers; fill_markers rewrites what
stands between them, so that no number in them is typed in. Which results file
feeds which marker is the repository's business, not the package's:
scripts/render_docs.py says it for README.md and docs/.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from .errors import InputError
from .fileio import write_text_atomic
from .plots import recipe_plot, study_plots
from .results import ROW_TITLES, is_study, mean_std, read_results


def markdown_table(results: dict) -> str:
    seeds = results["seeds"]
    lines = [
        f"Profile `{results['profile']}` · {results['device']} · {results['precision']} · torch {results['torch']} · "
        f"commit {_commits(results['commit'])} · seeds {', '.join(map(str, seeds))}",
        "",
        "| row | dev accuracy (mean ± std) | per seed | seed write-up | minutes per seed (pretrain / finetune / evaluate) |",
        "|---|---|---|---|---|",
    ]
    for row, r in results["rows"].items():
        per = ", ".join(f"{x['accuracy']:.1f}" for x in r["runs"])
        if [x["seed"] for x in r["runs"]] != list(seeds):  # say which seeds a row that lacks some has
            per += f" (seed{'s' if len(r['runs']) > 1 else ''} {', '.join(str(x['seed']) for x in r['runs'])})"
        mins = []
        for stage in ("pretrain", "finetune", "evaluate"):
            v = [x["seconds"][stage] for x in r["runs"] if stage in x["seconds"]]
            mins.append(f"{statistics.fmean(v) / 60:.1f}" if v else "–")
        spread = f"± {r['std']:.1f}" if len(r["runs"]) > 1 else "(1 seed)"
        lines.append(f"| {ROW_TITLES.get(row, row)} | {r['mean']:.1f}% {spread} | {per} | "
                     f"{results['reference'].get(row, float('nan')):.1f}% | {' / '.join(mins)} |")
    if results.get("partial"):
        lines += ["", "Partial: some runs were stopped before every row was done; each row lists the seeds it has."]
    if results.get("disagreements"):
        diffs = "; ".join(f"{ROW_TITLES.get(d['row'], d['row'])} seed {d['seed']}: {d['kept']['correct']} kept, "
                          f"{d['dropped']['correct']} in another run" for d in results["disagreements"])
        lines += ["", f"Runs of the same seed on a GPU are not bitwise deterministic; where merged runs disagreed "
                      f"(correct answers), the first run is kept: {diffs}."]
    if results["profile"] == "smoke":
        lines += ["", "The smoke profile checks that the study runs; its small model and few epochs are not "
                      "expected to learn the facts, so its accuracies are not findings."]
    return "\n".join(lines) + "\n"


def short_commit(commit: str) -> str:
    """The first 12 digits, and `-dirty` where the run's tree had uncommitted changes."""
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def _commits(commit: str | list[str]) -> str:
    """One commit, or the distinct commits of merged runs, shortened."""
    seen = dict.fromkeys(short_commit(c) for c in ([commit] if isinstance(commit, str) else commit))
    return ", ".join(f"`{c}`" for c in seen)


def write_study_outputs(out: Path, results: dict[str, Any]) -> str:
    """table.md and the plots beside a study's results.json; returns the table."""
    table = markdown_table(results)
    write_text_atomic(out / "table.md", table)
    study_plots(out, results)
    return table


def print_tables(paths: list[str]) -> int:
    """`factgpt table RESULTS.json...`: each study's table, as its run folder's table.md holds it."""
    for f in paths:
        res = read_results(f)
        if not is_study(res):
            raise InputError(f, "not a study's results.json (a recipe's table: `factgpt merge` or "
                                "scripts/render_docs.py render it with every recipe's)")
        print(markdown_table(res))
    return 0


def fill_markers(text: str, blocks: dict[str, str]) -> str:
    """The page with what stands between each `<!-- NAME -->` and `<!-- /NAME -->` replaced by
    blocks[NAME] (markers without a block, or an empty block, are left as they are)."""
    for marker, body in blocks.items():
        text = _fill(text, marker, body)
    return text


def recipe_results(folder: Path) -> list[dict]:
    out = []
    for f in sorted(folder.glob("*/results.json")):
        try:
            out.append(json.loads(f.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f, f"cannot read recipe results: {e}") from None
    return out


def recipe_machines(r: dict) -> str:
    """Where a recipe's seeds ran: each CPU (as its runs recorded it) and precision, in seed order.

    Recipes train in `auto` precision, fp32 on every CPU so far (factgpt/precision.py); runs
    before the recipe results recorded it (2026-12-04) say nothing, and they trained in fp32.
    """
    seen: list[str] = []
    for run in r["runs"]:
        device = run.get("device", r.get("device", "")).replace(" CPU, ", ", ")
        if "(family" not in device and device.startswith("AMD EPYC"):
            device = device.replace("AMD EPYC", "AMD EPYC (model not recorded)", 1)
        where = f"{device}, {run.get('precision') or r.get('precision') or 'fp32'}"
        if where not in seen:
            seen.append(where)
    return "; ".join(seen)


def best_recipes_table(recipes: list[dict], per_track: int = 2) -> str:
    """The recipes with the best held-out accuracy (what recipes are chosen on), per track, those
    measured on three seeds or more first."""
    if not recipes:
        return ""
    lines = ["| recipe | model | held-out accuracy | dev accuracy | CPU minutes a seed | CPU, precision | seeds |",
             "|---|---|---|---|---|---|---|"]
    for track, what in (("A", "the course's (4 layers, 8 heads, 256-d)"), ("B", "any (here: word keys)")):
        mine = [r for r in recipes if r["track"] == track]
        # three seeds before one: a single seed's lead is within the seed spread of most recipes
        rs = sorted(mine, key=lambda r: (len(r["seeds"]) < 3, -r["heldout"]["mean"]))[:per_track]
        # and the fastest that three seeds put at 80% of the held-out people or more
        fast = sorted((r for r in mine if len(r["seeds"]) >= 3 and r["heldout"]["mean"] >= 80.0),
                      key=lambda r: r["minutes"]["mean"])[:1]
        for r in rs + [f for f in fast if f not in rs]:
            n = len(r["seeds"])
            spread = (lambda x: f"{x['mean']:.1f}% ± {x['std']:.1f}") if n > 1 else (lambda x: f"{x['mean']:.1f}%")
            why = " (the fastest at ≥ 80% held-out)" if r in fast and r not in rs else ""
            lines.append(f"| `{r['recipe']}`{why} | {what} | {spread(r['heldout'])} | {spread(r['dev'])} | "
                         f"{r['minutes']['mean']:.1f} | {recipe_machines(r)} | {n}{' (partial)' if r.get('partial') else ''} |")
    return "\n".join(lines) + "\n"


def abstention_table(a: dict) -> str:
    """`factgpt abstention`'s rule and what it does on dev and on fresh made-up names."""
    rep, rule = a["report"], a["rule"]
    at = rep["at_rule"]
    when = " and ".join(f"`{k}` ≥ {t:.4g}" for k, t in rule["thresholds"].items())
    head = (f"Model `{a['recipe']}` seed {a['seed']} · rule: answer when {when} (chosen on {a['selection']['n_real']} "
            f"held-out people and {a['selection']['n_made_up']} made-up names) · {a['device']} · commit "
            f"`{short_commit(a['commit'])}`")
    if d := a.get("answers_decoded_by"):  # chosen again from kept answers: say where those were decoded
        head += (f" · chosen again from the answers decoded by `{d['command']}` ({d['device']}, commit "
                 f"`{short_commit(d['commit'])}`)")
    lines = [head, "",
             "| | dev questions answered | answered correctly | answered wrongly | made-up names refused |", "|---|---|---|---|---|",
             f"| with the rule | {at['answered']:.1%} | {at['correct']:.1%} | {at['wrong']:.1%} | "
             f"{at['made_up_refused']:.1%} ({rep['n_made_up']} names) |",
             f"| always answering | 100.0% | {rep['without_abstention']['correct']:.1%} | "
             f"{1 - rep['without_abstention']['correct']:.1%} | 0.0% |"]
    return "\n".join(lines) + "\n"


def abstention_scores_table(a: dict) -> str:
    """How well each score of `factgpt abstention` tells real from made-up names and right from wrong answers."""
    rep, rule = a["report"], a["rule"]
    lines = ["| score | AUROC real vs made-up names | AUROC right vs wrong answers |", "|---|---|---|"]
    for k, v in rep["aurocs"].items():
        mark = " (the rule's line score)" if k == rule["line_score"] else ""
        mark += " (the rule's answer score; `ask`'s confidence when it answers)" if k == rule["answer_score"] else ""
        lines.append(f"| `{k}`{mark} | {v['real_vs_made_up']:.3f} | {v['right_vs_wrong']:.3f} |")
    curve = rep["risk_coverage"]
    lines += ["", f"Risk–coverage on dev, answering by `{curve['score']}` from the most confident: "
                  f"area {curve['area']:.2%} (the mean share of wrong answers over all coverages). "
                  f"With at most 3% of dev answered wrongly, no cut of this ranking answers more than "
                  f"{most_correct_within(curve, 0.03):.1%} of dev correctly, not even a cut chosen on dev itself."]
    return "\n".join(lines) + "\n"


def abstention_candidates_table(found: list[tuple[str, dict]]) -> str:
    """Each model's rule as `factgpt abstention` chose it, side by side: what it does on the held-out
    people and made-up names it was chosen on (what decides which model is shipped), then on dev."""
    if not found:
        return ""
    lines = ["| model (results) | held-out answered right / wrong | made-up refused (chosen on) "
             "| AUROC right vs wrong, held-out | held-out wrong answers with `line_mean_x_span` > 0.9 "
             "| dev answered right / wrong | made-up refused (fresh) |",
             "|---|---|---|---|---|---|---|"]
    def sure(part: dict) -> str:  # recorded since the column was added; older files: "not recorded"
        c = part.get("confident_wrong")
        if c is None:
            return "not recorded"
        assert c["confidence_above"] == 0.9, "the column's heading names 0.9"
        return f"{c['confident']} of {c['wrong']}"

    for where, a in found:
        sel, rep = a["selection"], a["report"]
        score = a["rule"]["answer_score"]
        shipped = ", shipped" if "(shipped)" in a.get("model", "") else ""  # run on the package's model
        lines.append(f"| `{a['recipe']}` seed {a['seed']}{shipped} (`{where}`) | {sel['at_rule']['correct']:.1%} / "
                     f"{sel['at_rule']['wrong']:.1%} | {sel['at_rule']['made_up_refused']:.1%} | "
                     f"{sel['aurocs'][score]['right_vs_wrong']:.3f} (`{score}`) | {sure(sel)} | "
                     f"{rep['at_rule']['correct']:.1%} / "
                     f"{rep['at_rule']['wrong']:.1%} | {rep['at_rule']['made_up_refused']:.1%} |")
    return "\n".join(lines) + "\n"


def most_correct_within(curve: dict, max_wrong: float) -> float:
    """Of a risk–coverage curve (answering the most confident first): the largest share of all
    questions answered correctly by a cut that answers at most max_wrong of all questions wrongly
    (0 where even the most confident answer is wrong and that exceeds max_wrong)."""
    best = 0.0
    for cov, risk in zip(curve["coverage"], curve["risk"]):
        if cov * risk <= max_wrong + 1e-9:
            best = max(best, cov * (1 - risk))
    return best


def curve_table(record: dict) -> str:
    """One curve (`factgpt curve`): a row per probe."""
    p = record["profile"]
    if record["pretrain_done"]:
        state = "done"
    else:
        last = record["probes"][-1]["epoch"] if record["probes"] else 0
        state = f"stopped after epoch {last} of {p['pretrain']['max_epochs']}"
    head = (f"Profile `{p['name']}` · {record['variant']} · seed {record['seed']} · {record['device']} · "
            f"torch {record['torch']} · commit `{short_commit(record['commit'])}` · {state}")
    lines = [head, "", "| epoch | pretraining minutes | pretraining loss | held-out accuracy (finetuned copy) | "
                       "line recall, pretrained | line recall, finetuned |", "|---|---|---|---|---|---|"]
    for x in record["probes"]:
        lr, lf = x["line_recall_pretrained"], x["line_recall_finetuned"]
        lines.append(f"| {x['epoch']} | {x['pretrain_minutes']:.1f} | {x['pretrain_loss']:.3f} | "
                     f"{x['heldout_accuracy']:.1f}% ({x['heldout_correct']}/{x['heldout_total']}) | "
                     f"{lr['accuracy']:.1f}% ({lr['correct']}/{lr['total']}) | "
                     f"{lf['accuracy']:.1f}% ({lf['correct']}/{lf['total']}) |")
    return "\n".join(lines) + "\n"


def sweep_table(record: dict) -> str:
    """One finetuning sweep (`bench/finetune_sweep.py`): a row per finetuning setting of the same pretrained weights.

    A sweep over several finetuning seeds gives each setting's mean ± std and the per-seed counts;
    an older one-seed sweep (no "runs") a row per finetuning.
    """
    at = f" (epoch {record['pretrained_epoch']})" if record.get("pretrained_epoch") is not None else ""
    lr0 = record["line_recall_pretrained"]
    seeds = record.get("seeds", [record.get("seed", 0)])
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else "finetuning seeds " + ", ".join(map(str, seeds))
    head = (f"Profile `{record['profile']['name']}`{at} · {record['variant']} · {seed_text} · "
            f"{record['device']} · torch {record['torch']} · commit `{short_commit(record['commit'])}` · "
            f"line recall before finetuning {lr0['accuracy']:.1f}% ({lr0['correct']}/{lr0['total']})")
    if all("runs" not in x for x in record["settings"]):
        lines = [head, "", "| finetuning epochs | learning rate | batch | final finetuning loss | held-out accuracy | "
                           "line recall, finetuned |", "|---|---|---|---|---|---|"]
        for x in record["settings"]:
            lf = x["line_recall_finetuned"]
            batch = x.get("batch_size") or record["profile"]["finetune_pretrained"]["batch_size"]
            lines.append(f"| {x['epochs']} | {x['learning_rate']:g} | {batch} | {x['finetune_loss']:.3f} | "
                         f"{x['heldout_accuracy']:.1f}% ({x['heldout_correct']}/{x['heldout_total']}) | "
                         f"{lf['accuracy']:.1f}% ({lf['correct']}/{lf['total']}) |")
        return "\n".join(lines) + "\n"
    lines = [head, "", "| finetuning epochs | learning rate | batch | seeds | held-out accuracy (mean ± std) | "
                       "held-out correct per seed | line recall, finetuned (mean) | final finetuning loss (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for x in record["settings"]:
        runs = x["runs"]
        if not runs:
            continue
        acc = mean_std([r["heldout_accuracy"] for r in runs])
        kept = statistics.fmean(r["line_recall_finetuned"]["accuracy"] for r in runs)
        loss = statistics.fmean(r["finetune_loss"] for r in runs)
        counts = ", ".join(f"{r['heldout_correct']}" for r in runs) + f" of {runs[0]['heldout_total']}"
        lines.append(f"| {x['epochs']} | {x['learning_rate']:g} | {x['batch_size']} | {len(runs)} | "
                     f"{acc['mean']:.1f}% ± {acc['std']:.1f} | {counts} | {kept:.1f}% | {loss:.3f} |")
    return "\n".join(lines) + "\n"


def analysis_table(a: dict) -> str:
    """The part-3 summary: each analysed model in a row (results/analysis/analysis.json)."""
    lines = ["| model | dev accuracy | AUROC right / wrong | AUROC real / made-up | most frequent answer for made-up names "
             "| made-up names: nearest person's birthplace, by spelling (chance) | by the model's reading (chance) |",
             "|---|---|---|---|---|---|---|"]

    def pc(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}%"

    def au(x: float | None) -> str:
        return "–" if x is None else f"{x:.2f}"

    for row, m in a["models"].items():
        c, u, h = a["confidence"][row], a["unseen"]["rows"][row], a["hypothesis_c"]["rows"][row]
        top = u["top_answers"][0] if u.get("top_answers") else {"answer": "", "share": None}
        refused = f"; refuses {pc(u['refused'])}" if "refused" in u else ""
        near = [f"{pc(h[k]['observed'])} ({pc(h[k]['chance'])}, p = {h[k]['p_value']:.2g})"
                for k in ("spelling", "model_state")]
        lines.append(f"| {m['title']} | {pc(c['accuracy'])} | {au(c['answer']['auroc'])} | "
                     f"{au(u['auroc_dev_vs_unseen']['answer'])} | {top['answer'] or '(empty)'} "
                     f"({pc(top['share'])}){refused} | {near[0]} | {near[1]} |")
    for x in a.get("missing", []):
        lines.append(f"| {x['title']} | not analysed: {x['why']} | | | | | |")
    return "\n".join(lines) + "\n"


def serve_table(r: dict[str, Any]) -> str:
    """bench/serve_load.py's record against the targets of a 2-core CPU."""
    w, ld, b, m = r["warm_single"], r["load"], r["burst"], r["memory_mb"]
    codes = lambda d: ", ".join(f"{n} × {c}" for c, n in d.items())  # noqa: E731
    threads = f" · the server on {r['server_torch_threads']} torch threads" if "server_torch_threads" in r else ""
    batches = (f"; {ld['batches']} batches of {ld['questions_per_batch']:.1f} questions on average"
               if "batches" in ld else "")
    rounds = (f" (median of {ld['rounds']} rounds: "
              + ", ".join(f"{x['questions_per_second']:.1f}" for x in ld["per_round"]) + ")"
              if ld.get("per_round") else "")
    return "\n".join([
        f"{r['device']}{threads} · torch {r['torch']} · commit `{short_commit(r['commit'])}` · `{r['command'].strip()}`",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| warm single question, p50 / p99 | {w['p50_ms']:.0f} / {w['p99_ms']:.0f} ms ({w['requests']} requests) | p50 ≤ 100 ms |",
        f"| {ld['clients']} clients, {ld['questions']} questions ({ld['dev']} dev, {ld['made_up']} made-up) a round "
        f"| {ld['questions_per_second']:.1f} questions/s{rounds}; p50 {ld['p50_ms'] / 1000:.2f} s, p99 {ld['p99_ms'] / 1000:.2f} s{batches} "
        f"| ≥ 50/s, p99 ≤ 2 s |",
        f"| errors under load | {ld['errors']} ({codes(ld['status'])}) | 0 |",
        f"| burst of {b['requests']} requests, queue bound {b['queue_bound']} | {codes(b['status'])}; the 503s within "
        f"{b['p99_ms_of_503']:.0f} ms (p99) | 503 at once |",
        (f"| server memory before / after the load, each after a lone question | {m['before_load']:.0f} / "
         f"{m['after_load']:.0f} MB ({100 * m['change_after_load']:+.1f}%); right after the last batch "
         f"{m['right_after_load']:.0f} MB ({100 * m['change_right_after_load']:+.1f}%) | within 10% |"
         if "right_after_load" in m else
         f"| server memory before / after the load | {m['before_load']:.0f} / {m['after_load']:.0f} MB "
         f"({100 * m['change_after_load']:+.1f}%) | within 10% |"),
        f"| answers unlike `factgpt ask --json`'s | {r['answers_that_differ']} of {r['answers_checked_against_ask_json']} "
        f"(scores within {r['max_score_difference']:.0e}) | 0 |",
    ]) + "\n"


def speculative_table(r: dict[str, Any]) -> str:
    """bench/speculative.py's record: lone questions and load-like batches with and without guesses."""
    rows = ["| questions | with guesses | without | passes with guesses | steps without |", "|---|---|---|---|---|"]
    for kind, name in (("dev", "a lone dev question"), ("made_up", "a lone made-up name")):
        k = r[kind]
        rows.append(f"| {name} ({k['questions']}, the line to its end) | {k['speculative_ms']:.0f} ms | "
                    f"{k['plain_ms']:.0f} ms | {k['passes_per_question']:.1f} | {k['steps_per_question']:.1f} |")
    if "batch" in r:
        b = r["batch"]
        rows.append(f"| a batch of {b['questions_per_batch']} as `serve` decodes it ({b['batches']} batches) | "
                    f"{b['speculative_ms']:.0f} ms | {b['plain_ms']:.0f} ms | {b['passes_per_batch']:.1f} | – |")
    return "\n".join([
        f"{r['device']} · torch {r['torch']} · commit `{short_commit(r['commit'])}` · `{r['command'].strip()}` · "
        f"median milliseconds; {r['answers_the_same']} of {r['answers_compared']} answers and recitations the same",
        "", *rows]) + "\n"


def frontier_table(record: dict[str, Any], search: str = "focused") -> str:
    """The candidates of one round of the search frontier (bench/frontier.py), a row a probe: search is
    "small" (rounds 1-2), "focused" (round 3, lines without dates), "batch" (round 4, small batches) or
    "keys" (round 5, word keys)."""
    rows = [r for r in record["rows"] if r.get("search", "focused" if r.get("drop_dates") else "small") == search]
    if not rows:
        return ""
    lines = ["| candidate | epoch | fp32 CPU minutes | pretraining loss | line recall | held-out accuracy |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        variant = "" if r.get("variant", "vanilla") == "vanilla" else f"{r['variant']}, "
        what = (f"`{r['name']}` ({variant}{r['size']}, batch {r['batch_size']}, lr {r['learning_rate']:g}, "
                f"seed {r['seed']})")
        for p in r["probes"]:
            mins = "–" if p["cpu_fp32_minutes"] is None else f"{p['cpu_fp32_minutes']:.1f}"
            lines.append(f"| {what} | {p['epoch']} | {mins} | {p['pretrain_loss']:.3f} | {p['line_recall']:.1f}% | "
                         f"{p['heldout_accuracy']:.1f}% ({p['heldout_correct']}/{p['heldout_total']}) |")
    return "\n".join(lines) + "\n"


def _fill(text: str, marker: str, body: str) -> str:
    """Replace what stands between `<!-- marker -->` and `<!-- /marker -->` (if both are there and body is not empty)."""
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    if not body or start not in text or end not in text:
        return text
    a, rest = text.split(start, 1)
    _, b = rest.split(end, 1)
    return f"{a}{start}\n{body}{end}{b}"


def search_table(folder: Path) -> str:
    """The held-out search (bench/laptop_search.py's files, and those of the retired laptop_probe) as a Markdown table."""
    rows = []
    for f in sorted(folder.glob("*.json")):
        try:
            r = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f, f"cannot read search results: {e}") from None
        if "probes" in r:  # held-out accuracy along one longer pretraining
            s = r["settings"]
            what = (f"lines ≤ {s['max_chars']} chars, batch {s['batch_size']}, lr {s['learning_rate']:g}, "
                    f"dropout {s['dropout']:g}, cosine over {s['epochs']} epochs")
            for p in r["probes"]:
                rows.append((f"`{r['name']}` after {p['epoch']} epochs", what, p["pretrain_minutes"],
                             p["pretrain_loss"], p["heldout_correct"], r["heldout"]))
        else:
            pre = r["profile"]["pretrain"]
            what = (f"lines ≤ {r['profile'].get('data', {}).get('max_chars')} chars, batch {pre['batch_size']}, "
                    f"lr {pre['learning_rate']:g}, {pre['max_epochs']} epochs")
            loss = r.get("pretrain_loss")
            rows.append((f"`{r['name']}`", what, (r["pretrain_seconds"] or 0) / 60, loss, r["heldout_correct"],
                         r["heldout"]))
    if not rows:
        return ""
    lines = ["| run | pretraining | pretrain minutes | pretrain loss | held-out accuracy |", "|---|---|---|---|---|"]
    for name, what, mins, loss, correct, total in rows:
        loss_s = "–" if loss is None else f"{loss:.2f}"
        lines.append(f"| {name} | {what} | {mins:.1f} | {loss_s} | {100.0 * correct / total:.1f}% ({correct}/{total}) |")
    return "\n".join(lines) + "\n"


def write_recipe_table(out: Path) -> str:
    """results/recipes/table.md and accuracy_vs_time.png from every recipe's results.json."""
    found = recipe_results(out)
    found.sort(key=lambda r: (r["track"], -r["heldout"]["mean"]))
    lines = ["| recipe | track | held-out accuracy | dev accuracy (mean ± std) | dev, free / span answer "
             "| held-out line recall | CPU minutes | CPU, precision | parameters | seeds |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def ms(x: dict[str, float], n: int) -> str:
        return f"{x['mean']:.1f}% ± {x['std']:.1f}" if n > 1 else f"{x['mean']:.1f}% (1 seed)"

    for r in found:
        n = len(r["seeds"])
        recall = [x["heldout_line_recall"]["accuracy"] for x in r["runs"] if "heldout_line_recall" in x]
        shown = f"{statistics.fmean(recall):.1f}%" if recall else "–"
        dec = [x["dev"]["decodings"] for x in r["runs"] if "decodings" in x["dev"]]
        both = (f"{statistics.fmean(d['free'] for d in dec):.1f} / {statistics.fmean(d['span'] for d in dec):.1f}"
                if len(dec) == n else "–")
        lines.append(f"| `{r['recipe']}` — {r['description']} | {r['track']} | {ms(r['heldout'], n)} | "
                     f"{ms(r['dev'], n)} | {both} | {shown} | {r['minutes']['mean']:.1f} | {recipe_machines(r)} | "
                     f"{r['parameters']:,} | "
                     f"{n}{' (partial)' if r.get('partial') else ''} |")
    table = "\n".join(lines) + "\n"
    write_text_atomic(out / "table.md", table)
    if found:
        recipe_plot(out / "accuracy_vs_time.png", found)
    return table
