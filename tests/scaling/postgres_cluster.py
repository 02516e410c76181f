"""Private PostgreSQL clusters for the scaling tests: a primary and a streaming standby of our own (initdb,
pg_basebackup -R, pg_ctl from the machine's binaries), on free loopback ports under a temporary folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Debian keeps the server tools per major version; the newest installed one, then the PATH's
PG_BIN_DIRS = [
    *sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    ),
    Path("/usr/local/bin"),
    Path("/usr/bin"),
]
TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "psql", "pg_dump")
SUPERUSER = "postgres"


def pg_tool(name: str) -> str | None:
    for folder in PG_BIN_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    return shutil.which(name)


def missing_tools() -> list[str]:
    return [name for name in TOOLS if pg_tool(name) is None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0, every: float = 0.05) -> Any:
    """Poll `condition` until it returns something true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(every)


def _as_server_user(argv: list[str]) -> list[str]:
    """Postgres refuses to run as root: as root, the server tools run as the `postgres` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *argv]
    return argv


def run(argv: list[str], *, server_user: bool = False, **kwargs: Any) -> subprocess.CompletedProcess:
    argv = _as_server_user(argv) if server_user else argv
    result = subprocess.run(argv, capture_output=True, text=True, timeout=180, **kwargs)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


@dataclass
class Cluster:
    name: str
    datadir: Path
    port: int

    @property
    def log(self) -> Path:
        return self.datadir.parent / f"{self.name}.log"

    def start(self) -> None:
        run(
            [pg_tool("pg_ctl"), "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "60", "start"],
            server_user=True,
        )

    def stop(self, mode: str = "fast") -> None:
        run([pg_tool("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"], server_user=True)

    def running(self) -> bool:
        result = subprocess.run(  # noqa: S603
            _as_server_user([pg_tool("pg_ctl"), "-D", str(self.datadir), "status"]), capture_output=True
        )
        return result.returncode == 0

    def sql(self, statement: str, db: str = "postgres") -> str:
        """One statement through psql; its output unaligned (`a|b` per row)."""
        result = run(
            [
                pg_tool("psql"),
                "-X",
                "-q",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                db,
                "-c",
                statement,
            ]
        )
        return result.stdout.strip()


@dataclass
class StreamingPair:
    folder: Path
    primary: Cluster
    standby: Cluster
    database: str

    def streaming(self) -> bool:
        return (
            self.standby.running()
            and self.standby.sql("SELECT pg_is_in_recovery()") == "t"
            and self.primary.sql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") != "0"
        )

    def caught_up(self) -> bool:
        """The standby has replayed everything the primary has written so far."""
        target = self.primary.sql("SELECT pg_current_wal_insert_lsn()")
        return self.standby.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") == "t"

    def pause_replay(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_pause()")
        wait_for(
            lambda: self.standby.sql("SELECT pg_get_wal_replay_pause_state()") == "paused", "replay paused"
        )

    def resume_replay(self) -> None:
        self.standby.sql("SELECT pg_wal_replay_resume()")

    def received_unreplayed(self) -> bool:
        """The standby holds WAL it has not replayed (replay paused, a write since)."""
        return self.standby.sql("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()") == "t"

    def replica_lag(self) -> float:
        from config.db_router import LAG_SQL

        value = self.standby.sql(LAG_SQL.replace("\n", " ")).split("|")[1]
        return float(value) if value else 0.0

    def stop(self) -> None:
        for cluster in (self.standby, self.primary):
            if cluster.running():
                cluster.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 5
hot_standby = on
wal_receiver_status_interval = 1s
max_connections = 60
shared_buffers = 32MB
fsync = off
full_page_writes = off
log_min_messages = warning
"""
HBA = """
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
"""


def start_streaming_pair(load: Callable[[Cluster, str], None], database: str) -> StreamingPair:
    """A primary with `database` (filled by `load(primary, database)`) and a standby streaming from it."""
    folder = Path(tempfile.mkdtemp(prefix="martech-pg-pair-"))
    if os.geteuid() == 0:
        shutil.chown(folder, SUPERUSER, SUPERUSER)
    folder.chmod(0o700)
    primary = Cluster("primary", folder / "primary", free_port())
    standby = Cluster("standby", folder / "standby", free_port())
    pair = StreamingPair(folder, primary, standby, database)
    try:
        run(
            [
                pg_tool("initdb"),
                "-D",
                str(primary.datadir),
                "-U",
                SUPERUSER,
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            server_user=True,
            cwd=folder,
        )
        with open(primary.datadir / "postgresql.conf", "a") as conf:
            conf.write(PRIMARY_CONF.format(port=primary.port))
        with open(primary.datadir / "pg_hba.conf", "a") as hba:
            hba.write(HBA)
        primary.start()
        primary.sql(f'CREATE DATABASE "{database}"')
        load(primary, database)
        # the standby starts as a copy of the primary with the database in it, then streams what follows
        run(
            [
                pg_tool("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                SUPERUSER,
                "-D",
                str(standby.datadir),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ],
            server_user=True,
            cwd=folder,
        )
        with open(standby.datadir / "postgresql.auto.conf", "a") as conf:
            conf.write(f"port = {standby.port}\n")
        standby.start()
        wait_for(pair.streaming, "the standby to be in recovery and streaming")
    except BaseException:
        pair.stop()
        raise
    return pair
