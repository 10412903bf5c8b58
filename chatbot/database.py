"""The two databases behind the store, through one small API: SQLite (the default, one file, WAL) and PostgreSQL
(psycopg 3 with its connection pool, for several app workers on one store).

Not an ORM: the store writes SQL once, with `?` placeholders and what both databases accept (`ON CONFLICT ... DO
UPDATE` upserts); `Connection.insert` returns a new row's id (SQLite's `lastrowid`, PostgreSQL's `RETURNING id`).
The PostgreSQL side rewrites only what differs: placeholders, and in `CREATE`/`ALTER TABLE`, SQLite's `INTEGER
PRIMARY KEY AUTOINCREMENT` (an identity column), `REAL` (a double, not PostgreSQL's 4-byte real) and `BLOB`
(bytea). The few expressions that differ (a timestamp's day, row locks) are `Database` attributes the store puts
into its SQL.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool


class StoreError(RuntimeError):
    """A store operation that cannot be done; the message says why."""


class IntegrityError(StoreError):
    """A write the schema refuses (a duplicate key, a failed CHECK, a missing reference); nothing was written."""


class Cursor(Protocol):
    """What `Connection.execute` returns: rows (by index and by column name) and the count of changed rows."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """The connection a transaction (or a migration) gets: `execute(sql, args)` with `?` placeholders."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def insert(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run an `INSERT` of one row into a table with an `id` column; returns the new row's id."""
        ...


class Database(Protocol):
    """One store database. `transaction()` is one write transaction; `read()` runs a query outside of one (inside
    one when the calling thread has a transaction open, so it sees that transaction's writes)."""

    dialect: str
    """"sqlite" or "postgresql"."""
    for_update: str
    """Appended to a `SELECT` inside a transaction to lock its rows until commit ("" on SQLite, where a write
    transaction holds the whole database)."""
    insertion_order: str
    """The `_migrations` column that orders rows as inserted."""

    def transaction(self) -> AbstractContextManager[Connection]:
        """One write transaction: committed when the block ends, rolled back when it raises. Not nested: a second
        one in the same thread raises `StoreError`."""
        ...

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[Any]: ...

    def day(self, column: str) -> str:
        """SQL for the UTC day (`YYYY-MM-DD`) of a Unix-time column."""
        ...

    def lock_schema(self, db: Connection) -> None:
        """Hold off other processes' migrations until this transaction ends."""
        ...

    def tables(self) -> list[str]:
        """The store's tables in the order they were created (a table after those it references)."""
        ...

    def reset_ids(self, db: Connection, table: str) -> None:
        """After rows were inserted with their ids: the next generated id follows the largest."""
        ...

    def close(self) -> None: ...


def open_database(url: str, home: Path, pool_size: int = 10) -> Database:
    """The database a `[store] url` names: `sqlite:///relative/to/home.sqlite3`, `sqlite:////absolute/path` or
    `postgresql://user@host:port/dbname` (libpq's URL; a password may come from `$PGPASSWORD` or `~/.pgpass`)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///")).expanduser()
        return SQLiteDatabase(path if path.is_absolute() else home / path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url, pool_size=pool_size)
    raise StoreError(
        f"[store] url {url!r} names no database this store speaks: use sqlite:///chatbot.sqlite3 (relative to "
        "$CHATBOT_HOME; sqlite://// for an absolute path) or postgresql://user@host:5432/dbname"
    )


_NESTED = "a store transaction is already open in this thread; do these writes in that one"


# -- SQLite ---------------------------------------------------------------------------------------------------------
class _SQLiteConnection:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.db.execute(sql, args)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(f"the database refused the write: {exc}") from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.db.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(f"the database refused the write: {exc}") from exc

    def insert(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int(self.execute(sql, args).lastrowid)  # cheaper than RETURNING here


class SQLiteDatabase:
    """One file in WAL mode; one connection guarded by a lock, each write one `BEGIN IMMEDIATE` transaction (which
    also serializes writers in other processes)."""

    dialect = "sqlite"
    for_update = ""
    insertion_order = "rowid"

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=30000")
        self.db = db
        self._connection = _SQLiteConnection(db)
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock:
            if self.db.in_transaction:
                raise StoreError(_NESTED)
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    def day(self, column: str) -> str:
        return f"date({column}, 'unixepoch')"

    def lock_schema(self, db: Connection) -> None:
        """`BEGIN IMMEDIATE` already holds other writers off."""

    def tables(self) -> list[str]:
        return [r[0] for r in self.read("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]  # fmt: skip

    def reset_ids(self, db: Connection, table: str) -> None:
        """SQLite's AUTOINCREMENT counter already follows inserted ids."""

    def close(self) -> None:
        with self._lock:
            self.db.close()


# -- PostgreSQL -----------------------------------------------------------------------------------------------------
def row_class(names: Sequence[str]) -> type[tuple]:
    """A result row type like `sqlite3.Row` for one query's columns: a tuple (by index, iterable, unpackable), by
    column name, and `dict(row)`. One class per query keeps the name lookup out of each row."""
    index = {name: i for i, name in enumerate(names)}
    keys = list(index)
    get = tuple.__getitem__

    def __getitem__(self: tuple, key: int | str) -> Any:
        return get(self, index[key]) if key.__class__ is str else get(self, key)

    def __repr__(self: tuple) -> str:
        return f"Row({dict(zip(keys, self, strict=True))!r})"

    return type("Row", (tuple,), {"__slots__": (), "__getitem__": __getitem__, "keys": lambda self: keys,
                                  "__repr__": __repr__})  # fmt: skip


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    return row_class([column.name for column in cursor.description or ()])


_LITERAL = re.compile(r"('(?:[^']|'')*')")
_DDL = re.compile(r"^\s*(CREATE|ALTER)\s+TABLE\b", re.IGNORECASE)
_DDL_TYPES = [
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b", re.IGNORECASE),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.IGNORECASE), "BYTEA"),
]  # fmt: skip


@lru_cache(maxsize=1024)
def postgres_sql(sql: str) -> str:
    """`sql` as written for the store (SQLite's placeholders and column types) in PostgreSQL's words: `?` becomes
    `%s` and a literal `%` becomes `%%` outside string literals; table DDL gets PostgreSQL's types."""
    ddl = bool(_DDL.match(sql))
    parts = _LITERAL.split(sql)
    for i in range(0, len(parts), 2):  # even parts lie outside '...' literals
        part = parts[i].replace("%", "%%").replace("?", "%s")
        if ddl:
            for pattern, replacement in _DDL_TYPES:
                part = pattern.sub(replacement, part)
        parts[i] = part
    return "".join(parts)


class _PostgresConnection:
    def __init__(self, conn: psycopg.Connection[Any]):
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        import psycopg

        try:
            # always a params tuple, even empty: psycopg then turns %% back into %
            return self.conn.execute(postgres_sql(sql), tuple(args))
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(f"the database refused the write: {exc}") from exc

    def insert(self, sql: str, args: Sequence[Any] = ()) -> int:
        return int(self.execute(sql + " RETURNING id", args).fetchone()[0])

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        import psycopg

        try:
            with self.conn.cursor() as cursor:
                cursor.executemany(postgres_sql(sql), [tuple(r) for r in rows])
        except psycopg.errors.IntegrityError as exc:
            raise IntegrityError(f"the database refused the write: {exc}") from exc


def _describe(url: str) -> str:
    """`url` without its password, for error messages."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "an unparsable PostgreSQL URL"
    return f"{parts.get('user') or '(default user)'}@{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}" \
        f"/{parts.get('dbname') or '(default database)'}"  # fmt: skip


def _configure(conn: psycopg.Connection[Any]) -> None:
    from psycopg.types.numeric import FloatLoader

    # SUM and AVG of integers are numeric in PostgreSQL: floats, as SQLite gives them
    conn.adapters.register_loader("numeric", FloatLoader)


class PostgresDatabase:
    """A psycopg connection pool (connections in autocommit; a transaction is `BEGIN` ... `COMMIT` on one pooled
    connection, rolled back on any error). Row locks (`for_update`) and conditional updates keep a write
    exactly-once across workers; migrations take an advisory lock so two workers starting at once run them once."""

    dialect = "postgresql"
    for_update = " FOR UPDATE"
    insertion_order = "id"

    def __init__(self, url: str, pool_size: int = 10, connect_timeout: float = 10.0):
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise StoreError(
                "[store] url names PostgreSQL but psycopg is not installed: pip install 'support-chatbot[postgres]'"
            ) from exc
        self.url = url
        self._local = threading.local()
        self.pool: ConnectionPool = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, configure=_configure, name="chatbot-store",
            kwargs={"autocommit": True, "row_factory": _row_factory},
        )  # fmt: skip
        try:
            # one direct connection first: its error says why (the pool's only says it timed out)
            psycopg.connect(url, connect_timeout=max(1, round(connect_timeout))).close()
            self.pool.open(wait=True, timeout=connect_timeout)
        except psycopg.Error as exc:
            self.pool.close()
            raise StoreError(
                f"cannot reach PostgreSQL at {_describe(url)} ({' '.join(str(exc).split())}); check "
                "[store] url, that the server runs and that the user may connect (password in $PGPASSWORD)"
            ) from exc

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        if getattr(self._local, "conn", None) is not None:
            raise StoreError(_NESTED)
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield _PostgresConnection(conn)
            finally:
                self._local.conn = None

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return _PostgresConnection(conn).execute(sql, args).fetchall()
        with self.pool.connection() as conn:
            return _PostgresConnection(conn).execute(sql, args).fetchall()

    def day(self, column: str) -> str:
        return f"to_char(to_timestamp({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def lock_schema(self, db: Connection) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (0x63686174,))  # "chat": any constant the app alone uses

    def tables(self) -> list[str]:
        return [r[0] for r in self.read("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                                        "c.relnamespace WHERE c.relkind = 'r' AND n.nspname = current_schema() "
                                        "ORDER BY c.oid")]  # fmt: skip

    def reset_ids(self, db: Connection, table: str) -> None:
        row = db.execute("SELECT pg_get_serial_sequence(table_name, 'id') FROM information_schema.columns WHERE "
                         "table_schema = current_schema() AND table_name = ? AND column_name = 'id'",
                         (table,)).fetchone()  # fmt: skip
        if row is not None and row[0] is not None:  # a generated id column
            db.execute(f"SELECT setval(?, (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)", (row[0],))

    def close(self) -> None:
        self.pool.close()
