"""The throwaway PostgreSQL: a password user's database on loopback, kept across restarts."""

from __future__ import annotations

import re
import socket
import stat
from pathlib import Path

import psycopg2
import pytest

from pipelines.services import PostgresServer, TeamServices
from pipelines.services.processes import LOOPBACK, NotReady


def test_the_url_reaches_the_database_as_its_user_and_a_wrong_password_is_refused(
        team_services: TeamServices) -> None:
    postgres = team_services.postgres
    with psycopg2.connect(postgres.url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database(), inet_server_addr()::text")
        assert cursor.fetchone() == (postgres.user, postgres.database, f"{LOOPBACK}/32")
    connection.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(postgres.url.replace(f":{postgres.password}@", ":wrong@"))


def test_the_socket_is_private_and_wants_a_password_and_the_passwords_are_random(
        team_services: TeamServices, tmp_path: Path) -> None:
    postgres = team_services.postgres
    sockets = postgres._sockets
    assert stat.S_IMODE(sockets.stat().st_mode) == 0o700
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(host=str(sockets), port=postgres.port, user="postgres",
                         dbname="postgres", connect_timeout=2)
    other = PostgresServer(tmp_path / "other")
    assert other.password != postgres.password and len(other.password) >= 32
    assert PostgresServer(tmp_path / "other").password == other.password  # kept


def test_a_restart_keeps_tables_and_finds_its_user_and_database(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "pg", user="alice", password="s3cret", database="runs")
    with server:
        with psycopg2.connect(server.url) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE kept (value int); INSERT INTO kept VALUES (42)")
        connection.close()
    assert not server.running
    with server:  # a second start must not try to create the user and database again
        with psycopg2.connect(server.url) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT value FROM kept")
            assert cursor.fetchall() == [(42,)]
        connection.close()


def test_a_cluster_that_trusted_connections_asks_for_passwords_after_a_restart(
        tmp_path: Path) -> None:
    """A folder made before passwords were required: its rules trust every connection."""
    server = PostgresServer(tmp_path / "old", user="alice", database="runs")
    with server:
        pass
    hba = server._cluster / "data" / "pg_hba.conf"
    hba.write_text(re.sub(r"scram-sha-256", "trust", hba.read_text()))
    with server:
        assert "trust" not in "".join(line.split("#")[0] for line in hba.read_text().splitlines())
        with pytest.raises(psycopg2.OperationalError, match="password"):
            psycopg2.connect(host=str(server._sockets), port=server.port, user="postgres",
                             dbname="postgres", connect_timeout=2)
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(server.url.replace(f":{server.password}@", ":wrong@"))
        psycopg2.connect(server.url).close()
    with server:  # and the next start finds it as any other
        psycopg2.connect(server.url).close()


def test_a_port_in_use_fails_the_start_with_the_servers_own_words(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        server = PostgresServer(tmp_path / "pg", port=taken.getsockname()[1])
        with pytest.raises(NotReady, match="(?s)exited.*could not (bind|create)"):
            server.start()
    assert not server.running
