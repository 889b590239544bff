#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite (Debian's `postgresql` package).
#
#   eval "$(scripts/postgres-test-server.sh start)"   # prints: export TEST_POSTGRES_URL=...
#   python -m pytest tests/unit/test_generation_history.py
#   scripts/postgres-test-server.sh stop              # stops it and deletes its files
#
# Other commands: `url` prints the export line of a running server, `status` tells
# whether it runs. The cluster lives in a temporary folder (PGTEST_DIR, default
# ${TMPDIR:-/tmp}/dgx-music-postgres-test), listens only on a unix socket in that
# folder (no TCP port to collide with) unless PGTEST_TCP_PORT is set, in which case it
# listens on 127.0.0.1:PGTEST_TCP_PORT instead. random_page_cost is 1.1, the setting
# PostgreSQL's documentation suggests for SSDs. Authentication is `trust`, fsync is
# off: a server for tests, never for data.
# Run as root, the server runs as the `postgres` user; run as any other user, as that user.
set -euo pipefail

DIR="${PGTEST_DIR:-${TMPDIR:-/tmp}/dgx-music-postgres-test}"
DATA="$DIR/data"
SOCKET_DIR="$DIR/socket"
LOG="$DIR/server.log"
PORT="${PGTEST_TCP_PORT:-5432}"
DB_USER=postgres
MARKER=.dgx-music-postgres-test

log() { printf '%s\n' "postgres-test-server: $*" >&2; }
die() { log "$*"; exit 1; }

find_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then printf '%s\n' "$PG_BIN"; return; fi
    local candidate
    candidate="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [[ -n "$candidate" && -x "$candidate/initdb" ]]; then printf '%s\n' "$candidate"; return; fi
    candidate="$(command -v initdb 2>/dev/null || true)"
    [[ -n "$candidate" ]] || die "initdb not found: install Debian's postgresql package or set PG_BIN"
    dirname "$candidate"
}

BIN="$(find_bin)"

# Run a command as the server's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        id -u postgres >/dev/null 2>&1 || die "no 'postgres' user (install Debian's postgresql package)"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

url() {
    if [[ -n "${PGTEST_TCP_PORT:-}" ]]; then
        printf 'postgresql+psycopg://%s@127.0.0.1:%s/postgres\n' "$DB_USER" "$PORT"
    else
        printf 'postgresql+psycopg://%s@/postgres?host=%s&port=%s\n' "$DB_USER" "$SOCKET_DIR" "$PORT"
    fi
}

print_export() { printf "export TEST_POSTGRES_URL='%s'\n" "$(url)"; }

# Delete the folder only when this script made it (never a folder PGTEST_DIR names by mistake).
remove_dir() {
    [[ -e "$DIR" ]] || return 0
    if [[ -f "$DIR/$MARKER" || -z "$(ls -A "$DIR")" ]]; then
        rm -rf "$DIR"
    else
        die "$DIR exists and was not made by this script; choose another PGTEST_DIR"
    fi
}

running() { [[ -f "$DATA/postmaster.pid" ]] && as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

start() {
    if running; then
        log "already running in $DIR"
        print_export
        return
    fi
    remove_dir
    mkdir -p "$DATA" "$SOCKET_DIR"
    touch "$DIR/$MARKER"
    chmod 700 "$DIR"
    if [[ "$(id -u)" == 0 ]]; then chown -R postgres: "$DIR"; fi
    as_owner "$BIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
        >"$DIR/initdb.log" 2>&1 || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    local listen="''"
    [[ -z "${PGTEST_TCP_PORT:-}" ]] || listen=127.0.0.1
    as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 -o \
        "-c listen_addresses=$listen -p $PORT -k $SOCKET_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 -c random_page_cost=1.1" \
        >&2 || { cat "$LOG" >&2 || true; die "the server did not start"; }
    as_owner "$BIN/pg_isready" -h "$( [[ -n "${PGTEST_TCP_PORT:-}" ]] && echo 127.0.0.1 || echo "$SOCKET_DIR")" \
        -p "$PORT" -U "$DB_USER" -t 30 >&2 || die "the server does not answer"
    log "running in $DIR"
    print_export
}

stop() {
    if running; then
        as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >&2
    fi
    remove_dir
    log "stopped; $DIR removed"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) running || die "not running (run: $0 start)"; print_export ;;
    status) if running; then log "running in $DIR"; else log "not running"; exit 3; fi ;;
    *) printf 'usage: %s start|stop|url|status\n' "$0" >&2; exit 2 ;;
esac
