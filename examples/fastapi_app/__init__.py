"""An order service on FastAPI and cqrs-ddd-persistence-sqlalchemy.

``create_app(database_url)`` builds it; see the README for what it shows and how to run it.
"""

from .app import create_app as create_app

__all__ = ["create_app"]
