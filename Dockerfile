# hajimi container image — a drop-in replacement for HAJIMI's image: same port (7860), same
# settings volume (/hajimi/settings), configuration from the environment (or /hajimi/.env).
#
#   docker build -t hajimi:latest .
#   docker run -d -p 7860:7860 --env-file .env -v "$PWD/settings:/hajimi/settings" hajimi:latest
#
# See docs/deployment.md. Plain Dockerfile syntax on purpose (no BuildKit-only flags), so the
# hosted builders of Hugging Face, Render, Zeabur … build it as they are.

ARG RUST_VERSION=1.95

# ---- build: the README's release build, product package only (not tools/mock-gemini) ----
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The whole context (minus .dockerignore): Cargo needs every workspace member's manifest, and
# sources may embed files from outside src/.
COPY . .
# make: jemalloc (the allocator of glibc builds) is compiled from C along the way.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*
RUN cargo build --release --locked -p hajimi

# ---- runtime: Debian slim (same glibc as the builder), non-root ----
FROM debian:bookworm-slim

# ca-certificates: the system trust store, also for corporate/TLS-inspecting proxies (without
# it hajimi would fall back to its bundled Mozilla roots). Nothing else is installed:
# - privileges are dropped with setpriv (util-linux, already in every Debian image);
# - the health check uses bash's /dev/tcp (bash is already there) instead of curl, which would
#   add ~10 MB of libraries to the image for one request.
COPY docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && chmod 0755 /usr/local/bin/docker-entrypoint.sh \
 && groupadd --gid 10001 hajimi \
 && useradd --uid 10001 --gid hajimi --no-log-init --no-create-home --home-dir /hajimi \
      --shell /usr/sbin/nologin hajimi \
 && mkdir -p /hajimi/settings \
 && chown -R hajimi:hajimi /hajimi

COPY --from=build /src/target/release/hajimi /usr/local/bin/hajimi

# Working directory: a .env mounted at /hajimi/.env is read. No ENV for hajimi's settings here:
# an image-level ENV would outrank the values in that .env (default < .env < environment).
WORKDIR /hajimi
# HAJIMI's volume: settings.json found here is imported; the database is kept here.
VOLUME ["/hajimi/settings"]
EXPOSE 7860

# GET /health answers 200 once the server listens. Exec form with bash (not /bin/sh = dash) for
# /dev/tcp; PORT is the container's environment (7860 unless the platform sets it).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/\"${PORT:-7860}\" && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]

# The entrypoint runs as root only long enough to give a root-owned (HAJIMI) volume to uid
# 10001, then runs hajimi as that user; hajimi drains in-flight requests for up to 30 s on
# SIGTERM, so stop with a grace period above that (docker stop -t 35, compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["hajimi"]
