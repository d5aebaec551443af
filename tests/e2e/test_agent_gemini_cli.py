"""Gemini CLI (`@google/gemini-cli`, pinned in tests/agents/gemini-cli) headless against
hajimi's native Gemini routes: `GOOGLE_GEMINI_BASE_URL` is hajimi, the API key is hajimi's
password, and its request reaches the mock as Gemini CLI wrote it.

`HAJIMI_RECORD_AGENTS=1` writes the request Gemini CLI sent to
tests/fixtures/gemini/streamGenerateContent.request.gemini-cli-<version>.json (unit tests
read it).
"""

from __future__ import annotations

import json
import subprocess

from agent_npm import FIXTURES, agent_env, install, recording
from conftest import Gateway, rule, text_reply

VERSION = "0.61.0"
FLASH = "gemini-2.5-flash"
RUN_TIMEOUT_S = 300
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
}


def test_gemini_cli_answers_through_the_native_routes(gateway: Gateway, tmp_path):
    gemini = install("gemini-cli", "gemini")
    home, work = tmp_path / "home", tmp_path / "work"
    (home / ".gemini").mkdir(parents=True)
    work.mkdir()
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
    gateway.add_rules(rule(text_reply("Bonjour from Gemini, through hajimi."), model=FLASH))
    env = agent_env(
        home,
        GOOGLE_GEMINI_BASE_URL=gateway.url,
        GEMINI_API_KEY=gateway.password,
        # Headless runs need the folder trusted (Gemini CLI's trusted-folders rule).
        GEMINI_CLI_TRUST_WORKSPACE="true",
    )
    done = subprocess.run(
        [str(gemini), "-p", "Say hello in French", "-m", FLASH, "--output-format", "json"],
        cwd=work, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"gemini exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    result = json.loads(done.stdout)
    assert result["response"] == "Bonjour from Gemini, through hajimi.", result

    calls = gateway.upstream_calls()
    assert len(calls) == 1, [c["path"] for c in calls]
    call = calls[0]
    assert call["path"] == f"/v1beta/models/{FLASH}:streamGenerateContent"
    assert call["query"] == "alt=sse"
    assert call["api_key"] in gateway.keys, "hajimi's credential, never the client's password"
    texts = [p.get("text", "") for c in call["body"]["contents"] for p in c["parts"]]
    assert any("Say hello in French" in t for t in texts)

    if recording():
        path = FIXTURES / "gemini" / f"streamGenerateContent.request.gemini-cli-{VERSION}.json"
        path.write_text(json.dumps(call["body"], indent=2, ensure_ascii=False) + "\n")
