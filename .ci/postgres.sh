#!/usr/bin/env bash
# Sourced by .ci/run: a throwaway PostgreSQL for the tests (store/budget/claims on PostgreSQL, the Prefect
# server of the integration test). Installs Debian's postgresql when the server binaries are missing, runs
# initdb into a temp dir as an unprivileged user (PostgreSQL refuses root), starts it on a free port, exports
# TOME_TEST_POSTGRES_URL and TOME_CI=1 (PostgreSQL tests then fail instead of skipping), stops it on exit.

tome_pg_bindir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return
  fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

TOME_PG_BIN="$(tome_pg_bindir)"
if [ -z "$TOME_PG_BIN" ] || [ ! -x "$TOME_PG_BIN/initdb" ]; then
  echo "ci: installing PostgreSQL (Debian's postgresql)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  TOME_PG_BIN="$(tome_pg_bindir)"
fi

TOME_PG_USER=""
if [ "$(id -u)" = 0 ]; then
  if id postgres >/dev/null 2>&1; then TOME_PG_USER=postgres; else TOME_PG_USER=nobody; fi
fi
tome_pg_as() { if [ -n "$TOME_PG_USER" ]; then runuser -u "$TOME_PG_USER" -- "$@"; else "$@"; fi; }

TOME_PG_DIR="$(mktemp -d /tmp/tome-ci-pg.XXXXXX)"
[ -n "$TOME_PG_USER" ] && chown "$TOME_PG_USER" "$TOME_PG_DIR"
TOME_PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd "$TOME_PG_DIR" && tome_pg_as "$TOME_PG_BIN/initdb" -D "$TOME_PG_DIR/data" -U tome -A trust -E UTF8 --no-sync >/dev/null)
(cd "$TOME_PG_DIR" && tome_pg_as "$TOME_PG_BIN/pg_ctl" -D "$TOME_PG_DIR/data" -l "$TOME_PG_DIR/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$TOME_PG_PORT -c unix_socket_directories='' -c fsync=off -c max_connections=300" \
  start >/dev/null)

tome_pg_stop() {
  (cd "$TOME_PG_DIR" && tome_pg_as "$TOME_PG_BIN/pg_ctl" -D "$TOME_PG_DIR/data" -m fast -w stop >/dev/null 2>&1) || true
  rm -rf "$TOME_PG_DIR"
}
_tome_pg_prev_trap="$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")"
trap "tome_pg_stop; ${_tome_pg_prev_trap}" EXIT

export TOME_TEST_POSTGRES_URL="postgresql+psycopg://tome@127.0.0.1:${TOME_PG_PORT}/postgres"
export TOME_CI=1
echo "ci: PostgreSQL $("$TOME_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$TOME_PG_PORT" >&2
