"""The README's benchmark block is what tools/readme_figures.py renders from the pages in bench/."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("readme_figures", REPO / "tools" / "readme_figures.py")
figures = importlib.util.module_from_spec(_spec)
sys.modules["readme_figures"] = figures  # dataclasses look their module up there
_spec.loader.exec_module(figures)

PAGE = """# Some benchmark

- CPU: Test CPU, 4 cores, 8 GiB memory
- Python 3.11, torch 2.14.1, fastlearn at commit 1a2b3c4
- load average (1, 5, 15 min) at start (0.5, 0.4, 0.3), at end (1.25, 1.0, 0.9)
- 2026-01-02 03:04

## Results

| workload | fastlearn | fastlearn ÷ plain | load |
| --- | ---: | ---: | ---: |
| fit: s/epoch | 3.9 | 1.02 | 0.50 |
| fit: accuracy | 0.78 |  | 0.50 |
| predict: images/s | 120 | 0.98 | 0.60 |

| workload | other table |
| --- | --- |
| not read | 9 |

## Every run

| run | fastlearn |
| --- | --- |
| fit: s/epoch | 3.9, 4.0 |
"""


def test_readme_block_matches_the_committed_pages():
    readme = (REPO / "README.md").read_text()
    expected = figures.replace_block(readme, figures.render(REPO))
    assert readme == expected, "README.md's benchmark figures are stale: run `make readme-figures`"
    assert figures.BEGIN in readme and figures.END in readme


def test_read_page_values_commit_and_load(tmp_path):
    path = tmp_path / "PAGE.md"
    path.write_text(PAGE)
    page = figures.read_page(path)
    assert (page.commit, page.date, page.cores, page.load) == ("1a2b3c4", "2026-01-02 03:04", "4",
                                                               "0.5 at start, 1.25 at end")
    assert page.tables["## Results"] == [
        ["workload", "fastlearn", "fastlearn ÷ plain", "load"],
        ["fit: s/epoch", "3.9", "1.02", "0.50"],
        ["fit: accuracy", "0.78", "", "0.50"],
        ["predict: images/s", "120", "0.98", "0.60"]]  # the second table under the heading is not read
    assert page.tables["## Every run"] == [["run", "fastlearn"], ["fit: s/epoch", "3.9, 4.0"]]


def test_uncommitted_changes_and_merged_commits_are_kept(tmp_path):
    path = tmp_path / "PAGE.md"
    path.write_text(PAGE.replace("at commit 1a2b3c4", "at commit 1a2b3c4, 5d6e7f8 + uncommitted changes"))
    assert figures.read_page(path).commit == "1a2b3c4, 5d6e7f8 + uncommitted changes"
    path.write_text(PAGE + "\nat commit 1a2b3c4 (with uncommitted changes)\n")
    assert figures.read_page(path).commit == "1a2b3c4 (with uncommitted changes)"


def test_missing_page_names_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"RESULTS\.md does not exist; run `make bench` to write it"):
        figures.read_page(tmp_path / "RESULTS.md", "make bench")


def test_page_without_a_commit_is_refused(tmp_path):
    path = tmp_path / "PAGE.md"
    path.write_text(PAGE.replace("at commit 1a2b3c4", ""))
    with pytest.raises(ValueError, match=r"PAGE\.md names no commit .*regenerate it with `make bench`"):
        figures.read_page(path, "make bench")


def test_summary_quotes_the_chosen_columns_with_provenance(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "P.md").write_text(PAGE)
    summary = figures.Summary("bench/P.md", "Speed", "make p", "## Results", ("fastlearn ÷ plain", "load"))
    lines = figures.summary_lines(summary, tmp_path)
    assert lines[0] == ("**Speed** ([bench/P.md](bench/P.md), `make p`; fastlearn at commit 1a2b3c4, "
                        "2026-01-02 03:04, 4 cores, 1-minute load 0.5 at start, 1.25 at end):")
    assert lines[2:] == ["| workload | fastlearn ÷ plain | load |", "| --- | --- | --- |",
                         "| fit: s/epoch | 1.02 | 0.50 |", "| predict: images/s | 0.98 | 0.60 |", ""]


def test_summary_of_a_missing_optional_page_says_how_to_measure(tmp_path):
    summary = figures.Summary("bench/T.md", "Text", "make bench-text", "## Medians", ("x",), required=False)
    assert figures.summary_lines(summary, tmp_path)[0] == (
        "**Text**: not measured yet; `make bench-text` writes [bench/T.md](bench/T.md).")
    required = figures.Summary("bench/T.md", "Text", "make bench-text", "## Medians", ("x",))
    with pytest.raises(FileNotFoundError, match="run `make bench-text`"):
        figures.summary_lines(required, tmp_path)


def test_summary_names_a_missing_column(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "P.md").write_text(PAGE)
    summary = figures.Summary("bench/P.md", "Speed", "make p", "## Results", ("fastlearn ÷ fastai",))
    with pytest.raises(ValueError, match=r"no column \['fastlearn ÷ fastai'\] \(it has \['workload'"):
        figures.summary_lines(summary, tmp_path)
    other = figures.Summary("bench/P.md", "Speed", "make p", "## Medians", ("load",))
    with pytest.raises(ValueError, match="has no table under '## Medians'"):
        figures.summary_lines(other, tmp_path)


def test_replace_block_keeps_the_rest_and_needs_both_markers():
    readme = f"# Title\n\n{figures.BEGIN}\nold figure 1.5\n{figures.END}\n\n## After\n"
    assert figures.replace_block(readme, "NEW") == "# Title\n\nNEW\n\n## After\n"
    with pytest.raises(ValueError, match="README.md has no '<!-- figures:begin"):
        figures.replace_block("# Title\n", "NEW")


def test_docstring_example_runs():
    import doctest
    failed, attempted = doctest.testmod(figures, optionflags=doctest.ELLIPSIS)
    assert attempted > 0 and failed == 0
