"""scripts/render_docs.py: the pages' tables filled from results/, and the files they came from."""

import importlib.util
import re
import json
from pathlib import Path

import pytest

from test_merge import _fake_results

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("render_docs", ROOT / "scripts" / "render_docs.py")
render_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_docs)


def test_study_tables_are_named_by_their_folder_not_their_recorded_profile(tmp_path, monkeypatch):
    for folder, bump in (("quick", 0), ("laptop", 50)):  # quick was run before its profile was renamed
        f = _fake_results(tmp_path / "results" / folder, "laptop", [0], bump=bump)
        res = json.loads(f.read_text())
        for row in res["rows"].values():
            row.update(mean=row["runs"][0]["accuracy"], std=0.0)
        f.write_text(json.dumps(res))
    page = tmp_path / "page.md"
    page.write_text("<!-- table:quick -->\n<!-- /table:quick -->\n<!-- table:laptop -->\n<!-- /table:laptop -->\n")
    monkeypatch.chdir(tmp_path)
    assert render_docs.main(["page.md"]) == 0
    quick, laptop = page.read_text().split("<!-- table:laptop -->")
    assert "| 20.0% " in quick and "| 30.0% " not in quick
    assert "| 30.0% " in laptop and "| 20.0% " not in laptop


@pytest.mark.golden
def test_readme_tables_are_rendered_from_the_committed_results(tmp_path, monkeypatch):
    """Every table in the README and the docs pages is what scripts/render_docs.py makes of results/ as committed."""
    import shutil

    root = Path(__file__).resolve().parent.parent
    patterns = ["results/*/results.json", "results/index.json", "results/recipes/*/results.json", "results/course_keyed/search/*.json",
                "results/bench/*.md", "results/abstention/abstention.json", "results/abstention/*/abstention.json",
                "results/course_keyed/curve/*/curve.json",
                "results/course_keyed/finetune_sweep/*.json", "results/search-keys/finetune_sweep/*.json", "results/analysis/analysis.json", "results/serve/load.json", "results/bench/speculative.json",
                "results/search-small/frontier.json"]
    for pat in patterns:
        for f in root.glob(pat):
            dst = tmp_path / f.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, dst)
    pages = ["README.md", *sorted(p.relative_to(root).as_posix() for p in (root / "docs").glob("*.md"))]
    assert len(pages) > 5
    (tmp_path / "docs").mkdir()
    for page in pages:
        shutil.copy(root / page, tmp_path / page)
    monkeypatch.chdir(tmp_path)
    assert render_docs.main(pages) == 0
    for page in pages:
        assert (tmp_path / page).read_text() == (root / page).read_text(), \
            f"{page}: tables differ from results/: run `python scripts/render_docs.py README.md docs/*.md`"
    assert (tmp_path / "results" / "recipes" / "table.md").read_text() == \
        (root / "results" / "recipes" / "table.md").read_text()
    index = json.loads((tmp_path / "results" / "index.json").read_text())
    assert index == json.loads((root / "results" / "index.json").read_text())
    assert "results/course/results.json" in index["sources"]
    assert any(x.startswith("results/recipes/") for x in index["sources"])
    assert "results/analysis/analysis.json" in index["sources"]
    assert any(x.startswith("results/course_keyed/curve/") for x in index["sources"])
    assert any(x.startswith("results/course_keyed/finetune_sweep/") for x in index["sources"])
    # every marker of every page was filled (a marker without its results renders empty)
    for page in pages:
        text = (root / page).read_text()
        for marker in re.findall(r"<!-- ([a-z]+(?::[a-z0-9_]+)?) -->", text):
            body = text.split(f"<!-- {marker} -->", 1)[1].split(f"<!-- /{marker} -->", 1)[0]
            assert body.strip(), f"{page}: <!-- {marker} --> is empty"
