"""SQLAlchemy 2 async Core storage: one SQLite file or PostgreSQL schema per service."""

from ec_recommend.platform.storage.database import Database, Migration, UnitOfWork, open_database
from ec_recommend.platform.storage.statements import PerDialect, dialect_insert
from ec_recommend.platform.storage.work import insert_new, writing

__all__ = [
    "Database",
    "Migration",
    "PerDialect",
    "UnitOfWork",
    "dialect_insert",
    "insert_new",
    "open_database",
    "writing",
]
