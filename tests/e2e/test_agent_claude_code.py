"""Claude Code (`@anthropic-ai/claude-code`, pinned in tests/agents/claude-code) headless
against hajimi's Anthropic Messages routes, the mock scripted as Gemini 3.

The task needs one tool call: the mock answers the first turn with a `functionCall` for
Claude Code's Read tool, then a final text once the file's content came back. Run as root
(as CI does), so permissions come from `--allowedTools`, never
`--dangerously-skip-permissions`. Claude Code asks for its own model names; hajimi's
`MODEL_ALIASES` maps them to Gemini, as the README shows. Gemini 3 (the mock too) refuses a
replayed call without the thought signature it issued: Claude Code sends it back inside
its thinking block.

`HAJIMI_RECORD_AGENTS=1` writes what hajimi sent Google for Claude Code's two turns to
tests/fixtures/gemini/ (unit tests read it).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

from agent_npm import FIXTURES, agent_env, install, recording
from conftest import KEYS, PASSWORD, Gateway, _binary, _Process, rule, text_reply

VERSION = "2.1.332"
GEMINI3 = "gemini-3-pro-preview"
ALIASES = "claude-haiku-*=gemini-2.5-flash, claude-*=gemini-3-pro-preview"
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def claude_gateway(gateway: Gateway):
    """A hajimi with MODEL_ALIASES in front of the session's mock."""
    hajimi_bin = _binary("HAJIMI_BIN", "hajimi")
    with tempfile.TemporaryDirectory(prefix="hajimi-agent-") as cwd:
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ} | {
            "HOST": "127.0.0.1",
            "PORT": "0",
            "PASSWORD": PASSWORD,
            "GEMINI_API_KEYS": ",".join(KEYS),
            "GEMINI_BASE_URL": gateway.mock_url,
            "ENABLE_STORAGE": "false",
            "FAKE_STREAMING": "false",
            "RANDOM_STRING": "false",
            "MODEL_ALIASES": ALIASES,
        }
        proc = _Process("hajimi-agents", [str(hajimi_bin)], env, cwd)
        try:
            yield Gateway(url=proc.wait_for_url(), mock_url=gateway.mock_url)
        finally:
            proc.stop()


def test_claude_code_reads_a_file_through_hajimi(claude_gateway: Gateway, tmp_path):
    claude = install("claude-code", "claude")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    secret = "purple elephants dance at noon"
    (work / "hello.txt").write_text(secret + "\n")
    claude_gateway.add_rules(
        rule({"kind": "function_call", "calls": [{"name": "Read", "args": {"file_path": str(work / "hello.txt")}}]},
             model=GEMINI3, times=1),
        rule(text_reply(f"The file says: {secret}."), model=GEMINI3),
    )
    env = agent_env(
        home,
        ANTHROPIC_BASE_URL=claude_gateway.url,
        ANTHROPIC_API_KEY=PASSWORD,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
    )
    done = subprocess.run(
        [str(claude), "-p", "Read hello.txt and tell me what it says", "--allowedTools", "Read",
         "--output-format", "json"],
        cwd=work, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"claude exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    result = json.loads(done.stdout)
    assert result["is_error"] is False, result
    assert result["num_turns"] == 2, result
    assert result["result"] == f"The file says: {secret}.", result

    calls = [c for c in claude_gateway.upstream_calls() if c["model"] == GEMINI3]
    assert len(calls) == 2, [c["path"] for c in calls]
    turns = calls[1]["body"]["contents"]
    call_part = turns[-2]["parts"][-1]
    assert call_part["functionCall"]["name"] == "Read"
    assert call_part["thoughtSignature"], "the signature came back inside Claude Code's thinking block"
    response = turns[-1]["parts"][0]["functionResponse"]
    assert response["name"] == "Read"
    assert secret in json.dumps(response["response"]), "the tool really ran"
    declared = [d["name"] for d in calls[0]["body"]["tools"][0]["functionDeclarations"]]
    assert "Read" in declared and "Bash" in declared

    if recording():
        for n, call in enumerate(calls, start=1):
            path = FIXTURES / "gemini" / f"streamGenerateContent.request.claude-code-{VERSION}.via-hajimi.turn{n}.json"
            path.write_text(json.dumps(call["body"], indent=2, ensure_ascii=False) + "\n")
