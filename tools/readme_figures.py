"""Write the README's benchmark figures from the pages under ``bench/``.

The block between ``<!-- figures:begin -->`` and ``<!-- figures:end -->`` in README.md is rendered
from the generated pages (``bench/RESULTS.md``, ``bench/TRANSFER.md``, ``bench/TEXT_SPEED.md``) and
the hand-kept ``bench/PRINTED.md``; each table names the page, the commit, the date, the cores and
the load it was measured at. ``make bench``, ``make bench-transfer`` and ``make bench-text`` run it
after writing their page; ``make readme-figures`` runs it alone.

    python tools/readme_figures.py            # rewrite the block in README.md
    python tools/readme_figures.py --check    # exit 1 if the block differs from the pages
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEGIN = "<!-- figures:begin: written by `make readme-figures` from the pages in bench/; edit those -->"
END = "<!-- figures:end -->"


@dataclass(frozen=True)
class Summary:
    """What the README quotes from one page: the first column of the table under ``heading`` and ``columns``.

    A row is quoted where the first of ``columns`` holds a figure. A hand-kept page names its machine
    per row, so only its commit is quoted."""
    page: str
    title: str
    make: str
    heading: str
    columns: tuple[str, ...]
    required: bool = True
    hand_kept: bool = False


SUMMARIES = (
    Summary("bench/RESULTS.md", "Against fastai and a plain PyTorch loop", "make bench-env && make bench",
            "## Results", ("fastlearn ÷ plain", "fastlearn ÷ fastai", "load")),
    Summary("bench/TRANSFER.md", "Transfer learning", "make bench-transfer", "## Results",
            ("metric", "one-liner", "plain fine-tune", "linear probe")),
    Summary("bench/TEXT.md", "Text classification", "make bench-text-transfer",
            "# Text classification: a pretrained transformer, ULMFiT from scratch, TF-IDF",
            ("test accuracy", "time per epoch (s)", "commit")),
    Summary("bench/TEXT_SPEED.md", "Text (AWD-LSTM)", "make bench-text", "## Medians",
            ("fastlearn ÷ plain", "fastlearn bf16 ÷ plain bf16", "fastai ÷ fastlearn"), required=False),
    Summary("bench/PRINTED.md", "Scripts that print their figures", "make readme-figures", "## Results",
            ("workload", "machine", "result"), hand_kept=True),
)


@dataclass
class Page:
    """A parsed page: where it came from, and its tables keyed by the ``##`` heading above them."""
    path: Path
    commit: str
    date: str
    cores: str
    load: str
    tables: dict[str, list[list[str]]]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def read_page(path: Path, make: str = "its make target") -> Page:
    """Parse a benchmark page: its commit, date, cores and load, and the first table under each heading.

    >>> import tempfile
    >>> page = Path(tempfile.mkdtemp()) / "P.md"
    >>> _ = page.write_text("- fastlearn at commit abc1234\\n- 2 cores\\n- load average (1 min) at start 1.5, "
    ...                     "at end 2\\n- 2026-01-02 03:04\\n\\n## Results\\n\\n| w | x |\\n| --- | ---: |\\n| a | 1.0 |\\n")
    >>> p = read_page(page)
    >>> p.commit, p.cores, p.load, p.tables["## Results"]
    ('abc1234', '2', '1.5 at start, 2 at end', [['w', 'x'], ['a', '1.0']])
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; run `{make}` to write it")
    text = path.read_text()
    found = re.search(r"at commit ([0-9a-f]{7,40}(?:(?: \+ uncommitted changes)?, [0-9a-f]{7,40})*"
                      r"(?: \+ uncommitted changes)?)", text)
    if not found:
        raise ValueError(f"{path} names no commit (no 'at commit ...' line); regenerate it with `{make}`")
    commit = found.group(1)
    if "uncommitted changes" in text and "uncommitted" not in commit:
        commit += " (with uncommitted changes)"
    date = re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", text)
    cores = re.search(r"(\d+) cores", text)
    start = re.search(r"at start \(?([\d.]+)", text)
    end = re.search(r"at end \(?([\d.]+)", text)
    load = f"{start.group(1)} at start" + (f", {end.group(1)} at end" if end else "") if start else ""
    tables: dict[str, list[list[str]]] = {}
    heading, current = "", None
    for line in text.splitlines():
        if line.startswith("#"):
            heading, current = line.strip(), None
        elif line.startswith("|"):
            if current is None and heading not in tables:  # the first table under each heading
                current = tables[heading] = []
            if current is not None and not re.fullmatch(r"[|\s:-]+", line):
                current.append(_cells(line))
        else:
            current = None
    return Page(path, commit, date.group(0) if date else "", cores.group(1) if cores else "", load, tables)


def summary_lines(summary: Summary, root: Path = REPO) -> list[str]:
    """The README lines for one page: a provenance line and a table of the chosen columns."""
    path = root / summary.page
    if not path.is_file() and not summary.required:
        return [f"**{summary.title}**: not measured yet; `{summary.make}` writes [{summary.page}]({summary.page}).",
                ""]
    page = read_page(path, summary.make)
    table = page.tables.get(summary.heading)
    if not table:
        raise ValueError(f"{path} has no table under '{summary.heading}'; regenerate it with `{summary.make}`")
    header = table[0]
    missing = [c for c in summary.columns if c not in header]
    if missing:
        raise ValueError(f"{path}: the table under '{summary.heading}' has no column {missing} (it has {header}); "
                         "update SUMMARIES in tools/readme_figures.py to the page's columns")
    index = [header.index(c) for c in summary.columns]
    if summary.hand_kept:
        where = f"kept by hand: copied from the scripts' output at commit {page.commit}, measured at or before it"
    else:
        where = f"`{summary.make}`; " + ", ".join(x for x in (
            f"fastlearn at commit {page.commit}", page.date, f"{page.cores} cores" if page.cores else "",
            f"1-minute load {page.load}" if page.load else "") if x)
    lines = [f"**{summary.title}** ([{summary.page}]({summary.page}), {where}):", "",
             "| " + " | ".join([header[0] or "workload"] + list(summary.columns)) + " |",
             "| --- |" + "".join(" --- |" for _ in index)]
    for row in table[1:]:
        cells = [row[i] if i < len(row) else "" for i in index]
        if cells[0] not in ("", "—"):
            lines.append("| " + " | ".join([row[0]] + cells) + " |")
    return lines + [""]


def render(root: Path = REPO) -> str:
    """The whole block, markers included, from the pages under ``root``."""
    lines = [BEGIN]
    for summary in SUMMARIES:
        lines += summary_lines(summary, root)
    return "\n".join(lines[:-1] + [END])


def replace_block(readme: str, block: str, name: str = "README.md") -> str:
    """``readme`` with the text between the markers replaced by ``block``."""
    start, end = readme.find("<!-- figures:begin"), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{name} has no '<!-- figures:begin ... -->' ... '{END}' block; add both markers where "
                         "the benchmark figures go")
    return readme[:start] + block + readme[end + len(END):]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if README.md is stale")
    args = parser.parse_args()
    readme_path = REPO / "README.md"
    readme = readme_path.read_text()
    try:
        new = replace_block(readme, render())
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"readme_figures: {error}")
    if args.check:
        if new != readme:
            sys.exit("readme_figures: README.md's benchmark figures differ from bench/; run `make readme-figures`")
        return
    if new != readme:
        readme_path.write_text(new)
        print("readme_figures: README.md updated from bench/")


if __name__ == "__main__":
    main()
