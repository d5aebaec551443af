"""Real coding agents for the end-to-end tests: each is an npm package pinned by a
`package.json` and `package-lock.json` under tests/agents/<name>/, installed there with
`npm ci` (a local prefix: nothing global) the first time a test needs it, and again only
when its lock file changes.

When npm is not installed or its registry cannot be reached, the agent's tests are skipped
with that reason (pytest prints it with `-rs`, as scripts/e2e.sh runs it); any other install
failure fails the test. `HAJIMI_RECORD_AGENTS=1` makes the tests write what the agents sent
into tests/fixtures/ (see each test).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

AGENTS = Path(__file__).resolve().parents[1] / "agents"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INSTALL_TIMEOUT_S = 600
PING_TIMEOUT_S = 30


def recording() -> bool:
    return os.environ.get("HAJIMI_RECORD_AGENTS") == "1"


def _npm_env() -> dict[str, str]:
    # No update notices, no funding or audit calls: only the registry downloads.
    return os.environ | {"npm_config_update_notifier": "false", "npm_config_fund": "false",
                         "npm_config_audit": "false"}


def install(name: str, binary: str) -> Path:
    """The path of `binary` from the agent `name` (tests/agents/<name>), installed if needed;
    skips the calling test when npm cannot be used."""
    folder = AGENTS / name
    lock = folder / "package-lock.json"
    want = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = folder / "node_modules" / ".hajimi-lock.sha256"
    exe = folder / "node_modules" / ".bin" / binary
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return exe
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip(f"{name}: npm is not installed, so the agent cannot be installed")
    try:
        ping = subprocess.run([npm, "ping", "--fetch-retries=0", "--fetch-timeout=15000"],
                              capture_output=True, text=True, timeout=PING_TIMEOUT_S, env=_npm_env(),
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.skip(f"{name}: the npm registry is unreachable (no answer to `npm ping` in {PING_TIMEOUT_S} s)")
    if ping.returncode != 0:
        lines = [l.strip() for l in (ping.stderr + ping.stdout).splitlines() if "complete log" not in l]
        errors = [l for l in lines if "error" in l.lower()] or [l for l in lines if l]
        reason = errors[0] if errors else f"`npm ping` exited {ping.returncode}"
        pytest.skip(f"{name}: the npm registry is unreachable ({reason})")
    started = time.monotonic()
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                          capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=_npm_env(),
                          check=False)
    assert done.returncode == 0, f"npm ci in {folder} failed:\n{done.stdout}\n{done.stderr}"
    assert exe.exists(), f"{exe} missing after npm ci"
    stamp.write_text(want)
    print(f"\n{name}: installed with npm ci in {time.monotonic() - started:.1f} s")
    return exe


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment for an agent: PATH (for node), a temporary HOME, no proxy
    settings from the machine, no colours."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "TMPDIR") if k in os.environ}
    return env | {"HOME": str(home), "NO_COLOR": "1"} | extra
