"""A temporary PostgreSQL server for the store's tests, and `store_url`: each store test once on SQLite and once on
PostgreSQL.

The session starts Debian's server binaries (`apt-get install postgresql`; `make postgres` does it) with `initdb`
in a temporary folder and `pg_ctl` on a free port, as `nobody` when the tests run as root (initdb refuses root).
Each test gets a fresh database. Without the binaries (or psycopg) the PostgreSQL cases are skipped, saying so;
with `CHATBOT_REQUIRE_POSTGRES=1` (CI) they fail instead.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"


def postgres_bindir() -> Path | None:
    """The newest installed server's binaries (Debian: /usr/lib/postgresql/<version>/bin), else those on PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


def _unavailable(reason: str) -> None:
    if os.environ.get("CHATBOT_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (CHATBOT_REQUIRE_POSTGRES=1 requires PostgreSQL; run `make postgres`)")
    pytest.skip(f"{reason}; `make postgres` installs it (CHATBOT_REQUIRE_POSTGRES=1 makes this a failure)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for this test session (fsync off: the data is thrown away)."""
    bindir = postgres_bindir()
    if bindir is None:
        _unavailable("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install -e '.[test]')")
    root = Path(tempfile.mkdtemp(prefix="chatbot-pg-"))
    as_user = {}
    if os.geteuid() == 0:  # initdb refuses root: the server runs as nobody, in a folder nobody owns
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            _unavailable("the tests run as root and there is no user 'nobody' to run PostgreSQL as")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    data, port = root / "data", _free_port()
    options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")  # fmt: skip

    def run(*args: str) -> None:
        done = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=120, **as_user)
        if done.returncode:
            log = (root / "log").read_text() if (root / "log").exists() else ""
            pytest.fail(f"{' '.join(args[:2])} failed: {done.stderr or done.stdout}\n{log}")

    run(str(bindir / "initdb"), "-D", str(data), "-U", "chatbot", "--auth=trust", "-E", "UTF8", "--no-locale")
    run(str(bindir / "pg_ctl"), "start", "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o", options)
    try:
        yield PostgresServer("127.0.0.1", port, "chatbot")
    finally:
        subprocess.run([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate"], cwd=root,
                       capture_output=True, timeout=60, **as_user)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database on the session's server (dropped after the test)."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")
    yield postgres_server.url(name)
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# these run every store test on both databases already
_BOTH = {
    "tests.test_store",
    "tests.test_store_processes",
    "tests.test_store_copy",
    "tests.test_passwords",
    "tests.test_ui_throttle",
}


@pytest.fixture(autouse=True)
def store_from_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the caller's own `$CHATBOT_STORE_URL`. With `CHATBOT_TEST_STORE=postgresql`, every store a test
    builds from a `[store]` without `url` is a fresh PostgreSQL database instead (subprocesses too): e.g.
    `CHATBOT_TEST_STORE=postgresql pytest tests/test_desk.py` runs the desk's tests on PostgreSQL."""
    monkeypatch.delenv("CHATBOT_STORE_URL", raising=False)
    if os.environ.get("CHATBOT_TEST_STORE") == "postgresql" and request.module.__name__ not in _BOTH:
        monkeypatch.setenv("CHATBOT_STORE_URL", request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str | None:
    """`[store] url` for a store test: None (SQLite at the default path in `$CHATBOT_HOME`), then a fresh
    PostgreSQL database."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
