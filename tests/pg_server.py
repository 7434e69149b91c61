"""A throwaway PostgreSQL server in a temporary directory.

Used by the test suite (``tests/conftest.py``) and by the benchmarks
(``benchmarks/_support.py``), which differ only in the settings they give it. Not part
of the library.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = ["PostgresServer", "PostgresServerError", "find_postgres_bindir"]


class PostgresServerError(RuntimeError):
    """The server could not be set up; the message holds the output and the log tail."""


def find_postgres_bindir() -> Path | None:
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
    raise PostgresServerError(
        "running as root, and neither a 'postgres' nor a 'nobody' user exists"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """A PostgreSQL cluster living in a temporary directory, owned by this process.

    Args:
        bindir: where ``initdb``, ``pg_ctl`` and ``createdb`` are.
        database: the database created for the caller.
        settings: extra ``postgresql.conf`` settings (e.g. ``fsync``).
        prefix: the temporary directory's name prefix.
    """

    def __init__(
        self,
        bindir: Path,
        *,
        database: str,
        settings: Mapping[str, str] | None = None,
        prefix: str = "cqrs-ddd-pg-",
    ) -> None:
        self.bindir = bindir
        self.database = database
        self.settings = dict(settings or {})
        self.account = _unprivileged_account()
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self._started = False
        self._removed = False
        if self.account is not None:
            os.chown(self.root, self.account.pw_uid, self.account.pw_gid)

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the database."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{self.database}"

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
        raise PostgresServerError(
            f"PostgreSQL {step} failed (exit {result.returncode}) using {self.bindir}\n"
            f"--- output ---\n{result.stdout}{result.stderr}\n"
            f"--- server log tail ({self.log}) ---\n{log_tail}"
        )

    def start(self) -> None:
        """Initialise the cluster, start it on a free port of 127.0.0.1, create the database.

        Raises:
            PostgresServerError: a step failed.
        """
        # --no-sync only skips initdb's own fsync of the new cluster.
        result = self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        self._check("initdb", result)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            **self.settings,
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
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database
        )
        self._check("createdb", result)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and remove its directory; safe to call more than once."""
        if self._removed:
            return
        if self._started:
            result = self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            if result.returncode != 0:
                # pg_ctl could not stop it: signal the postmaster this process started.
                with contextlib.suppress(OSError, ValueError, IndexError):
                    pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
                    os.kill(pid, signal.SIGQUIT)
            self._started = False
        shutil.rmtree(self.root, ignore_errors=True)
        self._removed = True
