"""Command line: ``python -m cqrs_ddd_persistence_sqlalchemy demo [--db URL]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cqrs_ddd_persistence_sqlalchemy",
        description="Tools of cqrs-ddd-persistence-sqlalchemy.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a tour of the library on a database")
    demo.add_argument(
        "--db",
        default=None,
        help="database URL (default: an SQLite file cqrs_ddd_demo.db in this directory)",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from cqrs_ddd_persistence_sqlalchemy.demo import DEFAULT_URL
        from cqrs_ddd_persistence_sqlalchemy.demo import main as run

        run(args.db or DEFAULT_URL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
