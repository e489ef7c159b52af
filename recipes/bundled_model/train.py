"""Train the bundled SenseVoice-style CTC model on the synthetic corpus for a fixed wall-clock budget.

Reads shards as ``corpus.py`` writes them (it may still be running), featurises on the device with the
engine's ``Frontend`` (fbank + LFR 7/6; CMVN estimated here), augments on the device, trains with CTC,
evaluates greedy WER/CER on the held-out sets, and exports the FunASR directory.

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
from recipes.bundled_model import augment, export, metrics
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
            shards = load_new_shards(self.folder, self.loaded, sp=self.sp)
            if shards:
                with self.lock:
                    self.ready.extend(shards)
            if finished and not shards:
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--text", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=6.0)
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
    ap.add_argument("--max-steps", type=int, default=0)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(args.out / "train_log.txt")],
    )
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(args.seed)
    torch.backends.cuda.matmul.allow_tf32 = True
    bpe = args.text / export.BPE_NAME
    sp = spm.SentencePieceProcessor(model_file=str(bpe))
    log.info(
        "args %s; device %s (%s); torch %s",
        vars(args),
        device,
        torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        torch.__version__,
    )

    pool = Pool(device, sp, int(args.capacity_hours * 3600 * 16000))
    t_wait = time.time()
    while True:
        pool.poll(args.corpus)
        if len(pool.starts) >= args.min_utts or (args.corpus / "DONE").exists():
            pool.poll(args.corpus)
            break
        time.sleep(2)
    log.info("waited %.1f s for the first %d utterances", time.time() - t_wait, len(pool.starts))

    base = Frontend(FrontendConfig(), device)
    shift, scale = estimate_cmvn(base, pool)
    frontend = Frontend(FrontendConfig(cmvn_shift=shift.cpu(), cmvn_scale=scale.cpu()), device)
    dims = SanmEncoderDims(
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
    net = SenseVoiceTrainNet(dims, sp.get_piece_size()).to(device)
    n_params = sum(p.numel() for p in net.parameters())
    log.info("model: %.2f M parameters, vocab %d", n_params / 1e6, sp.get_piece_size())
    decay = [p for n, p in net.named_parameters() if p.ndim >= 2 and "embed" not in n]
    no_decay = [p for n, p in net.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-8,
        fused=device.type == "cuda",
    )

    reader = ShardReader(args.corpus, set(pool.loaded), sp)
    budget = int(args.budget_seconds * 16000)
    total_s = args.minutes * 60
    t0 = time.time()
    last_ckpt = t0
    step = 0
    queue: list[list[int]] = []
    loss_acc = 0.0
    n_acc = 0
    seen_s = 0.0

    def save(tag: str) -> None:
        export.export(args.out, net.export_state(), dims, bpe, shift.cpu(), scale.cpu())
        log.info("exported (%s) at step %d", tag, step)

    while True:
        elapsed = time.time() - t0
        if elapsed >= total_s or (args.max_steps and step >= args.max_steps):
            break
        if step % 50 == 0:
            added = pool.add_loaded(reader.take())
            if added:
                log.info("pool: +%d utterances, now %d (%.1f h)", added, len(pool.starts), pool.hours)
        if not queue:
            queue = pool.batches(rng, budget)
        batch = queue.pop()
        frac = elapsed / total_s
        lr = (
            args.lr
            * min(1.0, (step + 1) / args.warmup)
            * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * frac)))
        )
        for g in opt.param_groups:
            g["lr"] = lr

        with torch.no_grad():
            x, lens = pool.gather(batch)
            x = augment.augment(x, lens, gen, p=args.aug_p * min(1.0, frac / args.aug_ramp))
            host_lens = [pool.lengths[i] for i in batch]
            feats, flens = frontend([x[i, :n] for i, n in enumerate(host_lens)])
            feats = augment.spec_augment(feats, flens, gen)
        langs = [pool.langs[i] for i in batch]
        rows = torch.tensor([LANG_ROWS[lang] if rng.random() < 0.5 else 0 for lang in langs], device=device)
        targets = [pool.targets[i] for i in batch]
        tgt = torch.tensor([t for ts in targets for t in ts], device=device)
        tlen = torch.tensor([len(t) for t in targets], device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            lp, olens = net(feats, flens, rows)
        loss = F.ctc_loss(lp.transpose(0, 1), tgt, olens, tlen, blank=0, reduction="sum", zero_infinity=True)
        loss = loss / len(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        step += 1
        seen_s += sum(host_lens) / 16000
        loss_acc += float(loss.detach()) if step % 50 == 0 else 0.0
        n_acc += 1 if step % 50 == 0 else 0
        if step % 250 == 0:
            log.info(
                "step %d  %.0f s  lr %.2e  loss %.3f  batch %d  seen %.1f h",
                step,
                elapsed,
                lr,
                loss_acc / max(n_acc, 1),
                len(batch),
                seen_s / 3600,
            )
            loss_acc, n_acc = 0.0, 0
        if time.time() - last_ckpt > args.checkpoint_every:
            save("periodic")
            last_ckpt = time.time()

    reader.stop()
    train_s = time.time() - t0
    log.info(
        "training done: %d steps, %.1f s, %.1f h of audio seen, pool %d utterances (%.1f h)",
        step,
        train_s,
        seen_s / 3600,
        len(pool.starts),
        pool.hours,
    )
    save("final")
    t_eval = time.time()
    results = evaluate(net, frontend, sp, args.corpus, device)
    results["train"] = {
        "steps": step,
        "seconds": round(train_s, 1),
        "audio_hours_seen": round(seen_s / 3600, 2),
        "pool_utterances": len(pool.starts),
        "pool_hours": round(pool.hours, 2),
        "parameters": n_params,
    }
    log.info("eval (%.1f s): %s", time.time() - t_eval, json.dumps(results, ensure_ascii=False))
    (args.out.parent / "eval_gpu.json").write_text(
        json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    main()
