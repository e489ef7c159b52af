#!/usr/bin/env python3
"""Generate the Python stubs of the Lingting contract into the top-level ``lingting/`` package.

Run from anywhere (``make proto`` calls it). Output, git-ignored and rebuilt from scratch each time:
``lingting/asr/v1/*_pb2.py``, ``*_pb2.pyi``, ``*_pb2_grpc.py`` plus ``__init__.py`` files, so that
``from lingting.asr.v1 import recognition_service_pb2`` works. The standard Google protos
(``google/protobuf/*``, ``google/rpc/*``) are resolved from the installed grpcio-tools and
googleapis-common-protos packages; their generated modules ship with protobuf and
googleapis-common-protos, so nothing of Google's is generated here.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = REPO_ROOT / "proto"
PACKAGE = "lingting"


def _include_dirs() -> list[Path]:
    """Import roots: our protos, grpc_tools' bundled well-known types, googleapis-common-protos."""
    import google.rpc.status_pb2 as status_pb2

    well_known = Path(str(resources.files("grpc_tools") / "_proto"))
    # google/rpc/status.proto ships next to its generated module: site-packages/google/rpc/.
    googleapis = Path(status_pb2.__file__).resolve().parents[2]
    return [PROTO_ROOT, well_known, googleapis]


def generate(out_dir: Path) -> list[Path]:
    """Generate stubs for every ``proto/lingting/**/*.proto`` into ``out_dir``; returns the .proto files."""
    from grpc_tools import protoc

    sources = sorted(p for p in (PROTO_ROOT / PACKAGE).rglob("*.proto"))
    if not sources:
        raise SystemExit(f"no .proto files under {PROTO_ROOT / PACKAGE}")
    target = out_dir / PACKAGE
    if target.exists():
        shutil.rmtree(target)
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc", *(f"-I{d}" for d in _include_dirs())]
    args += [f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}"]
    args += [str(p.relative_to(PROTO_ROOT)) for p in sources]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    for directory in [target, *(d for d in target.rglob("*") if d.is_dir())]:
        init = directory / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated from proto/ by scripts/gen_proto.py; do not edit."""\n')
    return sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="directory that receives lingting/")
    ns = parser.parse_args(argv)
    sources = generate(ns.out.resolve())
    print(f"generated stubs for {len(sources)} proto files into {ns.out / PACKAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
