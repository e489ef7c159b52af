"""Choose the better of several training runs by held-out error (mean of English WER and Mandarin CER).

    python -m recipes.bundled_model.pick --runs /tmp/runA /tmp/runB --out $OUT
Copies the winner's model directory to OUT/lingting-mini and writes OUT/eval_gpu.json with every run's
results; the other runs' logs go to OUT/other_runs_log.txt.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def score(run: Path) -> float:
    try:
        res = json.loads((run / "eval_gpu.json").read_text(encoding="utf-8"))
        return (res["test_en/en"]["rate"] + res["test_zh/zh"]["rate"]) / 2
    except (OSError, KeyError, ValueError):
        return float("inf")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    scored = sorted(args.runs, key=score)
    best = scored[0]
    summary = {"chosen": best.name, "runs": {}}
    for run in args.runs:
        try:
            summary["runs"][run.name] = json.loads((run / "eval_gpu.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            summary["runs"][run.name] = None
    args.out.mkdir(parents=True, exist_ok=True)
    dest = args.out / "lingting-mini"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(best / "lingting-mini", dest)
    (args.out / "eval_gpu.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    with (args.out / "other_runs_log.txt").open("w", encoding="utf-8") as f:
        for run in scored[1:]:
            f.write(f"===== {run.name} (score {score(run):.3f})\n")
            log = run / "lingting-mini" / "train_log.txt"
            f.write(log.read_text(encoding="utf-8") if log.exists() else "(no log)\n")
    others = [(r.name, round(score(r), 3)) for r in scored[1:]]
    print(f"chosen {best.name}: score {score(best):.3f}; others {others}")


if __name__ == "__main__":
    main()
