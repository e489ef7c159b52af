"""Put a trained model into the package: join the weight parts, add tokenizer, log and samples.

    python -m recipes.bundled_model.install --parts /work/.device/N --meta meta.tgz --text .dev/gpu/text \
        --dest asr_engine/bundled/lingting-mini
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tarfile
from pathlib import Path

from recipes.bundled_model.export import BPE_NAME


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--parts", type=Path, required=True, help="folder with model.safetensors.part_* and meta.tgz"
    )
    ap.add_argument("--text", type=Path, required=True)
    ap.add_argument("--dest", type=Path, required=True)
    ap.add_argument("--sha256", default=None, help="expected hash of the joined weights")
    args = ap.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(args.parts / "meta.tgz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name in ("am.mvn", "config.yaml", "configuration.json", "train_log.txt"):
                data = tar.extractfile(member)
                assert data is not None
                (args.dest / name).write_bytes(data.read())
    blob = b"".join(p.read_bytes() for p in sorted(args.parts.glob("model.safetensors.part_*")))
    digest = hashlib.sha256(blob).hexdigest()
    if args.sha256 and digest != args.sha256:
        raise SystemExit(f"weights hash {digest} != expected {args.sha256}")
    (args.dest / "model.safetensors").write_bytes(blob)
    shutil.copyfile(args.text / BPE_NAME, args.dest / BPE_NAME)
    print(f"installed {args.dest} (model.safetensors sha256 {digest})")


if __name__ == "__main__":
    main()
