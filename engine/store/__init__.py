"""The store: SQLAlchemy models and the database handle (SQLite WAL by default, PostgreSQL in production)."""

from engine.store.db import Database
from engine.store.models import Base

__all__ = ["Base", "Database"]
