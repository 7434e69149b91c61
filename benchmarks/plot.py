"""Render the benchmark results recorded in docs/performance.md as PNG plots.

The Markdown tables of docs/performance.md are the one record of the results (each was
pasted from a benchmark's output); this script reads them and draws what they say, so
the plots cannot drift from the tables. Run it after updating a table:

    .venv/bin/python benchmarks/plot.py            # writes docs/img/*.png

A table this script needs that is missing, or that lacks a row or column it plots,
stops it with an error naming the section, the table and what was expected.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # before pyplot: no display, deterministic output

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "docs" / "performance.md"
OUT = ROOT / "docs" / "img"

REPOSITORY_HEADER = ("backend", "workload", "ours", "baseline", "ratio", "CPU ratio", "target")
# The event store table names two columns "baseline": the baseline's name, then its
# throughput. Columns are read by position.
EVENT_STORE_HEADER = ("backend", "workload", "baseline", "ours", "baseline", "ours/baseline")
OUTBOX_HEADER = ("backend", "workload", "result", "ratio", "target")

COLORS = {"SQLite": "#4C72B0", "PostgreSQL": "#DD8452", "PostgreSQL, earlier run": "#8C8C8C"}
RESULT_COLORS = {"PASS": "#55A868", "MISS": "#C44E52", "info": "#8C8C8C"}


class TableError(Exception):
    """docs/performance.md does not hold a table (or a row, or a value) that is plotted."""


# -- reading the Markdown --------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A Markdown table and where it is: the headings above it, its first line."""

    headings: tuple[str, ...]  # outermost first, e.g. ("Performance", "Repository")
    line: int
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def column(self, name: str) -> int:
        """The index of the first column called ``name``."""
        try:
            return self.header.index(name)
        except ValueError:
            raise TableError(
                f"line {self.line}: the table has no column {name!r} (columns: {self.header})"
            ) from None

    def row(self, **match: str) -> tuple[str, ...]:
        """The one row whose named cells are equal to the given values."""
        found = [
            row for row in self.rows if all(row[self.column(k)] == v for k, v in match.items())
        ]
        if len(found) != 1:
            raise TableError(f"line {self.line}: expected one row with {match}, found {len(found)}")
        return found[0]


def _cells(line: str) -> tuple[str, ...]:
    inner = line.strip()
    if not (inner.startswith("|") and inner.endswith("|")):
        raise TableError(f"not a table row: {line!r}")
    return tuple(cell.strip().strip("`").strip() for cell in inner[1:-1].split("|"))


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_DELIMITER = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+\s*$")


def read_tables(text: str) -> list[Table]:
    """Every table of a Markdown document, with the headings it is under."""
    tables: list[Table] = []
    headings: list[tuple[int, str]] = []
    lines = text.splitlines()
    index = 0
    in_fence = False
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and (heading := _HEADING.match(line)):
            level = len(heading[1])
            headings = [(lvl, title) for lvl, title in headings if lvl < level]
            headings.append((level, heading[2]))
        elif (
            not in_fence
            and line.startswith("|")
            and index + 1 < len(lines)
            and _DELIMITER.match(lines[index + 1].strip())
        ):
            header = _cells(line)
            rows = []
            index += 2
            while index < len(lines) and lines[index].startswith("|"):
                row = _cells(lines[index])
                if len(row) != len(header):
                    raise TableError(
                        f"line {index + 1}: {len(row)} cells under a header of {len(header)}"
                    )
                rows.append(row)
                index += 1
            found = Table(tuple(t for _, t in headings), index - len(rows) - 1, header, tuple(rows))
            tables.append(found)
            continue
        index += 1
    return tables


def find_table(tables: Sequence[Table], heading: str, header: Sequence[str]) -> Table:
    """The one table directly under the heading starting with ``heading`` whose header
    starts with ``header``.
    """
    candidates = [
        t
        for t in tables
        if t.headings
        and t.headings[-1].startswith(heading)
        and t.header[: len(header)] == tuple(header)
    ]
    if len(candidates) != 1:
        where = "; ".join(f"line {t.line} under {' > '.join(t.headings)}" for t in tables)
        raise TableError(
            f"expected one table with the columns {tuple(header)} directly under a heading "
            f"starting with {heading!r}, found {len(candidates)} (tables: {where})"
        )
    return candidates[0]


# -- values ------------------------------------------------------------------------------


def number(text: str) -> float:
    """``"1.21"``, ``"0.86x"``, ``"≥ 0.8x"``, ``"4,711 msg/s"`` → the number in it."""
    match = re.search(r"-?\d[\d,]*(?:\.\d+)?", text)
    if match is None:
        raise TableError(f"no number in {text!r}")
    return float(match[0].replace(",", ""))


def optional_number(text: str) -> float | None:
    """A number, or ``None`` for an empty cell or a dash."""
    return None if text in ("", "—", "-") else number(text)


def latencies(text: str) -> tuple[float, float]:
    """``"p50 5.4 ms, p99 9.0 ms"`` → ``(5.4, 9.0)``."""
    match = re.fullmatch(r"p50 ([\d.]+) ms, p99 ([\d.]+) ms", text)
    if match is None:
        raise TableError(f"not 'p50 <n> ms, p99 <n> ms': {text!r}")
    return float(match[1]), float(match[2])


def _wrap(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(text, width))


# -- the plots -----------------------------------------------------------------------------


def plot_repository(full: Table, earlier: Table) -> Figure:
    """Wall-time and CPU ratios of the repository against hand-written ORM code."""
    workload, ratio, cpu = full.column("workload"), full.column("ratio"), full.column("CPU ratio")
    # Each workload once, in table order; rows without a ratio (memory) are not timed.
    workloads = list(
        dict.fromkeys(row[workload] for row in full.rows if optional_number(row[ratio]))
    )
    series: list[tuple[str, Table, str]] = [
        ("SQLite", full, "SQLite"),
        ("PostgreSQL", full, "PostgreSQL"),
        ("PostgreSQL, earlier run", earlier, "PostgreSQL"),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    height = 0.8 / len(series)
    for ax, column, title in ((axes[0], ratio, "wall time"), (axes[1], cpu, "CPU time")):
        for offset, (label, table, backend) in enumerate(series):
            values = [number(table.row(backend=backend, workload=w)[column]) for w in workloads]
            ys = [i + (offset - (len(series) - 1) / 2) * height for i in range(len(workloads))]
            ax.barh(ys, values, height=height, label=label, color=COLORS[label])
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_title(f"{title}: ours / baseline (lower is better)", fontsize=10)
        ax.set_xlim(0.6, 1.45)
        ax.grid(axis="x", alpha=0.3)
    # The targets are on wall time, on PostgreSQL.
    axes[0].axvline(1.15, color="#C44E52", linestyle="--", linewidth=1, label="target (PostgreSQL)")
    axes[0].set_yticks(range(len(workloads)), [_wrap(w) for w in workloads], fontsize=8)
    axes[0].invert_yaxis()
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncols=4, fontsize=8)
    fig.suptitle("SQLAlchemyRepository vs hand-written SQLAlchemy ORM code", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def plot_event_store(table: Table) -> Figure:
    """Throughput ratios of the event store against each baseline, with the targets."""
    backend, workload, baseline = 0, 1, 2  # "baseline" names two columns: by position
    ratio, target, result = (
        table.column("ours/baseline"),
        table.column("target"),
        table.column("result"),
    )
    backends = ["PostgreSQL", "SQLite"]
    rows = {
        name: [r for r in table.rows if r[backend] == name and optional_number(r[ratio])]
        for name in backends
    }
    for name, found in rows.items():
        if not found:
            raise TableError(f"line {table.line}: no {name} rows with a ratio")
    counts = [len(found) for found in rows.values()]
    fig, axes = plt.subplots(
        2, 1, figsize=(10, 0.32 * sum(counts) + 2.2), gridspec_kw={"height_ratios": counts}
    )
    for ax, name in zip(axes, backends, strict=True):
        found = rows[name]
        values = [number(r[ratio]) for r in found]
        colors = [RESULT_COLORS.get(r[result], RESULT_COLORS["info"]) for r in found]
        ax.barh(range(len(found)), values, color=colors, height=0.7)
        for i, r in enumerate(found):
            goal = optional_number(r[target])
            if goal is not None:
                ax.plot([goal, goal], [i - 0.45, i + 0.45], color="black", linewidth=1.5)
            ax.text(values[i] + 0.02, i, f"{values[i]:.2f}x", va="center", fontsize=7)
        labels = [f"{r[workload].split(' ', 1)[0]} vs {r[baseline]}" for r in found]
        ax.set_yticks(range(len(found)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xlim(0, max(values) * 1.15)
        ax.set_title(name, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in RESULT_COLORS.values()]
    handles.append(plt.Line2D([0], [0], color="black", linewidth=1.5))
    axes[0].legend(handles, [*RESULT_COLORS, "target"], fontsize=8, loc="lower right", ncols=4)
    fig.suptitle(
        "SQLAlchemyEventStore throughput / baseline throughput (higher is better)", fontsize=11
    )
    fig.tight_layout()
    return fig


def plot_outbox(table: Table) -> Figure:
    """Relay throughput with 1 and 4 relays, and commit-to-publish latency."""
    result = table.column("result")

    def value(workload: str, backend: str = "postgres") -> str:
        return table.row(backend=backend, workload=workload)[result]

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    groups = ["drain", "end to end"]
    for offset, relays in enumerate(("1 relay", "4 relays")):
        values = [number(value(f"{group}, {relays}")) for group in groups]
        xs = [i + (offset - 0.5) * 0.38 for i in range(len(groups))]
        bars = left.bar(xs, values, width=0.38, label=relays)
        left.bar_label(bars, [f"{v:,.0f}" for v in values], fontsize=8)
    left.set_xticks(range(len(groups)), [f"{g} (PostgreSQL)" for g in groups])
    left.set_ylabel("messages/s")
    left.set_title("relay throughput (higher is better)", fontsize=10)
    left.legend(fontsize=8)
    left.grid(axis="y", alpha=0.3)

    modes = [
        ("LISTEN/NOTIFY", "latency, LISTEN/NOTIFY"),
        ("polling every 100 ms", "latency, polling every 100 ms"),
    ]
    for offset, (percentile, index) in enumerate((("p50", 0), ("p99", 1))):
        values = [latencies(value(workload))[index] for _, workload in modes]
        xs = [i + (offset - 0.5) * 0.38 for i in range(len(modes))]
        bars = right.bar(xs, values, width=0.38, label=percentile)
        right.bar_label(bars, [f"{v:.1f}" for v in values], fontsize=8)
    right.axhline(
        100, color="#C44E52", linestyle="--", linewidth=1, label="p99 target (LISTEN/NOTIFY)"
    )
    right.set_xticks(range(len(modes)), [label for label, _ in modes])
    right.set_ylabel("ms from commit to publish")
    right.set_title("latency on PostgreSQL (lower is better)", fontsize=10)
    right.legend(fontsize=8)
    right.grid(axis="y", alpha=0.3)
    fig.suptitle("OutboxRelay", fontsize=11)
    fig.tight_layout()
    return fig


# -- main ----------------------------------------------------------------------------------


def figures(text: str) -> dict[str, Callable[[], Figure]]:
    """The plots of a performance page, by file name; every table is found first."""
    tables = read_tables(text)
    repository = find_table(tables, "Repository", REPOSITORY_HEADER)
    earlier = find_table(tables, "Earlier run", REPOSITORY_HEADER)
    event_store = find_table(tables, "Event store", EVENT_STORE_HEADER)
    outbox = find_table(tables, "Outbox", OUTBOX_HEADER)
    return {
        "repository.png": lambda: plot_repository(repository, earlier),
        "event-store.png": lambda: plot_event_store(event_store),
        "outbox.png": lambda: plot_outbox(outbox),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="the performance page")
    parser.add_argument("--out", type=Path, default=OUT, help="directory for the PNG files")
    args = parser.parse_args(argv)
    try:
        plots = figures(args.source.read_text(encoding="utf-8"))
        args.out.mkdir(parents=True, exist_ok=True)
        for name, draw in plots.items():
            fig = draw()
            # No "Software" entry: the file depends on the data, not on who drew it.
            fig.savefig(args.out / name, dpi=110, metadata={"Software": None})
            plt.close(fig)
            print(f"wrote {args.out / name}")
    except TableError as exc:
        print(f"{args.source}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
