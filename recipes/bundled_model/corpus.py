"""Synthesise the corpus in parallel and write it as shards the trainer can pick up while it runs.

Each shard ``{split}_{k:04d}.npz`` holds ``audio`` (int16, all utterances concatenated), ``offsets``
(n+1), ``meta`` (JSON: text, lang, voice, ...). Shards are renamed into place once complete, so a reader
never sees half a shard. Test and hotword shards come first, then training shards in random order.
Training shard k always holds jobs ``k*shard .. (k+1)*shard-1`` of the same deterministic job list, so a
run that was killed resumes by skipping the shards already on disk (the two-call GPU run relies on it).
A worker takes ``--chunk`` jobs at a time (one festival process for the chunk's festival jobs); the chunk
size changes no audio. Each shard's log line gives the workers' CPU seconds per engine, so a run's log
tells a slow machine from a costly voice mix.

    python -m recipes.bundled_model.corpus --text .dev/gpu/text --out /tmp/corpus --workers 14
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import logging
import multiprocessing as mp
import os
import random
import resource
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from recipes.bundled_model import tts, tts_check, voices

log = logging.getLogger(__name__)

_ENV: tts.TtsEnv | None = None


def _init_worker(root: str, extra_lib: str | None) -> None:
    global _ENV
    _ENV = tts.TtsEnv(Path(root), Path(extra_lib) if extra_lib else None)


def _codec(x: np.ndarray, rng: random.Random) -> tuple[np.ndarray, str]:
    """Round trip through a lossy codec (Opus or MP3) at a low bit rate, when libsndfile offers them."""
    try:
        import soundfile as sf
    except ImportError:
        return x, ""
    fmt, sub = rng.choice([("OGG", "OPUS"), ("MP3", "MPEG_LAYER_III")])
    buf = io.BytesIO()
    try:
        sf.write(
            buf,
            np.clip(x, -1, 1),
            tts.TARGET_SR,
            format=fmt,
            subtype=sub,
            compression_level=rng.uniform(0.6, 1.0),
        )
        buf.seek(0)
        y, sr = sf.read(buf, dtype="float32")
    except Exception:
        return x, ""
    if y.ndim > 1:
        y = y.mean(axis=1)
    if sr != tts.TARGET_SR:
        y = tts.resample(y, sr)
    return y.astype(np.float32), sub.lower()


def cpu_seconds() -> float:
    """User + system time of this process and of the engine processes it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _synth_chunk(
    jobs: list[dict[str, Any]], costs: defaultdict[str, float] | None = None
) -> list[tuple[dict[str, Any], np.ndarray | None]]:
    """Audio of each job (None where synthesis failed); ``costs`` gets CPU seconds per engine."""
    assert _ENV is not None
    out: list[tuple[dict[str, Any], np.ndarray | None]] = []
    fest = [j for j in jobs if j["engine"] == "festival"]
    c0 = cpu_seconds()
    fest_audio = (
        tts.festival_batch(
            _ENV,
            [(tts.speech_text_en(j["text"]), j["voice"], j["rate"]) for j in fest],
            [voices.festival_f0(j["voice"], j["pitch"]) for j in fest],
        )
        if fest
        else []
    )
    fest_map = {id(j): a for j, a in zip(fest, fest_audio, strict=True)}
    if costs is not None and fest:
        costs["festival"] += cpu_seconds() - c0
    for j in jobs:
        c0 = cpu_seconds()
        rng = random.Random(j["seed"])
        say = tts.speech_text_en(j["text"]) if j["lang"] == "en" else j["text"]
        try:
            if j["engine"] == "espeak":
                x: np.ndarray | None = tts.espeak(_ENV, say, j["voice"], int(j["rate"]), j["pitch"], j["gap"])
            elif j["engine"] == "flite":
                x = tts.flite(_ENV, say, j["voice"], j["rate"], j["pitch"] or None)
            else:
                x = fest_map[id(j)]
        except Exception as exc:
            log.warning("synthesis failed for %s: %s", j["id"], exc)
            x = None
        if x is not None:
            x = _trim(x)
            peak = float(np.abs(x).max()) if len(x) else 0.0
            if peak < 1e-3 or len(x) < 1600:
                x = None
            else:
                x = x * (0.7 / peak)
                if j.get("codec_p", 0.0) > 0 and rng.random() < j["codec_p"]:
                    x, j["codec"] = _codec(x, rng)
        out.append((j, x))
        if costs is not None:
            costs[j["engine"]] += cpu_seconds() - c0
    return out


def _synth_tagged(task: tuple[int, list[dict[str, Any]]]) -> tuple[int, list, defaultdict[str, float]]:
    """``_synth_chunk`` keeping the shard number (results are grouped into fixed shards) and costs."""
    costs: defaultdict[str, float] = defaultdict(float)
    return task[0], _synth_chunk(task[1], costs), costs


def _trim(x: np.ndarray, thresh: float = 1e-3, pad: int = 1600) -> np.ndarray:
    """Cut leading/trailing silence down to 0.1 s (engines pad differently; the model need not learn it)."""
    idx = np.flatnonzero(np.abs(x) > thresh)
    if len(idx) == 0:
        return x
    return x[max(0, idx[0] - pad) : idx[-1] + pad]


def _read_jsonl(path: Path) -> list[Any]:
    """Rows of ``path``, or of ``path.gz`` when only the compressed file exists (it is carried smaller)."""
    if not path.exists() and path.with_name(path.name + ".gz").exists():
        text = gzip.decompress(path.with_name(path.name + ".gz").read_bytes()).decode("utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def build_jobs(text_dir: Path, n_en: int, n_zh: int, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """All synthesis jobs, grouped by split: test_en, test_zh, hot_en, hot_zh, train (and the dev splits)."""
    rng = random.Random(seed)
    splits: dict[str, list[dict[str, Any]]] = {}

    def job(
        split: str, i: int, lang: str, text: str, test: bool, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        v = voices.pick_en(rng, test) if lang == "en" else voices.pick_zh(rng, test)
        d = {
            "id": f"{split}-{i:06d}",
            "split": split,
            "lang": lang,
            "text": text,
            "engine": v.engine,
            "voice": v.name,
            "rate": v.rate,
            "pitch": v.pitch,
            "gap": v.gap,
            "seed": rng.getrandbits(32),
            "codec_p": 0.0 if test else 0.12,
            "codec": "",
        }
        d.update(extra or {})
        return d

    splits["test_en"] = [
        job("test_en", i, "en", t, True) for i, t in enumerate(_read_jsonl(text_dir / "test_en.jsonl"))
    ]
    splits["test_zh"] = [
        job("test_zh", i, "zh", t, True) for i, t in enumerate(_read_jsonl(text_dir / "test_zh.jsonl"))
    ]
    splits["hot_en"] = [
        job("hot_en", i, "en", t, True, {"name": n})
        for i, (n, t) in enumerate(_read_jsonl(text_dir / "hot_en.jsonl"))
    ]
    splits["hot_zh"] = [
        job("hot_zh", i, "zh", t, True, {"name": n})
        for i, (n, t) in enumerate(_read_jsonl(text_dir / "hot_zh.jsonl"))
    ]
    en = _read_jsonl(text_dir / "train_en.jsonl")[:n_en]
    zh = _read_jsonl(text_dir / "train_zh.jsonl")[:n_zh]
    train = [job("train", i, "en", t, False) for i, t in enumerate(en)]
    train += [job("train", len(en) + i, "zh", t, False) for i, t in enumerate(zh)]
    rng.shuffle(train)
    splits["train"] = train
    # the tuning split (make_text --dev-only), where present: its own random stream, so that adding it
    # changes no other split's voices; held-out voices, as the test splits
    rng = random.Random(seed + 1)
    for name, lang in (("dev_en", "en"), ("hot_en_dev", "en"), ("hot_zh_dev", "zh")):
        if (text_dir / f"{name}.jsonl").exists():
            rows = _read_jsonl(text_dir / f"{name}.jsonl")
            splits[name] = [
                job(name, i, lang, r[1], True, {"name": r[0]})
                if isinstance(r, list)
                else job(name, i, lang, r, True)
                for i, r in enumerate(rows)
            ]
    return splits


def write_shard(path: Path, items: list[tuple[dict[str, Any], np.ndarray]]) -> None:
    audio = [np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16) for _, x in items]
    offsets = np.zeros(len(audio) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in audio])
    meta = json.dumps(
        [{k: v for k, v in j.items() if k not in ("seed", "codec_p")} for j, _ in items], ensure_ascii=False
    )
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        audio=np.concatenate(audio) if audio else np.zeros(0, np.int16),
        offsets=offsets,
        meta=np.array(meta),
    )
    os.replace(tmp, path)


def _per_engine(cpu: dict[str, float]) -> str:
    return " ".join(f"{e} {cpu[e]:.0f}" for e in sorted(cpu))


def read_shard(path: Path) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    with np.load(path) as z:
        return z["audio"], z["offsets"], json.loads(str(z["meta"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--root", default="/", help="dpkg -x tree holding the TTS engines")
    ap.add_argument("--extra-lib", default=None, help="folder with the PulseAudio stand-ins")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    ap.add_argument("--n-en", type=int, default=170000)
    ap.add_argument("--n-zh", type=int, default=55000)
    ap.add_argument("--shard", type=int, default=2496)
    # 48 since run 5: festival's start-up (~0.25 s CPU) is paid once per chunk; 48 instead of 24 cut the
    # corpus's CPU per audio hour by ~8 % (results/synth_speed.md), with the same shards byte for byte
    ap.add_argument("--chunk", type=int, default=48)
    ap.add_argument("--splits", default="test_en,test_zh,hot_en,hot_zh,train")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    # every voice must speak before any job runs: a failing engine would only log warnings per job
    problems = tts_check.check(tts.TtsEnv(Path(args.root), Path(args.extra_lib) if args.extra_lib else None))
    for p in problems:
        log.error("TTS check failed: %s", p)
    if problems:
        raise SystemExit(f"{len(problems)} TTS problem(s) under {args.root}; not synthesising")
    splits = build_jobs(args.text, args.n_en, args.n_zh)
    t0 = time.time()
    with mp.Pool(args.workers, initializer=_init_worker, initargs=(args.root, args.extra_lib)) as pool:
        for name in args.splits.split(","):
            jobs = splits[name]
            size = args.shard if name == "train" else max(1, len(jobs))
            groups = [
                k for k in range(-(-len(jobs) // size)) if not (args.out / f"{name}_{k:04d}.npz").exists()
            ]
            if len(groups) < -(-len(jobs) // size):
                log.info("%s: %d shards already on disk, resuming", name, -(-len(jobs) // size) - len(groups))
            tasks = [
                (k, jobs[lo : min(lo + args.chunk, (k + 1) * size)])
                for k in groups
                for lo in range(k * size, min((k + 1) * size, len(jobs)), args.chunk)
            ]
            buf: list[tuple[dict[str, Any], np.ndarray]] = []
            failed = written = 0
            seconds = 0.0
            left = {k: sum(1 for g, _ in tasks if g == k) for k in groups}
            shard_cpu: defaultdict[str, float] = defaultdict(float)
            cpu: defaultdict[str, float] = defaultdict(float)  # this split: worker CPU s, audio s per engine
            audio: defaultdict[str, float] = defaultdict(float)
            for k, res, costs in pool.imap(_synth_tagged, tasks):
                for e, c in costs.items():
                    shard_cpu[e] += c
                for j, x in res:
                    if x is None:
                        failed += 1
                        continue
                    buf.append((j, x))
                    seconds += len(x) / tts.TARGET_SR
                    audio[j["engine"]] += len(x) / tts.TARGET_SR
                left[k] -= 1
                if left[k] == 0:
                    write_shard(args.out / f"{name}_{k:04d}.npz", buf)
                    buf = []
                    written += 1
                    if name == "train":
                        log.info(
                            "%s shard %d written (%d this run, %.0f s elapsed, %.1f h audio; CPU s %s)",
                            name, k, written, time.time() - t0, seconds / 3600, _per_engine(shard_cpu),
                        )  # fmt: skip
                    for e, c in shard_cpu.items():
                        cpu[e] += c
                    shard_cpu = defaultdict(float)
            log.info(
                "%s done: %d failed, %.2f h audio, %.0f s elapsed",
                name,
                failed,
                seconds / 3600,
                time.time() - t0,
            )
            if cpu:
                rtf = {e: audio[e] / cpu[e] for e in cpu if cpu[e] > 0}
                log.info(
                    "%s worker CPU s %s; realtime factor per core %s",
                    name,
                    _per_engine(cpu),
                    " ".join(f"{e} {v:.1f}" for e, v in sorted(rtf.items())),
                )
    (args.out / "DONE").write_text("ok\n")


if __name__ == "__main__":
    main()
