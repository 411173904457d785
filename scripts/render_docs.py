"""Fill the tables of README.md and docs/*.md from the committed results, and say which files fed them.

    python scripts/render_docs.py README.md docs/*.md

The package makes each table from a results file (factgpt/tables.py); this script
is the repository's map of which file feeds which `<!-- NAME -->` marker:

  table:NAME            results/NAME/results.json (a study; the folder names the run)
  recipes, recipes:best every results/recipes/*/results.json (and results/recipes/table.md, its figure)
  search:course_keyed   results/course_keyed/search/*.json
  curve:NAME            results/course_keyed/curve/NAME/curve.json (and its curve.png)
  sweep:NAME            results/course_keyed/finetune_sweep/NAME.json, results/search-keys/finetune_sweep/NAME.json
  abstention, abstention:scores   results/abstention/abstention.json
  abstention:candidates results/abstention/abstention.json and results/abstention/*/abstention.json
  analysis              results/analysis/analysis.json
  serve                 results/serve/load.json
  speculative           results/bench/speculative.json
  frontier:focused      results/search-small/frontier.json (its candidates on lines without dates)
  frontier:batch        results/search-small/frontier.json (its small-batch candidates)
  frontier:keys         results/search-small/frontier.json (its word-key candidates)
  bench                 results/bench/*.md

It writes results/index.json: the command, the pages and every file rendered from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from factgpt.errors import InputError
from factgpt.fileio import write_text_atomic
from factgpt.plots import curve_plot
from factgpt.results import is_study, read_results
from factgpt.tables import (recipe_results, abstention_candidates_table, abstention_scores_table, abstention_table,
                            analysis_table, best_recipes_table, curve_table, fill_markers, frontier_table, markdown_table, search_table,
                            serve_table, speculative_table, sweep_table, write_recipe_table)


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def blocks_and_sources(results: Path) -> tuple[dict[str, str], list[Path]]:
    """Every marker's body, and the files they were made from."""
    blocks: dict[str, str] = {}
    sources: list[Path] = []
    for f in sorted(results.glob("*/results.json")):
        try:
            res = read_results(f)
        except InputError:
            continue  # another command's results (e.g. results/explore)
        if is_study(res):
            # keyed by the folder, not the recorded profile: results/quick/ ran when that profile was named laptop
            blocks[f"table:{f.parent.name}"] = markdown_table(res)
            sources.append(f)
    search = results / "course_keyed" / "search"
    blocks["search:course_keyed"] = search_table(search)
    sources += sorted(search.glob("*.json"))
    recipes = results / "recipes"
    blocks["recipes"] = write_recipe_table(recipes) if recipes.is_dir() else ""  # and its figure
    blocks["recipes:best"] = best_recipes_table(recipe_results(recipes) if recipes.is_dir() else [])
    sources += sorted(recipes.glob("*/results.json"))
    abstention = results / "abstention" / "abstention.json"
    if abstention.is_file():
        a = _json(abstention)
        blocks["abstention"], blocks["abstention:scores"] = abstention_table(a), abstention_scores_table(a)
        sources.append(abstention)
    # the shipped model's rule first, then every candidate's (results/abstention/RECIPE/abstention.json)
    candidates = [f for f in [abstention, *sorted((results / "abstention").glob("*/abstention.json"))] if f.is_file()]
    blocks["abstention:candidates"] = abstention_candidates_table([(f.as_posix(), _json(f)) for f in candidates])
    sources += candidates[1:]
    bench = sorted((results / "bench").glob("*.md"))
    blocks["bench"] = "\n".join(f"`{p.as_posix()}`:\n\n{p.read_text(encoding='utf-8')}" for p in bench)
    sources += bench
    for c in sorted((results / "course_keyed" / "curve").glob("*/curve.json")):
        record = _json(c)
        blocks[f"curve:{c.parent.name}"] = curve_table(record)
        curve_plot(c.parent / "curve.png", record)  # the figure too, from the same file
        sources.append(c)
    sweeps = [*(results / "course_keyed" / "finetune_sweep").glob("*.json"),
              *(results / "search-keys" / "finetune_sweep").glob("*.json")]
    for w in sorted(sweeps):
        blocks[f"sweep:{w.stem}"] = sweep_table(_json(w))
        sources.append(w)
    serve = results / "serve" / "load.json"
    if serve.is_file():
        blocks["serve"] = serve_table(_json(serve))
        sources.append(serve)
    speculative = results / "bench" / "speculative.json"
    if speculative.is_file():
        blocks["speculative"] = speculative_table(_json(speculative))
        sources.append(speculative)
    frontier = results / "search-small" / "frontier.json"
    if frontier.is_file():
        blocks["frontier:focused"] = frontier_table(_json(frontier), "focused")
        blocks["frontier:batch"] = frontier_table(_json(frontier), "batch")
        blocks["frontier:keys"] = frontier_table(_json(frontier), "keys")
        sources.append(frontier)
    analysis = results / "analysis" / "analysis.json"
    if analysis.is_file():
        a = _json(analysis)
        if a.get("hypothesis_c"):
            blocks["analysis"] = analysis_table(a)
            sources.append(analysis)
    return blocks, sources


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pages", nargs="+", help="Markdown pages with table markers (README.md docs/*.md)")
    ap.add_argument("--results", default="results", help="the results folder (default: results)")
    args = ap.parse_args(argv)
    results = Path(args.results)
    if not list(results.glob("*/results.json")):
        raise InputError(results, "no */results.json here to render")
    blocks, sources = blocks_and_sources(results)
    for page in args.pages:
        text = Path(page).read_text(encoding="utf-8")
        write_text_atomic(page, fill_markers(text, blocks))
    index = {"command": f"python scripts/render_docs.py {' '.join(args.pages)}", "pages": list(args.pages),
             "sources": sorted({p.as_posix() for p in sources})}
    write_text_atomic(results / "index.json", json.dumps(index, indent=2) + "\n")
    print(f"updated {', '.join(args.pages)} from {len(index['sources'])} results files (listed in "
          f"{results / 'index.json'})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except InputError as e:
        print(e, file=sys.stderr)
        sys.exit(2)
