"""Train the bundled SenseVoice-style CTC model on the synthetic corpus for a fixed wall-clock budget.

Reads shards as ``corpus.py`` writes them (it may still be running), featurises on the device with the
engine's ``Frontend`` (fbank + LFR 7/6; CMVN estimated here), augments on the device, trains with CTC,
evaluates greedy WER/CER on the held-out sets, and exports the FunASR directory.

A run may be split over calls (the GPU machine allows 10 minutes per call): ``--save`` writes a full
checkpoint (weights, optimizer, step, schedule position, CMVN) and ``--resume`` continues it; the
learning-rate schedule spans ``--total-minutes``. ``--init-model`` starts from an exported directory
instead (when the checkpoint was lost with the machine), at the schedule position it records.

    python -m recipes.bundled_model.train --corpus /tmp/corpus --text .dev/gpu/text --out $OUT/lingting-mini
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import threading
import time
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

from asr_engine.features import Frontend
from asr_engine.models.base import FrontendConfig
from asr_engine.models.sanm import SanmEncoderDims
from recipes.bundled_model import augment, batching, export, metrics
from recipes.bundled_model.data import Pool, load_eval_split, load_new_shards
from recipes.bundled_model.network import LANG_ROWS, SenseVoiceTrainNet

log = logging.getLogger("train")


class ShardReader:
    """Reads and tokenises new shards in a background thread, so the training loop never waits on disk."""

    def __init__(self, folder: Path, loaded: set[str], sp: spm.SentencePieceProcessor) -> None:
        self.folder, self.loaded, self.sp = folder, loaded, sp
        self.lock = threading.Lock()
        self.ready: list = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            finished = (self.folder / "DONE").exists()
            shards = load_new_shards(self.folder, self.loaded, sp=self.sp, limit=2)
            if shards:
                with self.lock:
                    self.ready.extend(shards)
                continue
            if finished:
                return
            self.done.wait(3.0)

    def take(self) -> list:
        with self.lock:
            out, self.ready = self.ready, []
        return out

    def stop(self) -> None:
        self.done.set()


def estimate_cmvn(frontend: Frontend, pool: Pool, n: int = 1500) -> tuple[torch.Tensor, torch.Tensor]:
    """Global mean/std of the LFR features over ``n`` clean training utterances: shift=-mean, scale=1/std."""
    total = torch.zeros(frontend.feature_dim, dtype=torch.float64, device=pool.device)
    sq = torch.zeros_like(total)
    count = 0
    ids = list(range(min(n, len(pool.starts))))
    for lo in range(0, len(ids), 200):
        x, lens = pool.gather(ids[lo : lo + 200])
        feats, flens = frontend([x[i, : int(lens[i])] for i in range(x.shape[0])])
        valid = torch.arange(feats.shape[1], device=feats.device)[None, :] < flens[:, None]
        f = feats[valid].double()
        total += f.sum(0)
        sq += (f * f).sum(0)
        count += f.shape[0]
    mean = total / count
    std = (sq / count - mean * mean).clamp(min=1e-6).sqrt()
    return (-mean).float(), (1.0 / std).float()


def greedy_texts(
    net: SenseVoiceTrainNet,
    frontend: Frontend,
    sp: spm.SentencePieceProcessor,
    waves: list[np.ndarray],
    langs: list[str],
    device: torch.device,
    batch: int = 64,
) -> list[str]:
    """Greedy CTC decode with the language prompt set (or auto); returns raw decoded text with tags."""
    out: list[str] = []
    net.eval()
    order = sorted(range(len(waves)), key=lambda i: len(waves[i]))
    res: dict[int, str] = {}
    with torch.no_grad():
        for lo in range(0, len(order), batch):
            ids = order[lo : lo + batch]
            feats, flens = frontend([torch.from_numpy(waves[i]).to(device) for i in ids])
            rows = torch.tensor([LANG_ROWS[langs[i]] for i in ids], device=device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                lp, olens = net(feats, flens, rows)
            best = lp.argmax(-1).cpu()
            for k, i in enumerate(ids):
                seq = best[k, : int(olens[k])].tolist()
                toks = [t for j, t in enumerate(seq) if t != 0 and (j == 0 or t != seq[j - 1])]
                res[i] = sp.decode(toks)
    out = [res[i] for i in range(len(waves))]
    net.train()
    return out


def evaluate(
    net: SenseVoiceTrainNet,
    frontend: Frontend,
    sp: spm.SentencePieceProcessor,
    corpus: Path,
    device: torch.device,
) -> dict:
    results: dict = {}
    for split, lang in (("test_en", "en"), ("test_zh", "zh")):
        waves, metas = load_eval_split(corpus, split)
        if not waves:
            continue
        for prompt in (lang, "auto"):
            hyps = greedy_texts(net, frontend, sp, waves, [prompt] * len(waves), device)
            rate, err, tot = metrics.error_rate([m["text"] for m in metas], hyps, lang)
            lang_ok = sum(h.startswith(f"<|{lang}|>") for h in hyps) / len(hyps)
            results[f"{split}/{prompt}"] = {
                "rate": round(rate, 3),
                "errors": err,
                "units": tot,
                "lang_tag_acc": round(lang_ok, 4),
                "n": len(waves),
            }
            if prompt == lang:
                by_engine: dict[str, list[int]] = {}
                for m, h in zip(metas, hyps, strict=True):
                    e = by_engine.setdefault(m["engine"], [0, 0])
                    ru = metrics.units(m["text"], lang)
                    e[0] += metrics.edit_distance(ru, metrics.units(h, lang))
                    e[1] += len(ru)
                results[f"{split}/{prompt}"]["by_engine"] = {
                    k: round(100 * v[0] / max(v[1], 1), 2) for k, v in by_engine.items()
                }
                results[f"{split}/{prompt}"]["examples"] = [
                    [m["text"], metrics.strip_tags(h)] for m, h in list(zip(metas, hyps, strict=True))[:5]
                ]
    return results


def build_args() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--text", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=6.0, help="training time in this call")
    ap.add_argument("--total-minutes", type=float, default=0.0, help="schedule span (0: --minutes)")
    ap.add_argument("--save", type=Path, default=None, help="full checkpoint written at the end")
    ap.add_argument("--resume", type=Path, default=None, help="checkpoint to continue (if it exists)")
    ap.add_argument("--init-model", type=Path, default=None, help="save_small file to start from")
    ap.add_argument("--save-small", type=Path, default=None, help="int8 weights for a restart elsewhere")
    ap.add_argument("--eval", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--budget-seconds", type=float, default=400.0, help="audio seconds per batch (padded)")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--warmup", type=int, default=600)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--tp-blocks", type=int, default=2)
    ap.add_argument("--min-utts", type=int, default=2000)
    ap.add_argument("--capacity-hours", type=float, default=8.0, help="initial pool size; grows")
    ap.add_argument("--checkpoint-every", type=float, default=120.0, help="seconds between exports")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--aug-p", type=float, default=0.7, help="share of utterances augmented")
    ap.add_argument(
        "--aug-ramp", type=float, default=0.25, help="share of training over which aug-p ramps up"
    )
    ap.add_argument("--speed-p", type=float, default=0.6, help="share of batches speed-perturbed")
    ap.add_argument("--speed-lo", type=float, default=0.88)
    ap.add_argument("--speed-hi", type=float, default=1.12)
    ap.add_argument("--vtlp-p", type=float, default=0.5, help="share of utterances frequency-warped (ramped)")
    ap.add_argument("--vtlp-lo", type=float, default=0.88, help="smallest warp factor (< 1: energy down)")
    ap.add_argument("--vtlp-hi", type=float, default=1.12, help="largest warp factor (> 1: energy up)")
    # run 4: festival/flite err 2-5x espeak's rate even on frequent words and have 2-4 training voices
    # each; a wider warp imitates more vocal tracts for them (espeak keeps the range above)
    ap.add_argument("--vtlp-wide-engines", default="flite,festival", help="engines given the wide range")
    ap.add_argument("--vtlp-wide-lo", type=float, default=0.82, help="smallest warp factor, those engines")
    ap.add_argument("--vtlp-wide-hi", type=float, default=1.18, help="largest warp factor, those engines")
    ap.add_argument("--max-steps", type=int, default=0)
    # session 7: the GPU call's own clock (run_gpu2.sh passes its start + 600 s - what must follow training),
    # so that longer --minutes can never run a call past its limit; 0: no deadline
    ap.add_argument("--stop-by", type=float, default=0.0, help="wall-clock time (epoch s) to stop training")
    ap.add_argument("--speed-out", type=Path, default=None, help="realtime factors here, after the eval")
    ap.add_argument(
        "--exact-fft-shapes", action="store_true", help="FFTs at exact batch sizes (before session 7)"
    )
    return ap


def _dims(args: argparse.Namespace) -> SanmEncoderDims:
    return SanmEncoderDims(
        input_size=560,
        output_size=args.d,
        attention_heads=args.heads,
        linear_units=args.ffn,
        num_blocks=args.blocks,
        tp_blocks=args.tp_blocks,
        kernel_size=11,
        sanm_shift=0,
        layer_norm_eps=1e-5,
    )


def save_small(
    path: Path, net: SenseVoiceTrainNet, shift: torch.Tensor, scale: torch.Tensor, progress: dict
) -> None:
    """Weights as int8 rows with float scales (~1 byte per parameter), CMVN and progress in one file.

    Why: if the GPU machine is released between calls, the second call restarts from this file, which must
    travel in the 64 MiB carry next to the TTS engines; fp16 would not fit.
    """
    small: dict[str, torch.Tensor] = {}
    for k, v in net.state_dict().items():
        v = v.detach().float().cpu()
        if v.ndim >= 2:
            rows = v.reshape(v.shape[0], -1)
            amax = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-12)
            small[k + "#q"] = torch.round(rows / amax * 127).to(torch.int8)
            small[k + "#s"] = (amax / 127).reshape(-1)
        else:
            small[k] = v
    torch.save({"weights": small, "shift": shift.cpu(), "scale": scale.cpu(), "progress": progress}, path)


def load_small(path: Path, net: SenseVoiceTrainNet) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Inverse of ``save_small``: loads the weights into ``net``; returns CMVN and recorded progress."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    small = blob["weights"]
    state = {}
    for k, v in net.state_dict().items():
        if k + "#q" in small:
            q, sc = small[k + "#q"], small[k + "#s"]
            state[k] = (q.float() * sc[:, None]).reshape(v.shape)
        else:
            state[k] = small[k]
    net.load_state_dict(state)
    return blob["shift"], blob["scale"], blob["progress"]


def train_step(
    net: SenseVoiceTrainNet,
    opt: torch.optim.Optimizer,
    frontend: Frontend,
    pool: Pool,
    hb: batching.HostBatch,
    gen: torch.Generator,
    cmvn: tuple[torch.Tensor, torch.Tensor],
    args: argparse.Namespace,
    ramp: float,
) -> torch.Tensor:
    """One optimizer step on the host batch ``hb``: augmentation, features, CTC, AdamW; the detached loss.

    A function of its own so that ``step_probe`` times exactly the training step.
    """
    device = pool.device
    db = batching.to_device(hb, device)
    with torch.no_grad():
        x = batching.gather_waves(pool, hb, db)
        x = batching.speed_perturb(x, hb)
        x = augment.augment_rows(x, db.lengths, gen, db.aug_on, db.reverb_idx, db.phone_idx, db.mulaw)
        feats, flens = batching.padded_features(frontend, x, hb.lengths, db.lengths)
        feats = augment.vtlp(
            feats,
            flens,
            gen,
            args.vtlp_p * ramp,
            (args.vtlp_lo, args.vtlp_hi),
            cmvn,
            wide=db.vtlp_wide,
            wide_range=(args.vtlp_wide_lo, args.vtlp_wide_hi),
        )
        feats = augment.spec_augment(feats, flens, gen)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        lp, olens = net(feats, flens, db.rows)
    loss = F.ctc_loss(
        lp.transpose(0, 1), db.targets, olens, db.tlens, blank=0, reduction="sum", zero_infinity=True
    )
    loss = loss / hb.size
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    opt.step()
    return loss.detach()


def main() -> None:
    t_main = time.time()
    args = build_args().parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    augment.exact_fft_shapes(args.exact_fft_shapes)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(args.out / "train_log.txt")],
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.type == "cuda"
    torch.set_num_threads(2)
    ckpt = (
        torch.load(args.resume, map_location="cpu", weights_only=False)
        if args.resume and args.resume.exists()
        else None
    )
    seed = args.seed + (ckpt["step"] if ckpt else 0)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    bpe = args.text / export.BPE_NAME
    sp = spm.SentencePieceProcessor(model_file=str(bpe))
    log.info(
        "args %s; device %s (%s); torch %s; resume %s",
        vars(args),
        device,
        torch.cuda.get_device_name() if cuda else "cpu",
        torch.__version__,
        "checkpoint" if ckpt else ("exported model" if args.init_model else "no"),
    )

    # The network and the optimizer first: they need no audio, and making the optimizer imports
    # torch._dynamo (~4-5 s on the GPU machine, run 5), which now overlaps the wait for the first shard.
    dims = _dims(args)
    net = SenseVoiceTrainNet(dims, sp.get_piece_size()).to(device)
    prior_s, step, seen_s = 0.0, 0, 0.0
    warmup_from = 0
    stats: tuple[torch.Tensor, torch.Tensor] | None = None  # CMVN (shift, scale) of the earlier call
    if ckpt:
        net.load_state_dict(ckpt["net"])
        stats = ckpt["shift"], ckpt["scale"]
        prior_s, step, seen_s = ckpt["train_seconds"], ckpt["step"], ckpt["seen_s"]
    elif args.init_model:
        shift0, scale0, progress = load_small(args.init_model, net)
        stats = shift0, scale0
        net.to(device)
        prior_s, step = progress.get("train_seconds", 0.0), progress.get("step", 0)
        seen_s = progress.get("seen_s", 0.0)
        warmup_from = step  # fresh optimizer moments: warm up again, briefly
    decay = [p for n, p in net.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in net.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-8,
        fused=cuda,
    )
    if ckpt:
        opt.load_state_dict(ckpt["opt"])

    pool = Pool(device, sp, int(args.capacity_hours * 3600 * 16000))
    t_wait = time.time()
    while True:
        pool.poll(args.corpus, limit=4)
        if len(pool.starts) >= args.min_utts or (args.corpus / "DONE").exists():
            break
        time.sleep(0.5)
    log.info("waited %.1f s for the first %d utterances", time.time() - t_wait, len(pool.starts))
    shift, scale = stats if stats is not None else estimate_cmvn(Frontend(FrontendConfig(), device), pool)
    frontend = Frontend(FrontendConfig(cmvn_shift=shift.cpu(), cmvn_scale=scale.cpu()), device)
    cmvn = (shift.to(device), scale.to(device))  # the VTLP warp works on un-normalised log-mel
    n_params = sum(p.numel() for p in net.parameters())
    log.info("model: %.2f M parameters, vocab %d, start step %d", n_params / 1e6, sp.get_piece_size(), step)

    reader = ShardReader(args.corpus, set(pool.loaded), sp)
    builder = batching.BatchBuilder(
        pool,
        rng,
        int(args.budget_seconds * 16000),
        cuda,
        args.aug_p,
        args.speed_p,
        (args.speed_lo, args.speed_hi),
        wide_engines=frozenset(e for e in args.vtlp_wide_engines.split(",") if e),
    )
    total_s = (args.total_minutes or args.minutes) * 60
    call_s = args.minutes * 60
    t0 = time.time()
    log.info("first step %.1f s after start-up began (imports before it not counted)", t0 - t_main)
    last_ckpt = last_log = t0
    loss_acc = torch.zeros((), device=device)
    n_acc = 0
    t_data = 0.0

    def save(tag: str) -> None:
        export.export(args.out, net.export_state(), dims, bpe, shift.cpu(), scale.cpu())
        progress = {"step": step, "train_seconds": prior_s + time.time() - t0, "seen_s": seen_s}
        (args.out / "progress.json").write_text(json.dumps(progress) + "\n")
        log.info("exported (%s) at step %d", tag, step)

    while True:
        now = time.time()
        elapsed = now - t0
        if elapsed >= call_s or (args.max_steps and step >= args.max_steps):
            break
        if args.stop_by and now >= args.stop_by:
            log.info("stopped by the call's deadline after %.1f s of the planned %.1f s", elapsed, call_s)
            break
        if step % 50 == 0:
            added = pool.add_loaded(reader.take())
            if added:
                log.info("pool: +%d utterances, now %d (%.1f h)", added, len(pool.starts), pool.hours)
        frac = min(1.0, (prior_s + elapsed) / total_s)
        ramp = min(1.0, frac / args.aug_ramp)
        builder.set_aug_p(args.aug_p * ramp)
        lr = (
            args.lr
            * min(1.0, (step + 1 - warmup_from) / (args.warmup if not warmup_from else 100))
            * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * frac)))
        )
        for g in opt.param_groups:
            g["lr"] = lr

        t_get = time.time()
        hb = builder.get()
        t_data += time.time() - t_get
        loss = train_step(net, opt, frontend, pool, hb, gen, cmvn, args, ramp)
        step += 1
        seen_s += hb.seconds
        loss_acc += loss
        n_acc += 1
        if step % 250 == 0:
            log.info(
                "step %d  %.0f s  lr %.2e  loss %.3f  batch %d  seen %.1f h  %.1f ms/step  data wait %.1f ms",
                step,
                prior_s + elapsed,
                lr,
                float(loss_acc) / max(n_acc, 1),
                hb.size,
                seen_s / 3600,
                1000 * (time.time() - last_log) / n_acc,  # steps since the last line (fewer after a resume)
                1000 * t_data / n_acc,
            )
            loss_acc.zero_()
            n_acc, t_data = 0, 0.0
            last_log = time.time()
        if time.time() - last_ckpt > args.checkpoint_every:
            save("periodic")
            last_ckpt = time.time()

    builder.stop()
    reader.stop()
    train_s = time.time() - t0
    log.info(
        "training done: %d steps, %.1f s here (%.1f s in all), %.1f h of audio seen, pool %d utts (%.1f h)",
        step,
        train_s,
        prior_s + train_s,
        seen_s / 3600,
        len(pool.starts),
        pool.hours,
    )
    save("final")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.save.with_suffix(".tmp")
        torch.save(
            {
                "net": net.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "train_seconds": prior_s + train_s,
                "seen_s": seen_s,
                "shift": shift.cpu(),
                "scale": scale.cpu(),
                "args": vars(args),
                "shards": sorted(pool.loaded),
            },
            tmp,
        )
        tmp.replace(args.save)
        log.info("checkpoint saved to %s", args.save)
    if args.save_small:
        save_small(
            args.save_small,
            net,
            shift,
            scale,
            {"step": step, "train_seconds": prior_s + train_s, "seen_s": seen_s},
        )
        log.info("small weights saved to %s", args.save_small)
    if not args.eval:
        return
    t_eval = time.time()
    results = evaluate(net, frontend, sp, args.corpus, device)
    results["train"] = {
        "steps": step,
        "seconds": round(prior_s + train_s, 1),
        "audio_hours_seen": round(seen_s / 3600, 2),
        "pool_utterances": len(pool.starts),
        "pool_hours": round(pool.hours, 2),
        "parameters": n_params,
    }
    log.info("eval (%.1f s): %s", time.time() - t_eval, json.dumps(results, ensure_ascii=False))
    (args.out.parent / "eval_gpu.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    if args.speed_out:
        from recipes.bundled_model import speed  # imports this module: not at the top

        t_speed = time.time()
        rtfs = speed.measure(args.out, args.corpus, device)
        args.speed_out.write_text(json.dumps(rtfs, indent=2) + "\n", encoding="utf-8")
        log.info("speed (%.1f s): %s", time.time() - t_speed, json.dumps(rtfs))


if __name__ == "__main__":
    main()
