#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (real server, mock Gemini), then the
# end-to-end tests that drive the proxy with the official OpenAI Python SDK.
set -euo pipefail
cd "$(dirname "$0")/.."

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc --quiet
else
  cargo test --workspace --no-fail-fast
fi

scripts/e2e.sh
