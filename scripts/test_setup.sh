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

# --- Java client example (tests/java): Debian's protoc, grpc-java plugin and jars ---
# Installs what scripts/java_offline_build.sh needs when any of it is missing; quiet and idempotent.
# Set LINGTING_SKIP_JAVA=1 to skip (tests/java then skips).
JAVA_BUILD_PACKAGES=(protobuf-compiler libprotobuf-dev protobuf-compiler-grpc-java-plugin libprotobuf-java
    libgrpc-java libnetty-java libperfmark-java libguava-java libgeronimo-annotation-1.3-spec-java)

install_java_build_deps() {
    [[ "${LINGTING_SKIP_JAVA:-}" == "1" ]] && return 0
    local missing=() pkg
    for pkg in "${JAVA_BUILD_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    command -v javac >/dev/null || missing+=(default-jdk-headless)
    ((${#missing[@]} == 0)) && return 0
    if ! command -v apt-get >/dev/null; then
        log "no apt-get: cannot install ${missing[*]}; java tests will skip"
        return 0
    fi
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { log "not root and no sudo: cannot install ${missing[*]}"; return 0; }
        sudo=(sudo -n)
    fi
    log "installing ${missing[*]}"
    local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
    if ! "${install[@]}" "${missing[@]}" >/dev/null 2>&1; then
        # Stale or empty package lists (a fresh container): refresh once and retry.
        "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true
        "${install[@]}" "${missing[@]}" >/dev/null 2>&1 || log "could not install ${missing[*]}; java tests will skip"
    fi
    return 0
}

install_java_build_deps
