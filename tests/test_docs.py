"""The documentation's Python examples run, and the site's plots can be rebuilt.

Every fenced ```python block in ``docs/**/*.md`` and ``README.md`` is a complete
program, executed in a fresh interpreter (``python -W error``) with a temporary
directory as its working directory. An HTML comment on the line right above the
opening fence (invisible on the rendered page) changes that:

``<!-- docs-test: continue -->``
    The block continues the previous Python block of the same file. The blocks of a
    chain run together, as one program; none of them runs on its own.
``<!-- docs-test: pytest -->``
    The block (or the chain it starts) is a pytest module. It runs under pytest with
    ``asyncio_mode = auto`` and warnings as errors.
``<!-- docs-test: skip (reason) -->``
    The block is not run. For fragments that cannot run on their own; say why.

The database an example uses is the SQLite URL literal in its code
(``"sqlite+aiosqlite:///orders.db"``, a file in the working directory). Such an
example runs twice: on SQLite as written (marker ``sqlite``), and on PostgreSQL
(marker ``postgres``) with every such literal replaced by the URL of a database that
is emptied before each example. An example without a database URL runs once (marker
``memory``). Python blocks that this file would not see (indented fences, ``py`` or
``pycon`` fences) and unknown markers fail ``test_every_python_block_is_seen``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TIMEOUT = 180  # seconds per example

_FENCE = re.compile(r"^```\s*(?P<lang>[\w+-]*)[^`]*$")  # ```python title="x" too
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<word>[\w-]+)(?P<rest>.*?)-->\s*$")
_KNOWN = frozenset({"continue", "pytest", "skip"})
_SQLITE_URL = re.compile(r"""(?P<quote>["'])sqlite\+aiosqlite:///[^"']*(?P=quote)""")
# Fences this module would not execute although they hold Python.
_UNSEEN = re.compile(r"^(\s+```\s*(python|py|pycon)\b|```\s*(py|pycon|python3)\s*$)")


@dataclass
class Block:
    """One ```python block, with the marker above it."""

    path: Path
    line: int  # of the opening fence, 1-based
    code: str
    marker: str | None


@dataclass
class Example:
    """What runs as one program: a block and the blocks that continue it."""

    blocks: list[Block] = field(default_factory=list)
    pytest: bool = False

    @property
    def code(self) -> str:
        return "\n\n".join(block.code for block in self.blocks)

    @property
    def name(self) -> str:
        first = self.blocks[0]
        return f"{first.path.relative_to(ROOT)}:{first.line}"

    @property
    def uses_database(self) -> bool:
        return _SQLITE_URL.search(self.code) is not None


def _markdown_files() -> list[Path]:
    return [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]


def _blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].rstrip() != "```":
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        if match["lang"] != "python":
            continue
        marker = None
        above = start - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        if above >= 0 and (found := _MARKER.match(lines[above].strip())):
            marker = found["word"]
        yield Block(path, start + 1, "\n".join(body) + "\n", marker)


def _examples() -> list[Example]:
    examples: list[Example] = []
    for path in _markdown_files():
        previous: Example | None = None
        for block in _blocks(path):
            if block.marker == "skip":
                previous = None
                continue
            if block.marker == "continue":
                if previous is None:
                    raise AssertionError(
                        f"{block.path}:{block.line}: 'continue' needs a previous block that runs"
                    )
                previous.blocks.append(block)
                continue
            previous = Example([block], pytest=block.marker == "pytest")
            examples.append(previous)
    return examples


EXAMPLES = _examples()


def _params() -> list[object]:
    params: list[object] = []
    for example in EXAMPLES:
        if example.uses_database:
            params.append(
                pytest.param(
                    example, "sqlite", marks=pytest.mark.sqlite, id=example.name + "-sqlite"
                )
            )
            params.append(
                pytest.param(
                    example, "postgres", marks=pytest.mark.postgres, id=example.name + "-postgres"
                )
            )
        else:
            params.append(
                pytest.param(example, "memory", marks=pytest.mark.memory, id=example.name)
            )
    return params


# -- PostgreSQL: one database for the examples, emptied before each ---------------------

DOCS_DATABASE = "cqrs_ddd_docs"


async def _create_database(server_url: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {DOCS_DATABASE} WITH (FORCE)"))
            await conn.execute(text(f"CREATE DATABASE {DOCS_DATABASE}"))
    finally:
        await engine.dispose()


async def _empty_database(url: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            # Tables, sequences, functions and triggers all live in the public schema.
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def docs_postgres_url(postgres_url: str) -> str:
    """A database of its own for the examples (they create tables the tests do not know)."""
    asyncio.run(_create_database(postgres_url))
    url = make_url(postgres_url).set(database=DOCS_DATABASE)
    return url.render_as_string(hide_password=False)


# -- running --------------------------------------------------------------------------


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


_PYTEST_INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


@pytest.mark.parametrize(("example", "backend"), _params())
def test_example_runs(
    example: Example, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    code = example.code
    if backend == "postgres":
        url: str = request.getfixturevalue("docs_postgres_url")
        asyncio.run(_empty_database(url))
        code = _SQLITE_URL.sub(lambda _: repr(url), code)
    if example.pytest:
        (tmp_path / "pytest.ini").write_text(_PYTEST_INI)
        (tmp_path / "test_example.py").write_text(code)
        args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_example.py"]
    else:
        (tmp_path / "example.py").write_text(code)
        args = [sys.executable, "-W", "error", "example.py"]
    result = _run(args, tmp_path)
    assert result.returncode == 0, (
        f"{example.name} failed on {backend} (exit {result.returncode})\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def test_every_python_block_is_seen() -> None:
    problems = []
    for path in _markdown_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{number}"
            if _UNSEEN.match(line):
                problems.append(f"{where}: a Python block this test would not run: {line!r}")
            marker = _MARKER.match(line.strip())
            if "docs-test" in line and (marker is None or marker["word"] not in _KNOWN):
                problems.append(f"{where}: unknown docs-test marker {line.strip()!r}")
    assert not problems, "\n".join(problems)
    # The pages this test is for hold examples; an empty harvest means the parser broke.
    assert len(EXAMPLES) >= 15


# -- the performance page's plots -------------------------------------------------------


def test_the_plots_are_rebuilt_from_the_performance_page(tmp_path: Path) -> None:
    result = _run(
        [sys.executable, str(ROOT / "benchmarks" / "plot.py"), "--out", str(tmp_path)], ROOT
    )
    assert result.returncode == 0, result.stderr
    made = sorted(p.name for p in tmp_path.glob("*.png"))
    referenced = sorted(
        set(re.findall(r"\(img/([\w-]+\.png)\)", (DOCS / "performance.md").read_text()))
    )
    assert made == referenced
    for name in made:
        assert (DOCS / "img" / name).is_file(), f"docs/img/{name} is not committed"
