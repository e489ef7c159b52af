#!/usr/bin/env bash
# buf lint (STANDARD + COMMENTS) of proto/, offline: buf from the npm registry (pinned), and the googleapis
# files we import taken from the venv's googleapis-common-protos instead of the buf.build registry.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=1.75.0
TOOLS=.tools/buf
if [ ! -x "$TOOLS/node_modules/.bin/buf" ]; then
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && npm install --silent --no-audit --no-fund "@bufbuild/buf@$BUF_VERSION" >/dev/null)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/deps/google/rpc"
cp -r proto "$work/proto"
rm -f "$work/proto/buf.yaml"
site=$(.venv/bin/python -c "import google.rpc.status_pb2 as m, os; print(os.path.dirname(m.__file__))")
cp "$site"/status.proto "$site"/error_details.proto "$work/deps/google/rpc/"
cat > "$work/buf.yaml" <<'YAML'
version: v2
modules:
  - path: proto
    lint:
      use: [STANDARD, COMMENTS]
  - path: deps
    lint:
      use: [MINIMAL]
      ignore: [deps/google]
YAML
(cd "$work" && "$OLDPWD/$TOOLS/node_modules/.bin/buf" lint)
