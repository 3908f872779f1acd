"""A throwaway PostgreSQL cluster: the shared tracking server's database in a local team
trial (`mlpipe services up`) and in the tests.

`initdb` into the server's own folder, `postgres` on a loopback port with its unix socket
in that folder too (mode 0700: nothing lands in the shared temp folder), one database owned
by one password user, the URL a client connects with. Every connection, over TCP or the
socket, authenticates with `scram-sha-256`; the passwords (the superuser's and the user's)
are random, drawn on the first start and kept private in the server's folder.
PostgreSQL refuses to run as root: then the cluster belongs to, and runs as, the
`postgres` system account.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import weakref
from contextlib import closing
from pathlib import Path

import psycopg2
from psycopg2 import sql

from models.private_files import write_private
from pipelines.services.processes import LOOPBACK, ServiceProcess, free_port
from pipelines.services.secrets import kept_secret, private_folder

log = logging.getLogger(__name__)

SYSTEM_ACCOUNT = "postgres"


def find_postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs: Debian keeps them off PATH, in
    /usr/lib/postgresql/<N>/bin (the newest N wins), elsewhere `initdb` is on PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                    key=lambda path: [int(part) for part in Path(path).parts[-3].split(".")])
    on_path = shutil.which("initdb")
    if debian:
        return Path(debian[-1]).parent
    if on_path:
        return Path(on_path).parent
    raise FileNotFoundError("PostgreSQL's initdb was not found: install it with `make setup` "
                            "(scripts/install_system_packages.sh installs Debian's postgresql)")


class PostgresServer(ServiceProcess):
    """One PostgreSQL server with one database, in ``root`` (kept across restarts).

    Its durability settings are a throwaway cluster's: a test or a trial loses nothing it
    cares about if the machine crashes, and fsync-free commits keep MLflow's schema
    migrations from taking most of the start.
    """

    name = "PostgreSQL"
    ready_timeout_s = 60.0
    # Fast shutdown: open client sessions are ended rather than waited for (SIGTERM's).
    stop_signal = signal.SIGINT

    def __init__(self, root: Path, *, port: int | None = None, user: str = "mlpipe",
                 password: str | None = None, database: str = "mlpipe") -> None:
        """``password`` None: the one kept in ``root``/secrets, random on first use."""
        super().__init__(root, "postgres.log")
        self.port = port or free_port()
        self.user = user
        self.password = password or kept_secret(root / "secrets" / "user-password")
        self._superuser_password = kept_secret(root / "secrets" / "superuser-password")
        self.database = database
        self._bin = find_postgres_bin()
        self._account = pwd.getpwnam(SYSTEM_ACCOUNT) if os.geteuid() == 0 else None
        self._cluster = root / "cluster"  # or, see _cluster_dir, a temporary folder
        self._placed = False

    @property
    def url(self) -> str:
        """`postgresql://user:password@127.0.0.1:port/database`, as libpq clients take it."""
        return (f"postgresql://{self.user}:{self.password}@{LOOPBACK}:{self.port}"
                f"/{self.database}")

    @property
    def sqlalchemy_url(self) -> str:
        """`url` naming the driver installed with the project: SQLAlchemy 2.1 picks
        psycopg 3 for a bare `postgresql://`."""
        return self.url.replace("postgresql://", "postgresql+psycopg2://", 1)

    @property
    def _sockets(self) -> Path:
        return self._cluster / "sockets"

    def _prepare(self) -> None:
        """Create the cluster on first start, in a folder the server's account can reach."""
        if not self._placed:
            self._cluster = self._cluster_dir()
            self._placed = True
        data = self._cluster / "data"
        if not (data / "PG_VERSION").exists():
            self._initdb(data)
        private_folder(self._sockets)
        self._own(self._sockets)

    def _command(self) -> list[str]:
        return self._as_owner([
            str(self._bin / "postgres"), "-D", str(self._cluster / "data"),
            "-p", str(self.port), "-h", LOOPBACK, "-k", str(self._sockets),
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])

    def _ready(self) -> bool:
        try:
            self._admin().close()
        except psycopg2.OperationalError:
            return False
        return True

    def _after_ready(self) -> None:
        """The user and its database, unless a previous start created them; a cluster
        that still trusts connections is first made to ask for the passwords."""
        with closing(self._admin()) as connection, connection.cursor() as cursor:
            trusting = self._trusting()
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(
                    sql.Identifier(self.user)), (self.password,))
            elif trusting:
                cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(
                    sql.Identifier(self.user)), (self.password,))
            if trusting:
                self._require_passwords(cursor)
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(self.database), sql.Identifier(self.user)))
        log.info("%s on %s:%d (database %s)", self.name, LOOPBACK, self.port, self.database)

    @property
    def _hba(self) -> Path:
        return self._cluster / "data" / "pg_hba.conf"

    def _trusting(self) -> bool:
        """Whether a rule of pg_hba.conf lets a connection in without a password, as in
        a cluster made before every connection asked for one."""
        return any(_rule_trusts(line) for line in self._hba.read_text().splitlines())

    def _require_passwords(self, cursor: psycopg2.extensions.cursor) -> None:
        """Give the superuser its kept password and make every rule ask for one
        (`scram-sha-256`), then have the running server reread its rules."""
        cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(
            sql.Identifier(SYSTEM_ACCOUNT)), (self._superuser_password,))
        lines = self._hba.read_text().splitlines(keepends=True)
        self._hba.write_text("".join(
            re.sub(r"(?<=\s)trust(?=\s|$)", "scram-sha-256", line) if _rule_trusts(line)
            else line
            for line in lines))
        cursor.execute("SELECT pg_reload_conf()")
        log.warning("%s in %s let connections in without a password (made before passwords "
                    "were required); its rules now ask for scram-sha-256 passwords, kept in "
                    "%s", self.name, self._cluster, self.root / "secrets")

    def _cluster_dir(self) -> Path:
        """``root``/cluster, unless the system account cannot reach it (root's private
        folders, such as pytest's): then a folder in the temp folder that lives as long as
        this object, so restarts keep the data but the next process starts afresh."""
        cluster = self.root / "cluster"
        cluster.mkdir(exist_ok=True)
        self._own(cluster)
        if self._account is None or self._reachable(cluster):
            return cluster
        cluster.rmdir()
        fallback = Path(tempfile.mkdtemp(prefix="mlpipe-postgres-"))
        self._own(fallback)
        weakref.finalize(self, shutil.rmtree, fallback, ignore_errors=True)
        log.warning("%s cannot reach %s: the database lives in %s until this process ends",
                    SYSTEM_ACCOUNT, self.root, fallback)
        return fallback

    def _initdb(self, data: Path) -> None:
        # initdb reads the superuser's password from a file the server's account can read,
        # removed once the cluster exists.
        password_file = write_private(self._cluster / "superuser-password",
                                      self._superuser_password)
        self._own(password_file)
        command = self._as_owner([
            str(self._bin / "initdb"), "-D", str(data), "-U", SYSTEM_ACCOUNT,
            f"--pwfile={password_file}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C",
            "--no-sync"])
        try:
            done = subprocess.run(command, cwd=self._cluster, capture_output=True, text=True)
        finally:
            password_file.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def _as_owner(self, command: list[str]) -> list[str]:
        """``command`` as the system account when we are root (exec'd: same pid)."""
        if self._account is None:
            return command
        return ["setpriv", f"--reuid={self._account.pw_uid}",
                f"--regid={self._account.pw_gid}", "--init-groups", *command]

    def _own(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _reachable(self, path: Path) -> bool:
        return subprocess.run(self._as_owner(["test", "-w", str(path), "-a", "-x", str(path)]),
                              capture_output=True).returncode == 0

    def _admin(self) -> psycopg2.extensions.connection:
        """A superuser session over the unix socket, with the superuser's password."""
        connection = psycopg2.connect(host=str(self._sockets), port=self.port,
                                      user=SYSTEM_ACCOUNT, password=self._superuser_password,
                                      dbname="postgres", connect_timeout=2)
        connection.autocommit = True
        return connection


def _rule_trusts(line: str) -> bool:
    """Whether a pg_hba.conf line is a rule whose method is `trust`."""
    fields = line.split("#", 1)[0].split()
    return bool(fields) and "trust" in fields[3:]
