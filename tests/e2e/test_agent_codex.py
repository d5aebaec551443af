"""A real coding agent through the Responses dialect: OpenAI's Codex CLI (`codex exec`), with a
provider whose base URL is hajimi and `wire_api = "responses"`, completes a task that needs one
tool call. The mock is scripted to call Codex's shell tool (`exec_command`) on Gemini 3 (so the
call carries a thought signature), then to answer with a final text.

Codex is pinned by tests/agents/codex/{package.json,package-lock.json} and installed there with
`npm ci` by `agent_npm.install` (reused while the lock file is unchanged). When npm or its
registry cannot be reached the test is skipped and says why; any other failure fails.

Codex talks to hajimi through a small recording pass-through, so the test can check what Codex
sent, and `HAJIMI_UPDATE_FIXTURES=1` writes its second request (the tool loop) to
tests/fixtures/openai/, where the unit tests read it.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import subprocess
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest

import agent_npm
from conftest import KEYS, PASSWORD, REPO_ROOT, Gateway, _binary, _Process, rule

MODEL = "gemini-3-pro-preview"
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "openai" / "responses.request.codex-0.171.0.through-hajimi.json"
FILE_TEXT = "hello from the file"
ANSWER = "The file says: hello from the file"
RUN_TIMEOUT_S = 180


@pytest.fixture(scope="session")
def codex() -> Path:
    exe = agent_npm.install("codex", "codex")
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert version.returncode == 0 and "0.171.0" in version.stdout, f"{exe} --version: {version.stdout}{version.stderr}"
    return exe


@pytest.fixture
def fake_streaming(gateway: Gateway):
    """A second hajimi on the same mock with fake streaming (the default) and keep-alives every
    0.3 s."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ} | {
        "HOST": "127.0.0.1",
        "PORT": "0",
        "PASSWORD": PASSWORD,
        "GEMINI_API_KEYS": ",".join(KEYS),
        "GEMINI_BASE_URL": gateway.mock_url,
        "ENABLE_STORAGE": "false",
        "FAKE_STREAMING": "true",
        "FAKE_STREAMING_INTERVAL": "0.3",
        "RANDOM_STRING": "false",
    }
    with tempfile.TemporaryDirectory(prefix="hajimi-e2e-fake-") as cwd:
        proc = _Process("hajimi-fake-streaming", [str(_binary("HAJIMI_BIN", "hajimi"))], env, cwd)
        try:
            yield Gateway(url=proc.wait_for_url(), mock_url=gateway.mock_url)
        finally:
            proc.stop()


class _Recorder:
    """An HTTP pass-through to hajimi that keeps each request (method, path, JSON body)."""

    def __init__(self, target: str):
        self.target = urllib.parse.urlsplit(target)
        self.requests: list[dict] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = body.decode(errors="replace")
                entry = {"method": self.command, "path": self.path, "body": parsed, "answer": b""}
                recorder.requests.append(entry)
                conn = http.client.HTTPConnection(recorder.target.hostname, recorder.target.port, timeout=RUN_TIMEOUT_S)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                upstream = conn.getresponse()
                self.send_response(upstream.status)
                for k, v in upstream.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("connection", "close")
                self.end_headers()
                # Passed on as it arrives (streams stay streams).
                while chunk := upstream.read1(65536):
                    if len(entry["answer"]) < 1 << 20:
                        entry["answer"] += chunk
                    self.wfile.write(chunk)
                    self.wfile.flush()
                conn.close()

            do_GET = do_POST = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_codex_exec_completes_a_task_with_one_tool_call(codex, gateway):
    """Real streams (the e2e proxy's setting); what Codex sent is checked and recordable."""
    loop = _run_codex(codex, gateway, gateway, answer={"kind": "text", "text": ANSWER})["loop"]
    if os.environ.get("HAJIMI_UPDATE_FIXTURES"):
        FIXTURE.write_text(json.dumps(loop, indent=1, ensure_ascii=False) + "\n")


def test_codex_exec_waits_through_keepalives_with_fake_streaming(codex, gateway, fake_streaming):
    """hajimi's default delivery: the final answer takes 1.5 s, sent as one fake stream after
    `: keep-alive` comments, which Codex's SSE reader skips."""
    slow = {"kind": "delay", "ms": 1500, "then": {"kind": "text", "text": ANSWER}}
    answers = _run_codex(codex, fake_streaming, gateway, answer=slow)
    assert b": keep-alive\n\n" in answers[1], answers[1][:500]
    actions = [c["action"] for c in gateway.upstream_calls()]
    assert actions == ["generateContent", "generateContent"], "fake streaming asks for complete answers"


def _run_codex(codex: Path, proxy: Gateway, gateway: Gateway, answer: dict) -> dict:
    """Runs the scripted task through `proxy`; returns Codex's second (tool-loop) request as
    `loop` and the bytes of hajimi's two answers as `0` and `1`."""
    gateway.add_rules(
        rule({"kind": "function_call", "calls": [{"name": "exec_command", "args": {"cmd": "cat hello.txt"}}]}, times=1),
        rule(answer),
    )
    recorder = _Recorder(proxy.url)
    try:
        with tempfile.TemporaryDirectory(prefix="hajimi-codex-") as tmp:
            home, work = Path(tmp) / "home", Path(tmp) / "work"
            home.mkdir()
            work.mkdir()
            (work / "hello.txt").write_text(FILE_TEXT + "\n")
            (home / "config.toml").write_text(
                f'model = "{MODEL}"\n'
                'model_provider = "hajimi"\n'
                "[model_providers.hajimi]\n"
                'name = "hajimi"\n'
                f'base_url = "{recorder.url}/v1"\n'
                'env_key = "HAJIMI_API_KEY"\n'
                'wire_api = "responses"\n'
            )
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(home),
                "CODEX_HOME": str(home),
                "HAJIMI_API_KEY": proxy.password,
                "LANG": "C.UTF-8",
                "NO_PROXY": "127.0.0.1,localhost",
            }
            run = subprocess.run(
                [str(codex), "exec", "--skip-git-repo-check", "--sandbox", "danger-full-access",
                 "Read hello.txt and tell me what it says"],
                cwd=work, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL,
            )
    finally:
        recorder.close()

    log = f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    assert run.returncode == 0, log
    assert ANSWER in run.stdout, log
    assert FILE_TEXT in run.stderr, f"Codex ran the tool: {log}"

    sent = [r for r in recorder.requests if r["method"] == "POST" and r["path"].endswith("/responses")]
    assert len(sent) == 2, [r["path"] for r in recorder.requests]
    loop = sent[1]["body"]
    assert loop["store"] is False and loop["stream"] is True
    items = {item.get("type"): item for item in loop["input"]}
    call, output = items["function_call"], items["function_call_output"]
    assert call["name"] == "exec_command" and output["call_id"] == call["call_id"]
    assert FILE_TEXT in output["output"]
    assert items["reasoning"]["encrypted_content"].startswith("hjm1:"), "the signature rides in encrypted_content"

    upstream = gateway.upstream_calls()
    assert len(upstream) == 2
    model_turn = next(c for c in upstream[1]["body"]["contents"] if c["role"] == "model")
    signed = model_turn["parts"][0]
    assert signed["functionCall"]["name"] == "exec_command"
    assert signed["thoughtSignature"] not in (None, "skip_thought_signature_validator"), "Gemini 3 gets its signature back"
    return {"loop": loop, 0: sent[0]["answer"], 1: sent[1]["answer"]}
