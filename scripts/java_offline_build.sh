#!/usr/bin/env bash
# Builds java_client_example/ without Maven: Debian's protoc + grpc-java plugin, then javac.
# The users' pom.xml needs Maven Central; CI has none, so the test suite builds the same sources
# this way (see ../shared/notes/java-offline.md for why these packages and flags).
#
#   scripts/java_offline_build.sh [BUILD_DIR]     (default: java_client_example/target/offline)
#
# Writes BUILD_DIR/classes and BUILD_DIR/classpath (one line: the runtime -cp value), and prints
# the classpath. Fails with a clear message when a Debian package is missing
# (scripts/test_setup.sh installs them).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$(mkdir -p "${1:-$REPO_ROOT/java_client_example/target/offline}" && cd "${1:-$REPO_ROOT/java_client_example/target/offline}" && pwd)
JARS=/usr/share/java
PLUGIN=${GRPC_JAVA_PLUGIN:-/usr/bin/grpc_java_plugin}
PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
FAST_JVM=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC)

die() { echo "java_offline_build: $*" >&2; exit 1; }

command -v protoc >/dev/null || die "protoc missing (apt-get install protobuf-compiler libprotobuf-dev)"
command -v javac >/dev/null || die "javac missing (a JDK 17+)"
[[ -x "$PLUGIN" ]] || die "$PLUGIN missing (apt-get install protobuf-compiler-grpc-java-plugin)"
[[ -f /usr/include/google/protobuf/timestamp.proto ]] || die "well-known protos missing (apt-get install libprotobuf-dev)"

# Compile time: protobuf + grpc + the javax.annotation.Generated the 1.41 plugin emits.
COMPILE_JARS=(protobuf grpc-api grpc-context grpc-stub grpc-protobuf grpc-protobuf-lite guava geronimo-annotation-1.3-spec)
# Run time: the transport and what libgrpc-java forgets to depend on (netty, perfmark, guava).
RUNTIME_JARS=(grpc-core grpc-netty perfmark-api netty-common netty-buffer netty-transport netty-resolver
              netty-codec netty-codec-http netty-codec-http2 netty-handler)
jar_path() { # names... -> colon-joined paths
    local out="" name
    for name in "$@"; do
        [[ -f "$JARS/$name.jar" ]] || die "$JARS/$name.jar missing (see scripts/test_setup.sh for the packages)"
        out+="${out:+:}$JARS/$name.jar"
    done
    echo "$out"
}
COMPILE_CP=$(jar_path "${COMPILE_JARS[@]}")
RUNTIME_CP=$(jar_path "${COMPILE_JARS[@]}" "${RUNTIME_JARS[@]}")

# google/rpc/{status,error_details}.proto: Debian ships no Java classes for them, so generate
# them from the copies googleapis-common-protos installs next to its Python modules.
GOOGLE_RPC=$("$PYTHON" -c 'import pathlib, google.rpc.status_pb2 as m; print(pathlib.Path(m.__file__).parent)') \
    || die "cannot locate googleapis-common-protos with $PYTHON"
rm -rf "$BUILD_DIR/include" "$BUILD_DIR/gen" "$BUILD_DIR/classes"
mkdir -p "$BUILD_DIR/include/google/rpc" "$BUILD_DIR/gen" "$BUILD_DIR/classes"
cp "$GOOGLE_RPC/status.proto" "$GOOGLE_RPC/error_details.proto" "$BUILD_DIR/include/google/rpc/"

mapfile -t PROTOS < <(cd "$REPO_ROOT/proto" && find lingting -name '*.proto' | sort)
((${#PROTOS[@]})) || die "no .proto files under $REPO_ROOT/proto/lingting"
INCLUDES=(-I "$REPO_ROOT/proto" -I "$BUILD_DIR/include" -I /usr/include)
protoc "${INCLUDES[@]}" --java_out="$BUILD_DIR/gen" google/rpc/status.proto google/rpc/error_details.proto
protoc "${INCLUDES[@]}" --plugin=protoc-gen-grpc-java="$PLUGIN" \
    --java_out="$BUILD_DIR/gen" --grpc-java_out="$BUILD_DIR/gen" "${PROTOS[@]}"

find "$BUILD_DIR/gen" "$REPO_ROOT/java_client_example/src/main/java" -name '*.java' > "$BUILD_DIR/sources.txt"
javac --release 17 -nowarn -encoding UTF-8 "${FAST_JVM[@]/#/-J}" \
    -cp "$COMPILE_CP" -d "$BUILD_DIR/classes" @"$BUILD_DIR/sources.txt"

echo "$BUILD_DIR/classes:$RUNTIME_CP" > "$BUILD_DIR/classpath"
cat "$BUILD_DIR/classpath"
