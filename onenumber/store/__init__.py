"""Storage: the database (SQLite or PostgreSQL via SQLAlchemy async), its migrations, and
the admin operations on it. The server uses `Store`; the CLI and the API use `Store.admin`.
"""

from onenumber.settings import Settings, Trunk
from onenumber.store.admin import Admin, AdminError, ConflictError, NotFoundError
from onenumber.store.repository import Snapshot, Store

__all__ = ["Admin", "AdminError", "ConflictError", "NotFoundError", "Settings", "Snapshot", "Store", "Trunk"]
