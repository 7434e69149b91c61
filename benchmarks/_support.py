"""Shared helpers for the benchmarks: a throwaway PostgreSQL, paired timing, RSS.

Nothing here is imported by the library or the tests. The PostgreSQL server follows
``tests/conftest.py`` except that it keeps PostgreSQL's *default* durability settings
(``fsync``, ``synchronous_commit`` and ``full_page_writes`` on), because a benchmark
should pay for commits what a deployment pays.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# The throwaway server is shared with the test suite.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pg_server import PostgresServer, find_postgres_bindir

__all__ = [
    "POSTGRES_URL_ENV",
    "Comparison",
    "compare",
    "cpu_model",
    "peak_rss_kib",
    "postgres_url",
    "reset_peak_rss",
    "rss_kib",
]

POSTGRES_URL_ENV = "CQRS_DDD_BENCH_POSTGRES_URL"
_DATABASE = "cqrs_ddd_bench"


# -- a throwaway PostgreSQL server ----------------------------------------------------------


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database: ``CQRS_DDD_BENCH_POSTGRES_URL``, or a throwaway server.

    Raises:
        RuntimeError: neither the variable nor PostgreSQL binaries are available, or
            the server could not be started.
    """
    if url := os.environ.get(POSTGRES_URL_ENV):
        yield url
        return
    bindir = find_postgres_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL binaries not found (no initdb/pg_ctl under /usr/lib/postgresql/*/bin "
            f"or on PATH); set {POSTGRES_URL_ENV} or run with --backend sqlite"
        )
    server = PostgresServer(bindir, database=_DATABASE, prefix="cqrs-ddd-bench-pg-")
    atexit.register(server.stop)  # also when the run is interrupted
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


# -- paired timing -----------------------------------------------------------------------


@dataclass
class Comparison:
    """Wall and CPU times of our code and of the baseline, one pair per round.

    CPU time is this process's (``time.process_time``): the client-side Python work,
    without the database server's share and less disturbed by other processes.
    """

    name: str
    ops: int
    ours: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    ours_cpu: list[float] = field(default_factory=list)
    baseline_cpu: list[float] = field(default_factory=list)

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline)

    @property
    def ratio(self) -> float:
        """Median of the per-round ratios ours / baseline (lower is better).

        The two runs of a round are adjacent in time, so their ratio is less affected
        by the machine's drift than a ratio of two medians would be.
        """
        return _paired_ratio(self.ours, self.baseline)

    @property
    def cpu_ratio(self) -> float:
        """Median of the per-round ratios of this process's CPU time, ours / baseline."""
        return _paired_ratio(self.ours_cpu, self.baseline_cpu)


def _paired_ratio(ours: list[float], baseline: list[float]) -> float:
    return statistics.median(o / b for o, b in zip(ours, baseline, strict=True))


async def compare(
    name: str,
    ops: int,
    ours: Callable[[], Awaitable[object]],
    baseline: Callable[[], Awaitable[object]],
    *,
    rounds: int,
    before_each: Callable[[], Awaitable[object]] | None = None,
) -> Comparison:
    """Time ``ours`` and ``baseline`` alternately, ``rounds`` times each.

    The side that goes first alternates between rounds. ``before_each`` (untimed)
    runs before every timed call, e.g. to empty a table.
    """
    result = Comparison(name, ops)
    sides = [
        (ours, result.ours, result.ours_cpu),
        (baseline, result.baseline, result.baseline_cpu),
    ]
    for round_ in range(rounds):
        for run, wall, cpu in sides if round_ % 2 == 0 else reversed(sides):
            if before_each is not None:
                await before_each()
            gc.collect()
            start, start_cpu = time.perf_counter(), time.process_time()
            await run()
            wall.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    return result


# -- memory --------------------------------------------------------------------------------


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {key}")


def rss_kib() -> int:
    """The resident set size of this process now, in KiB."""
    return _status_kib("VmRSS")


def peak_rss_kib() -> int:
    """The peak resident set size (``VmHWM``) since start or the last reset, in KiB."""
    return _status_kib("VmHWM")


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs``); return whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return peak_rss_kib() <= rss_kib() + 1024


# -- the machine ---------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name, or the platform's processor string."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"
