"""A throwaway RabbitMQ broker for the tests, and helpers to look into it.

:class:`RabbitMQBroker` runs a private node of the ``rabbitmq-server`` package (Debian:
``/usr/lib/rabbitmq/bin``) with everything in a temporary directory: its data, logs,
configuration, Erlang cookie (``HOME``) and a private ``epmd`` on a free port, so it
neither needs nor disturbs a system broker. As root it runs as the ``rabbitmq`` user
the package creates (or ``nobody``). It listens on 127.0.0.1 only, and it can be
stopped and started again with its data kept, to test a broker that goes away.

``CQRS_DDD_TEST_RABBITMQ_URL`` names an external broker to use instead; that one cannot
be stopped or put under a memory alarm, so tests that need to do so skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

RABBITMQ_URL_ENV = "CQRS_DDD_TEST_RABBITMQ_URL"
REQUIRE_RABBITMQ_ENV = "CQRS_DDD_REQUIRE_RABBITMQ"

# Start and stop take a few seconds each (about 7 s and 3 s here); these are the limits.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0

_CONFIG = """\
# A full disk elsewhere on the machine must not block the tests' publishers.
disk_free_limit.absolute = 1MB
log.console = false
log.file.level = info
"""


def find_rabbitmq_server() -> Path | None:
    """The ``rabbitmq-server`` script that runs a node in the foreground, with ``rabbitmqctl``.

    Debian's ``/usr/sbin/rabbitmq-server`` is skipped: it switches to the system
    broker's user, directory and log files.
    """
    candidates = [
        Path("/usr/lib/rabbitmq/bin/rabbitmq-server"),
        *sorted(Path("/usr/lib/rabbitmq/lib").glob("rabbitmq_server-*/sbin/rabbitmq-server")),
    ]
    on_path = shutil.which("rabbitmq-server")
    if on_path and Path(on_path).resolve() != Path("/usr/sbin/rabbitmq-server"):
        candidates.append(Path(on_path))
    for script in candidates:
        if script.is_file() and (script.parent / "rabbitmqctl").is_file():
            return script
    return None


def _account() -> pwd.struct_passwd | None:
    """The account the node runs as when this process is root, so its files are not root's."""
    if os.geteuid() != 0:
        return None
    for name in ("rabbitmq", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.fail("running as root, and neither a 'rabbitmq' nor a 'nobody' user exists")


def _free_ports(count: int) -> list[int]:
    """Distinct free ports of 127.0.0.1 (all held open until every one is chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (a broker that is down)."""
    return _free_ports(1)[0]


def _amqp_ready(port: int) -> bool:
    """Whether the node on ``port`` answers the AMQP 0-9-1 header with ``connection.start``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1) == b"\x01"  # a method frame
    except OSError:
        return False


class RabbitMQBroker:
    """A RabbitMQ node living in a temporary directory, owned by this process."""

    def __init__(self, server: Path) -> None:
        self.server = server
        self.ctl_script = server.parent / "rabbitmqctl"
        self.account = _account()
        self.port, self.dist_port, self.epmd_port = _free_ports(3)
        self.node = f"cqrs_test_{self.port}@localhost"
        self.root = Path(tempfile.mkdtemp(prefix="cqrs-ddd-rabbitmq-"))
        self.log = self.root / "log" / f"{self.node}.log"
        self._output = self.root / "server.out"
        self._process: subprocess.Popen[bytes] | None = None
        self._epmd_started = False
        self._removed = False
        (self.root / "rabbitmq.conf").write_text(_CONFIG)
        (self.root / "enabled_plugins").write_text("[].\n")
        (self.root / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's
        if self.account is not None:
            for path in [self.root, *self.root.iterdir()]:
                os.chown(path, self.account.pw_uid, self.account.pw_gid)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_"))
        }
        root = str(self.root)
        env.update(
            HOME=root,  # the Erlang cookie is created here
            LC_ALL="C.UTF-8",
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
            RABBITMQ_CONF_ENV_FILE=f"{root}/rabbitmq-env.conf",
            RABBITMQ_CONFIG_FILE=f"{root}/rabbitmq.conf",
            RABBITMQ_ADVANCED_CONFIG_FILE=f"{root}/advanced.config",
            RABBITMQ_ENABLED_PLUGINS_FILE=f"{root}/enabled_plugins",
            RABBITMQ_MNESIA_BASE=f"{root}/mnesia",
            RABBITMQ_LOG_BASE=f"{root}/log",
            RABBITMQ_PID_FILE=f"{root}/rabbitmq.pid",
        )
        return env

    def _as_account(self) -> dict[str, object]:
        user = self.account
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _fail(self, what: str) -> None:
        def tail(path: Path) -> str:
            if not path.exists():
                return "(none)"
            return "\n".join(path.read_text(errors="replace").splitlines()[-40:])

        pytest.fail(
            f"RabbitMQ {what} ({self.server}, node {self.node})\n"
            f"--- output ---\n{tail(self._output)}\n"
            f"--- log tail ({self.log}) ---\n{tail(self.log)}",
            pytrace=False,
        )

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the node and wait until it accepts AMQP connections (blocks for seconds)."""
        if self.running:
            raise RuntimeError("the broker is already running")
        with self._output.open("ab") as output:
            self._process = subprocess.Popen(
                [str(self.server)],
                cwd=self.root,  # the node's user may not be allowed into the caller's cwd
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, to kill it whole if need be
                **self._as_account(),  # type: ignore[call-overload]
            )
        self._epmd_started = True
        deadline = time.monotonic() + START_TIMEOUT
        while not _amqp_ready(self.port):
            if self._process.poll() is not None:
                self._fail(f"exited with status {self._process.returncode} while starting")
            if time.monotonic() > deadline:
                self.stop()
                self._fail(f"did not accept AMQP connections within {START_TIMEOUT:g}s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the node gracefully (its data stays); kill it if it does not stop in time."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            # The script traps SIGTERM and stops the Erlang node cleanly.
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)
        # Whatever of its process group is left (only if the script did not finish).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def ctl(self, *args: str) -> str:
        """Run ``rabbitmqctl -n <node> ARGS`` and return its output; fail the test if it fails."""
        result = subprocess.run(
            [str(self.ctl_script), "-n", self.node, *args],
            cwd=self.root,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._as_account(),  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            pytest.fail(
                f"rabbitmqctl {' '.join(args)} failed (exit {result.returncode}):\n"
                f"{result.stdout}{result.stderr}",
                pytrace=False,
            )
        output: str = result.stdout
        return output

    def close(self) -> None:
        """Stop the node and its epmd, and remove the directory; safe to call more than once."""
        if self._removed:
            return
        self.stop()
        if self._epmd_started:
            # The node started an epmd of its own on a private port; it outlives the node.
            epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    [epmd, "-port", str(self.epmd_port), "-kill"],
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
        shutil.rmtree(self.root, ignore_errors=True)
        self._removed = True


@dataclass(frozen=True)
class ExternalBroker:
    """A broker this session did not start (``CQRS_DDD_TEST_RABBITMQ_URL``)."""

    url: str


Broker = RabbitMQBroker | ExternalBroker


@dataclass(frozen=True)
class Topology:
    """A durable exchange and a durable queue bound to it, unique to one test."""

    url: str
    exchange: str
    queue: str


@contextlib.asynccontextmanager
async def topology(url: str, *, binding_key: str = "#") -> AsyncIterator[Topology]:
    """Declare a fresh exchange (as the publisher does) and a queue; delete both after.

    Each step uses its own short connection, so a broker restart in between is fine.
    """
    suffix = uuid.uuid4().hex[:10]
    made = Topology(url=url, exchange=f"test-events-{suffix}", queue=f"test-queue-{suffix}")
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            made.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(made.queue, durable=True)
        await queue.bind(exchange, binding_key)
    try:
        yield made
    finally:
        async with await aio_pika.connect(url) as connection:
            channel = await connection.channel()
            await channel.queue_delete(made.queue)
            await channel.exchange_delete(made.exchange)


async def read_queue(
    url: str, queue_name: str, *, at_least: int = 0, timeout: float = 10.0
) -> list[AbstractIncomingMessage]:
    """Take every message from the queue, waiting up to ``timeout`` for ``at_least`` of them."""
    messages: list[AbstractIncomingMessage] = []
    deadline = time.monotonic() + timeout
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=True)
        while True:
            message = await queue.get(no_ack=True, fail=False)
            if message is not None:
                messages.append(message)
                continue
            if len(messages) >= at_least or time.monotonic() > deadline:
                return messages
            await asyncio.sleep(0.05)
