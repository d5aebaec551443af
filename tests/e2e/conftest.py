"""End-to-end harness: the real `hajimi` binary in front of the `mock-gemini` binary.

One mock and one proxy run for the whole session, each on a random port of 127.0.0.1.
The mock's rules and recorded requests are reset before every test.

Binaries: $HAJIMI_BIN / $MOCK_GEMINI_BIN, else <target>/debug/{hajimi,mock-gemini}, where
<target> is $CARGO_TARGET_DIR or the repository's target/ (`cargo build --bins` makes both).
"""

from __future__ import annotations

import collections
import json
import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import openai
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "e2e-password"
KEYS = [f"AIzaSyTESTKEY{i:026d}" for i in (1, 2, 3)]
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
CONTROL_TIMEOUT_S = 10.0
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")

# Control-API calls go straight to 127.0.0.1, never through a proxy from the environment.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _binary(env_var: str, name: str) -> Path:
    explicit = os.environ.get(env_var)
    if explicit:
        # Relative to where pytest was started: the processes run in a temporary directory.
        path = Path(explicit).absolute()
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
        if not target.is_absolute():
            target = REPO_ROOT / target
        path = target / "debug" / name
    if not path.is_file():
        pytest.exit(f"{name} not found at {path}: run `cargo build --bins` (or set {env_var})", returncode=2)
    return path


class _Process:
    """A child process whose merged stdout/stderr is drained by a thread for its whole life."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: str):
        self.name = name
        self.log: collections.deque[str] = collections.deque(maxlen=500)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        threading.Thread(target=self._drain, name=f"{name}-stdout", daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_url(self) -> str:
        """The base URL from the process's `listening on http://127.0.0.1:PORT` line."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if m := LISTENING.search(line):
                return m.group(1)
        tail = "\n".join(self.log)
        raise RuntimeError(f"{self.name} did not report its address (exit code {self.proc.poll()}):\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)


def rule(reply: dict, *, key: str | None = None, model: str | None = None,
         action: str | None = None, times: int | None = None) -> dict:
    """A mock-gemini Rule; unset matchers match everything."""
    return {"key": key, "model": model, "action": action, "times": times, "reply": reply}


def text_reply(text: str, **options) -> dict:
    """A successful answer; options: chunks, chunk_delay_ms, finish_reason, thought, candidates, …"""
    return {"kind": "text", "text": text, **options}


def preset(name: str) -> dict:
    return {"kind": "preset", "name": name}


@dataclass
class Gateway:
    url: str  # hajimi, http://127.0.0.1:PORT
    mock_url: str
    password: str = PASSWORD
    keys: list[str] = field(default_factory=lambda: list(KEYS))

    def client(self, api_key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=f"{self.url}/v1",
            api_key=api_key if api_key is not None else self.password,
            max_retries=0,
            timeout=30,
            # Straight to 127.0.0.1, never through a proxy from the environment.
            http_client=openai.DefaultHttpxClient(trust_env=False),
        )

    def _control(self, method: str, path: str, payload=None):
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(f"{self.mock_url}/__mock/{path}", data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        with _direct.open(req, timeout=CONTROL_TIMEOUT_S) as r:
            body = r.read()
        return json.loads(body) if body.strip().startswith((b"[", b"{")) else body

    def add_rules(self, *rules: dict) -> None:
        self._control("POST", "rules", list(rules))

    def reset(self) -> None:
        self._control("POST", "reset", {})

    def requests(self) -> list[dict]:
        return self._control("GET", "requests")

    def upstream_calls(self) -> list[dict]:
        """Recorded generateContent / streamGenerateContent requests, in arrival order."""
        return [r for r in self.requests() if r["action"] in ("generateContent", "streamGenerateContent")]


@pytest.fixture(scope="session")
def gateway():
    mock_bin = _binary("MOCK_GEMINI_BIN", "mock-gemini")
    hajimi_bin = _binary("HAJIMI_BIN", "hajimi")
    base_env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR", "RUST_BACKTRACE") if k in os.environ}
    started: list[_Process] = []
    with tempfile.TemporaryDirectory(prefix="hajimi-e2e-") as cwd:
        try:
            mock = _Process("mock-gemini", [str(mock_bin), "--port", "0"], base_env, cwd)
            started.append(mock)
            mock_url = mock.wait_for_url()
            env = base_env | {
                "HOST": "127.0.0.1",
                "PORT": "0",
                "PASSWORD": PASSWORD,
                "GEMINI_API_KEYS": ",".join(KEYS),
                "GEMINI_BASE_URL": mock_url,
                "ENABLE_STORAGE": "false",
                "FAKE_STREAMING": "false",
                "RANDOM_STRING": "false",
                "MAX_REQUESTS_PER_MINUTE": "100000",
                "MAX_REQUESTS_PER_DAY_PER_IP": "1000000",
            }
            hajimi = _Process("hajimi", [str(hajimi_bin)], env, cwd)
            started.append(hajimi)
            yield Gateway(url=hajimi.wait_for_url(), mock_url=mock_url)
        finally:
            for p in reversed(started):
                p.stop()


@pytest.fixture(autouse=True)
def _fresh_mock(gateway: Gateway):
    gateway.reset()


@pytest.fixture
def client(gateway: Gateway):
    with gateway.client() as c:
        yield c
