#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the store's tests and the
# benchmarks (see internal/store's doc). Idempotent: what already runs is left
# alone, what is missing is installed, created or started.
#
#   hack/postgres.sh up     # install if needed, start; prints the DSN
#   hack/postgres.sh env    # prints: export TRELLIS_TEST_POSTGRES=<DSN>
#   hack/postgres.sh down   # stop the server this script started, remove its state
#
# The server runs as the system user trellis-pg (created when missing) from a data
# directory under the state dir, listens on 127.0.0.1 only (no Unix socket outside
# the state dir), and trusts local TCP connections: it is for tests, not for data
# anyone keeps. The DSN of its database "trellis" (role "trellis", which may create
# schemas and databases) is written to $S/dsn.
#
# Environment: TRELLIS_PG_DIR (state, default /tmp/trellis-pg), TRELLIS_PG_PORT
# (25432: below Linux's ephemeral range, so no client socket holds it),
# TRELLIS_PG_SKIP_APT=1 (do not apt-get install).
set -euo pipefail

S="${TRELLIS_PG_DIR:-/tmp/trellis-pg}"
PORT="${TRELLIS_PG_PORT:-25432}"
PGUSER_OS=trellis-pg
DATA="$S/data"
SOCK="$S/sock"
LOGS="$S/log" # the server's log, written by the server's user
DSN="postgres://trellis@127.0.0.1:$PORT/trellis?sslmode=disable"

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() {
	echo "${0##*/}: error: $*" >&2
	exit 1
}
need_root() { [[ $(id -u) == 0 ]] || die "must run as root (it installs packages and runs the server as $PGUSER_OS)"; }

# bindir: the newest installed server's binaries (initdb, pg_ctl, postgres).
bindir() {
	local d
	d=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
	[[ -n $d && -x $d/initdb && -x $d/pg_ctl ]] || return 1
	echo "$d"
}

as_pg() { runuser -u "$PGUSER_OS" -- "$@"; }

# running: the server recorded in $DATA/postmaster.pid is alive and is a postgres.
running() {
	local pid
	[[ -f $DATA/postmaster.pid ]] || return 1
	pid=$(head -1 "$DATA/postmaster.pid")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]]
}

# ready: the server answers on loopback and the database exists.
ready() {
	local bin
	bin=$(bindir) || return 1
	as_pg "$bin/psql" -X -q -h 127.0.0.1 -p "$PORT" -U trellis -d trellis -Atc 'SELECT 1' 2>/dev/null | grep -qx 1
}

up() {
	need_root
	mkdir -p "$S"
	exec 8>"$S/.lock"
	flock -w 120 8 || die "another postgres.sh holds $S/.lock"
	if running && ready; then
		log "postgres already up on 127.0.0.1:$PORT; nothing to do"
		echo "$DSN" >"$S/dsn"
		echo "$DSN"
		return
	fi
	local bin
	if ! bin=$(bindir); then
		[[ ${TRELLIS_PG_SKIP_APT:-} == 1 ]] && die "no PostgreSQL server under /usr/lib/postgresql and TRELLIS_PG_SKIP_APT=1"
		log "installing Debian's postgresql"
		apt-get update -qq
		# Debian's package starts and enables its own cluster; this script uses none of it.
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
		bin=$(bindir) || die "apt-get installed postgresql but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
	fi
	if ! id "$PGUSER_OS" >/dev/null 2>&1; then
		log "creating system user $PGUSER_OS"
		useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
	fi
	chmod 0755 "$S"
	mkdir -p "$SOCK" "$LOGS"
	chown "$PGUSER_OS:" "$SOCK" "$LOGS"
	if [[ ! -s $DATA/PG_VERSION ]]; then
		rm -rf --one-file-system "$DATA"
		install -d -o "$PGUSER_OS" -m 0700 "$DATA"
		log "initdb $DATA"
		as_pg "$bin/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$S/initdb.log" 2>&1 ||
			die "initdb failed: $(tail -5 "$S/initdb.log")"
		cat >>"$DATA/postgresql.conf" <<-EOF
			# hack/postgres.sh
			listen_addresses = '127.0.0.1'
			unix_socket_directories = '$SOCK'
			max_connections = 200
			shared_buffers = 128MB
			fsync = on
		EOF
		# Loopback TCP only; nothing else is accepted.
		cat >"$DATA/pg_hba.conf" <<-EOF
			local all all trust
			host all all 127.0.0.1/32 trust
		EOF
	fi
	if ! running; then
		log "starting postgres on 127.0.0.1:$PORT"
		as_pg "$bin/pg_ctl" -D "$DATA" -l "$LOGS/postgres.log" -o "-p $PORT" -w -t 60 start >/dev/null 8>&- ||
			die "pg_ctl start failed: $(tail -5 "$LOGS/postgres.log")"
	fi
	local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres)
	if [[ $(as_pg "${psql[@]}" -Atc "SELECT 1 FROM pg_roles WHERE rolname = 'trellis'") != 1 ]]; then
		as_pg "${psql[@]}" -c "CREATE ROLE trellis LOGIN CREATEDB"
	fi
	if [[ $(as_pg "${psql[@]}" -Atc "SELECT 1 FROM pg_database WHERE datname = 'trellis'") != 1 ]]; then
		as_pg "${psql[@]}" -c "CREATE DATABASE trellis OWNER trellis"
	fi
	ready || die "postgres started but database trellis does not answer on 127.0.0.1:$PORT"
	echo "$DSN" >"$S/dsn"
	log "postgres up on 127.0.0.1:$PORT (data $DATA, DSN in $S/dsn)"
	echo "$DSN"
}

down() {
	need_root
	[[ -d $S ]] || {
		log "no state dir $S; nothing to do"
		return
	}
	exec 8>"$S/.lock"
	flock -w 120 8 || die "another postgres.sh holds $S/.lock"
	if running; then
		local bin
		bin=$(bindir) || die "a server runs from $DATA but no pg_ctl is installed"
		log "stopping postgres (pid $(head -1 "$DATA/postmaster.pid"))"
		as_pg "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
	fi
	rm -rf --one-file-system "$DATA" "$SOCK" "$LOGS" "$S/dsn" "$S/initdb.log"
	rm -f "$S/.lock"
	rmdir "$S" 2>/dev/null || true
	log "postgres down; $S removed"
}

case "${1:-}" in
up) up ;;
down) down ;;
env)
	[[ -s $S/dsn ]] || die "not up: run hack/postgres.sh up"
	echo "export TRELLIS_TEST_POSTGRES=$(<"$S/dsn")"
	;;
*) die "usage: ${0##*/} up|down|env" ;;
esac
