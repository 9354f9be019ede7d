"""A local PostgreSQL for `make run` and tests, from the binaries the `pgserver` wheel ships.

We use only pgserver's binaries (initdb, pg_ctl, postgres), not its Python server object:
that one stops the server when the last Python handle exits, and its import warns when
XDG_RUNTIME_DIR is unset. PostgreSQL refuses to run as root, so under root (CI, containers)
the cluster belongs to a dedicated system user, created on first use.
"""

from __future__ import annotations

import getpass
import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from qikflow.local._process import free_port

__all__ = ["LocalPostgres", "LocalPostgresError", "free_port"]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 54329
SYSTEM_USER = "qikflow-pg"  # owns the cluster when qikflow runs as root
SUPERUSER = "postgres"


class LocalPostgresError(RuntimeError):
    """The local PostgreSQL could not be initialised, started or stopped."""


@dataclass(frozen=True)
class LocalPostgres:
    """One local cluster: `<home>/<name>/data`, listening on 127.0.0.1:`port` only."""

    home: Path
    name: str = "pg"
    port: int = DEFAULT_PORT

    @property
    def instance_dir(self) -> Path:
        return (self.home / self.name).resolve()

    @property
    def data_dir(self) -> Path:
        return self.instance_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.instance_dir / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """Connection URL (trust authentication on loopback; there is no password)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # -- lifecycle -----------------------------------------------------------

    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        result = self._run(["pg_ctl", "-D", str(self.data_dir), "status"], check=False)
        return result.returncode == 0

    def start(self, timeout_s: float = 60.0) -> None:
        """Initialise the cluster if needed and start it; return once it accepts connections."""
        if self.running():
            logger.info("PostgreSQL %r already running on port %d", self.name, self.port)
            return
        if _port_in_use(self.port):
            raise LocalPostgresError(
                f"port {self.port} is taken by another process; stop it, choose another port, "
                "or point QIKFLOW_DATABASE_URL at that server"
            )
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        options = f"-p {self.port}"
        result = self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
             "-w", "-t", str(int(timeout_s)), "start"],
            check=False,
        )
        if result.returncode != 0:
            raise LocalPostgresError(
                f"PostgreSQL {self.name!r} did not start (pg_ctl exit {result.returncode}): "
                f"{result.stderr.strip()}\n--- last lines of {self.log_file} ---\n"
                f"{self._log_tail()}"
            )
        logger.info("PostgreSQL %r ready on 127.0.0.1:%d (data %s)", self.name, self.port,
                    self.data_dir)

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the server (fast mode: rolls back open transactions). True if it was running."""
        if not self.running():
            return False
        result = self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout_s)),
             "stop"],
            check=False,
        )
        if result.returncode != 0:
            raise LocalPostgresError(
                f"PostgreSQL {self.name!r} did not stop: {result.stderr.strip()}"
            )
        return True

    def wipe(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        shutil.rmtree(self.instance_dir, ignore_errors=True)

    def status(self) -> str:
        if self.running():
            return f"postgres {self.name}: running on {self.url()} (data {self.data_dir})"
        return f"postgres {self.name}: stopped (data {self.data_dir})"

    # -- internals -----------------------------------------------------------

    def _initdb(self) -> None:
        result = self._run(
            ["initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-instructions"],
            check=False,
        )
        if result.returncode != 0:
            raise LocalPostgresError(
                f"initdb of {self.data_dir} failed: {result.stdout}{result.stderr}"
            )
        # Loopback TCP only: no Unix socket, whose path length and directory rights vary.
        with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 200\n"
                "shared_buffers = '128MB'\n"
            )
        logger.info("initialised PostgreSQL cluster in %s", self.data_dir)

    def _prepare_dirs(self) -> None:
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        user = _server_user()
        if user is None:
            return
        entry = pwd.getpwnam(user)
        for path in (self.instance_dir, self.data_dir):
            path.mkdir(exist_ok=True)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        # The server user must traverse every folder above its data and the binaries.
        for path in [*self.instance_dir.parents, *_install_dir().parents, _install_dir()]:
            mode = path.stat().st_mode
            if not mode & stat.S_IXOTH:
                path.chmod(mode | stat.S_IXOTH)

    def _run(self, command: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
        binary = _install_dir() / "bin" / command[0]
        user = _server_user()
        # The server that `pg_ctl start` leaves behind writes to its log file, not our pipes.
        with open(os.devnull, "rb") as devnull:
            return subprocess.run(
                [str(binary), *command[1:]],
                stdin=devnull, capture_output=True, text=True, check=check,
                user=user, cwd=self.instance_dir if self.instance_dir.exists() else None,
                env={**os.environ, "LC_ALL": "C"},
            )

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as error:
            return f"(log unreadable: {error})"


def _install_dir() -> Path:
    """pgserver's bundled PostgreSQL, found without importing pgserver (its import warns)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise LocalPostgresError(
            "the `pgserver` package is not installed (run `make install`), or set "
            "QIKFLOW_DATABASE_URL to use an existing PostgreSQL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _server_user() -> str | None:
    """None to run as ourselves; under root, the system user that owns the cluster."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        logger.info("running as root: creating system user %s to own PostgreSQL", SYSTEM_USER)
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SYSTEM_USER],
            capture_output=True, text=True, check=False,
        )
        # Exit 9: another process created it meanwhile.
        if result.returncode not in (0, 9):
            raise LocalPostgresError(
                f"PostgreSQL will not run as root and `useradd {SYSTEM_USER}` failed "
                f"({result.stderr.strip()}); run as a non-root user ({getpass.getuser()} now) "
                "or set QIKFLOW_DATABASE_URL"
            ) from None
    return SYSTEM_USER


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0

