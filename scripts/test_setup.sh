#!/usr/bin/env bash
# Prepares this machine for `make test`: the database servers the integration tests use.
# Idempotent and quiet: does nothing when PostgreSQL (127.0.0.1:5432) and MariaDB
# (127.0.0.1:3306) already accept connections; otherwise starts them and waits (about 30 s max).
# Set LINGTING_SKIP_EXTERNAL_DB=1 to skip (the db tests then skip instead of failing).
set -uo pipefail

log() { echo "test_setup: $*" >&2; }

port_open() { # host port
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- 3<&-
}

wait_for_port() { # name host port seconds
    local name=$1 host=$2 port=$3 deadline=$((SECONDS + $4))
    while ((SECONDS < deadline)); do
        port_open "$host" "$port" && return 0
        sleep 0.5
    done
    log "$name is not accepting connections on $host:$port"
    return 1
}

start_postgresql() {
    port_open 127.0.0.1 5432 && return 0
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [[ -z "$version" ]] || ! command -v pg_ctlcluster >/dev/null; then
        log "PostgreSQL is not installed"
        return 1
    fi
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
    wait_for_port PostgreSQL 127.0.0.1 5432 30
}

start_mariadb() {
    port_open 127.0.0.1 3306 && return 0
    if [[ ! -x /usr/sbin/mariadbd ]]; then
        log "MariaDB is not installed"
        return 1
    fi
    log "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >/dev/null 2>&1 || true
    wait_for_port MariaDB 127.0.0.1 3306 30
}

main() {
    if [[ "${LINGTING_SKIP_EXTERNAL_DB:-}" == "1" ]]; then
        return 0
    fi
    local status=0
    start_postgresql || status=1
    start_mariadb || status=1
    if ((status != 0)); then
        log "some database servers are down; db tests will fail (set LINGTING_SKIP_EXTERNAL_DB=1 to skip them)"
    fi
    return 0
}

main "$@"
