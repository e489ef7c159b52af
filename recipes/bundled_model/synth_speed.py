"""Synthesis cost of the training corpus per engine and voice, as ``corpus`` runs the engines.

Why: run 4's corpus took ~30 % longer per hour of audio than run 3's and its logs could not say which
voice did it. This samples chunks of the real training job list (``corpus.build_jobs``, the chunks of
``--chunk`` consecutive jobs that the pool's workers get) and synthesises each chunk's jobs grouped by
family with ``corpus._synth_chunk`` (so trimming, gain and codec round trips count; a chunk's festival
jobs of one voice go to one festival process, as the builder's batch does). Cost is CPU time of this
process and its children (``getrusage``), so a busy machine moves it less than wall time; the realtime
factor per core is audio seconds / CPU seconds. ``--whole`` also runs each sampled chunk unsplit, the
builder's exact work, as a check on the sum of the parts; ``--halves`` times the same chunk again as two
chunks of half the size (what ``corpus --chunk`` changes: festival's start-up is paid once per chunk).

It uses only what run 3's recipe also has, so a copy dropped into an older tree measures that recipe
(give it ``--chunk 24``, that recipe's chunk):

    python -m recipes.bundled_model.synth_speed --text .dev/gpu/text --chunks 60 --whole --out /tmp/s.json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from recipes.bundled_model import corpus, tts, voices


def cpu_seconds() -> float:
    """User + system time of this process and of its waited-for children (the engines)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def family(job: dict[str, Any]) -> str:
    """The engine and voice that decide a job's cost (espeak variants and rates are one family)."""
    if job["engine"] == "espeak":
        return f"espeak-{job['lang']}"
    return f"{job['engine']}:{job['voice']}"


def timed(jobs: list[dict[str, Any]]) -> tuple[float, float, int, float]:
    """(CPU s, audio s, utterances kept, wall s) of synthesising ``jobs`` as one builder chunk."""
    c0, w0 = cpu_seconds(), time.perf_counter()
    out = corpus._synth_chunk([dict(j) for j in jobs])
    cpu, wall = cpu_seconds() - c0, time.perf_counter() - w0
    audio = sum(len(x) for _, x in out if x is not None) / tts.TARGET_SR
    return cpu, audio, sum(x is not None for _, x in out), wall


def own_pitch(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same jobs with kal_diphone at its own F0 (run 3's setting), where this recipe varies it."""
    own = getattr(voices, "FESTIVAL_OWN_PITCH", None)
    return [dict(j, pitch=own) for j in jobs] if own is not None else []


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", type=Path, required=True)
    ap.add_argument("--chunks", type=int, default=60, help="sampled chunks of the training job list")
    ap.add_argument("--chunk", type=int, default=48, help="jobs per chunk (corpus --chunk; 24 until run 4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--whole", action="store_true", help="also time each sampled chunk unsplit")
    ap.add_argument("--halves", action="store_true", help="with --whole: also as two half-size chunks")
    ap.add_argument("--families", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--root", default="/")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    corpus._init_worker(args.root, None)
    train = corpus.build_jobs(args.text, 170000, 55000)["train"]
    counts: dict[str, int] = defaultdict(int)
    for j in train:
        counts[family(j)] += 1
    n_chunks = len(train) // args.chunk
    picked = sorted(random.Random(args.seed).sample(range(n_chunks), args.chunks))
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])  # cpu, audio, utts, jobs
    whole = [0.0, 0.0, 0.0, 0.0]  # cpu, audio, utts, wall
    halves = [0.0, 0.0, 0.0, 0.0]
    t0 = time.time()
    for n, k in enumerate(picked):
        chunk = train[k * args.chunk : (k + 1) * args.chunk]
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for j in chunk:
            groups[family(j)].append(j)
        for fam, jobs in groups.items() if args.families else ():
            # espeak and flite run one process per job anyway; festival gets one batch per voice here
            runs = [(fam, jobs)]
            if fam == "festival:kal_diphone" and own_pitch(jobs):
                runs.append(("festival:kal_diphone@own_f0", own_pitch(jobs)))
            for name, js in runs:
                cpu, audio, kept, _ = timed(js)
                a = acc[name]
                a[0] += cpu
                a[1] += audio
                a[2] += kept
                a[3] += len(js)
        if args.whole:
            cpu, audio, kept, wall = timed(chunk)
            for i, v in enumerate((cpu, audio, kept, wall)):
                whole[i] += v
            if args.halves:
                half = args.chunk // 2
                for part in (chunk[:half], chunk[half:]):
                    for i, v in enumerate(timed(part)):
                        halves[i] += v
        if (n + 1) % 10 == 0:
            print(f"{n + 1}/{len(picked)} chunks, {time.time() - t0:.0f} s", flush=True)
    fams: dict[str, Any] = {}
    predicted_cpu = predicted_audio = 0.0
    for name, (cpu, audio, n_kept, n_jobs) in sorted(acc.items()):
        fam = name.split("@")[0]
        row = {
            "jobs": int(n_jobs),
            "kept": int(n_kept),
            "audio_s": round(audio, 1),
            "cpu_s": round(cpu, 2),
            "rtf_per_core": round(audio / cpu, 1) if cpu else None,
            "cpu_ms_per_job": round(1000 * cpu / n_jobs, 1),
            "audio_s_per_job": round(audio / n_jobs, 2),
            "share_of_training_jobs": round(counts[fam] / len(train), 4),
        }
        if "@" not in name:
            # the whole training corpus's cost of this family, from its per-job means and full count
            row["corpus_cpu_h"] = round(counts[fam] * cpu / n_jobs / 3600, 2)
            row["corpus_audio_h"] = round(counts[fam] * audio / n_jobs / 3600, 2)
            predicted_cpu += counts[fam] * cpu / n_jobs
            predicted_audio += counts[fam] * audio / n_jobs
        fams[name] = row
    for name, row in fams.items():
        if "@" not in name:
            row["share_of_corpus_cpu"] = round(row["corpus_cpu_h"] * 3600 / predicted_cpu, 3)
    result: dict[str, Any] = {
        "text": str(args.text),
        "chunks": len(picked),
        "chunk": args.chunk,
        "families": fams,
    }
    if predicted_cpu:
        result["corpus_estimate"] = {
            "cpu_h": round(predicted_cpu / 3600, 2),
            "audio_h": round(predicted_audio / 3600, 1),
            "rtf_per_core": round(predicted_audio / predicted_cpu, 1),
            "cpu_s_per_audio_h": round(predicted_cpu / (predicted_audio / 3600), 1),
        }
    for key, (cpu, audio, _, wall) in (("whole_chunks", whole), ("half_chunks", halves)):
        if cpu:
            result[key] = {
                "cpu_s": round(cpu, 2),
                "audio_s": round(audio, 1),
                "wall_s": round(wall, 2),
                "rtf_per_core": round(audio / cpu, 1),
                "cpu_s_per_audio_h": round(cpu / (audio / 3600), 1),
            }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
