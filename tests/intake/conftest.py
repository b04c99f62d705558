"""A real intake server on a loopback port (uvicorn in a thread) over a SQLite journal and a
real SQLite target."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from console.config import Settings, TargetConfig
from console.intake import tokens
from console.intake.app import Config, create_app
from console.journal import Journal
from tests.engine.helpers import make_items


@dataclass
class Server:
    base: str
    journal_url: str
    target_url: str
    token: str
    config: Config

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        secret = self.token if token is None else token
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30, **kw)

    def journal(self, actor: str = "admin") -> Journal:
        return Journal(self.journal_url, actor=actor)

    def wait_status(
        self, run_id: str, statuses: tuple[str, ...], timeout: float = 15, poll: float = 0.2
    ) -> Any:
        with self.client() as c:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = c.get(f"/runs/{run_id}").json()
                if data["status"] in statuses:
                    return data
                time.sleep(poll)  # 0.2: under the default rate limit of 5 per second
        raise AssertionError(f"run {run_id} stayed {data['status']}")


ServerFactory = Callable[..., Server]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def factory(settings: Settings | None = None, rows: int = 20, **limits: Any) -> Server:
        n = len(started)
        journal_url = f"sqlite:///{tmp_path / f'journal{n}.db'}"
        target_url = f"sqlite:///{tmp_path / f'target{n}.db'}"
        make_items(target_url, rows)
        j = Journal(journal_url, actor="admin")
        secret = tokens.create(j, "n8n-prices", "automation", "alice")
        j.close()
        # The intake writes only to configured targets: this server's target is "crm".
        base = settings or Settings()
        targets = {"crm": TargetConfig(url=target_url), **base.targets}
        config = Config(
            journal_url,
            base.model_copy(update={"targets": targets}),
            intake_dir=tmp_path / f"intake{n}",
            **limits,
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        started.append((server, thread))
        return Server(f"http://127.0.0.1:{port}", journal_url, target_url, secret, config)

    yield factory
    for server, thread in started:
        server.should_exit = True
        thread.join(5)
