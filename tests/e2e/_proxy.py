"""Caddy from Debian's package, run with the project's own `deploy/Caddyfile` in front of
the ingest replicas, as `compose.yaml` runs it (plain HTTP on a local port)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CADDYFILE = REPO / "deploy" / "Caddyfile"


@dataclass
class Caddy:
    port: int
    upstreams: list[int]
    root: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout_s: float = 20.0) -> None:
        binary = shutil.which("caddy")
        assert binary, "caddy is not installed: `make test` installs it from Debian's archive"
        self.root.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PROXY_SITE_ADDRESS": f":{self.port}",
            "INGEST_UPSTREAMS": " ".join(f"127.0.0.1:{port}" for port in self.upstreams),
            # Caddy keeps its state under $HOME/.local/share and $XDG_CONFIG_HOME.
            "HOME": str(self.root), "XDG_DATA_HOME": str(self.root / "data"),
            "XDG_CONFIG_HOME": str(self.root / "config"),
        }
        log = (self.root / "caddy.log").open("wb")
        self.process = subprocess.Popen(
            [binary, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            assert self.process.poll() is None, (self.root / "caddy.log").read_text()[-2000:]
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                assert asyncio.get_running_loop().time() < deadline, "caddy did not listen"
                await asyncio.sleep(0.1)
                continue
            writer.close()
            await writer.wait_closed()
            return

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
