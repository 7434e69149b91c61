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
import pwd
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


def _find_postgres_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: newest Debian install, then PATH."""

    def version(bindir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name))

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


def _unprivileged_account() -> pwd.struct_passwd | None:
    """The account to run the server as: ``initdb`` and ``postgres`` refuse to run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _PostgresServer:
    """A PostgreSQL cluster in a temporary directory, owned by this process."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.account = _unprivileged_account()
        self.root = Path(tempfile.mkdtemp(prefix="cqrs-ddd-bench-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._started = False
        self._removed = False
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{_DATABASE}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        user = self.account
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            cwd=self.root,  # the server's user may not be allowed into the caller's cwd
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            extra_groups=[] if user else None,
        )

    def _check(self, step: str, result: subprocess.CompletedProcess[str]) -> None:
        if result.returncode == 0:
            return
        log_tail = ""
        if self.log.exists():
            log_tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])
        raise RuntimeError(
            f"PostgreSQL {step} failed (exit {result.returncode}) using {self.bindir}\n"
            f"--- output ---\n{result.stdout}{result.stderr}\n"
            f"--- server log tail ({self.log}) ---\n{log_tail}"
        )

    def start(self) -> None:
        # --no-sync only skips initdb's own fsync of the new cluster; the server
        # itself runs with the default durability settings.
        result = self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        self._check("initdb", result)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"
        )
        self._started = result.returncode == 0 or (self.data / "postmaster.pid").exists()
        self._check("start", result)
        result = self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", _DATABASE
        )
        self._check("createdb", result)

    def stop(self) -> None:
        """Stop the server and remove its directory; safe to call more than once."""
        if self._removed:
            return
        if self._started:
            result = self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            if result.returncode != 0:
                # Signal the postmaster this process started, by its pid.
                with contextlib.suppress(OSError, ValueError, IndexError):
                    pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
                    os.kill(pid, signal.SIGQUIT)
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self._removed = True


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
    bindir = _find_postgres_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL binaries not found (no initdb/pg_ctl under /usr/lib/postgresql/*/bin "
            f"or on PATH); set {POSTGRES_URL_ENV} or run with --backend sqlite"
        )
    server = _PostgresServer(bindir)
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
