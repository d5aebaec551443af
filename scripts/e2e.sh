#!/usr/bin/env bash
# End-to-end tests: the official OpenAI, Anthropic and Google Python SDKs and real coding
# agents (Claude Code, Codex CLI, Gemini CLI; pinned under tests/agents/, installed there with npm ci
# on first use), and the web dashboard in Debian's chromium (selenium + chromedriver; skipped when absent),
# against the real hajimi binary, with mock-gemini as the upstream (tests/e2e). Extra arguments go to pytest, e.g. `-k stream -v`.
#
# Uses a virtualenv at .venv in the repository root (made on first use; packages reinstalled
# only when tests/e2e/requirements.txt changes) and the debug binaries (`cargo build`).
# PYTHON picks the interpreter that makes the venv (default python3, 3.10 or newer).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="$root/.venv"
requirements="tests/e2e/requirements.txt"
python="${PYTHON:-python3}"

die() {
    echo "e2e: $*" >&2
    exit 1
}

make_venv() {
    command -v "$python" >/dev/null || die "$python not found; install Python 3.10 or newer (or set PYTHON)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$python is $("$python" -V 2>&1); the OpenAI SDK needs Python 3.10 or newer (set PYTHON)"
    "$python" -c 'import venv, ensurepip' 2>/dev/null ||
        die "$python cannot make a virtualenv with pip (no venv/ensurepip module); on Debian/Ubuntu: apt-get install python3-venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
}

# A venv whose interpreter no longer runs (Python upgraded or removed) is made again.
if ! "$venv/bin/python" -c '' 2>/dev/null; then
    echo "e2e: creating $venv"
    make_venv
    rm -f "$venv/.e2e-requirements.sha256"
fi

stamp="$venv/.e2e-requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "e2e: installing $requirements"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
fi

cargo build --bins -p hajimi -p mock-gemini

# -rs: a skipped test (an agent when npm is unreachable) is listed with its reason.
exec "$venv/bin/python" -m pytest -q -rs tests/e2e "$@"
