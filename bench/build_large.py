"""Full-size model directories with random weights, grown from the tiny parity directories.

Speed does not depend on the weight values, only on the shapes, so a Paraformer-large or SenseVoiceSmall
with seeded random weights is as good as the released one for timing. The tiny parity directory already
has the released file layout (config.yaml, configuration.json, am.mvn 560-dim, tokens/bpe model); this
script rewrites the sizes in config.yaml, grows the vocabulary to the released size, and writes a
``model.pt`` (a plain ``torch.save`` of the state dict) whose keys follow the tiny model's keys with every
block repeated as often as the large config asks. Both FunASR and our loader read the result.

    python -m bench.build_large paraformer ../shared/parity/paraformer/model /tmp/pl --calibrate-wav a.wav
    python -m bench.build_large sensevoice ../shared/parity/sensevoice/model /tmp/sv

Paraformer's CIF bias is then set by bisection so that the model emits about 4 tokens per second of speech
(the released model's rate), which makes the decoder do realistic work; this needs a model implementation:
our loader (``asr_engine.models.loader``) when it is importable, else FunASR.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

__all__ = [
    "PARAFORMER_LARGE",
    "SENSEVOICE_SMALL",
    "LargeDims",
    "build",
    "grow_state_dict",
    "paraformer_tokens",
    "random_weights",
    "sentencepiece_grown",
]

log = logging.getLogger(__name__)

SEED = 20260601


@dataclass(frozen=True, kw_only=True)
class LargeDims:
    """The sizes that differ between a tiny parity model and the released one."""

    d_model: int
    ffn: int
    heads: int
    encoder_blocks: int
    tp_blocks: int = 0
    decoder_blocks: int = 0
    att_layer_num: int = 0
    vocab: int


PARAFORMER_LARGE = LargeDims(
    d_model=512, ffn=2048, heads=4, encoder_blocks=50, decoder_blocks=16, att_layer_num=16, vocab=8404
)
SENSEVOICE_SMALL = LargeDims(d_model=512, ffn=2048, heads=4, encoder_blocks=50, tp_blocks=20, vocab=25055)
_FIXED_DIMS = {1, 3, 11, 16, 560}  # taps, kernel sizes, SenseVoice's 16 prompt rows, 80 mels x LFR 7
_BLOCK = re.compile(
    r"^(?P<prefix>.*?\.(?:encoders|tp_encoders|decoders|decoders2))\.(?P<index>\d+)\.(?P<rest>.*)$"
)


def _tiny_dims(config: dict) -> tuple[int, int]:
    encoder = config["encoder_conf"]
    return int(encoder["output_size"]), int(encoder["linear_units"])


def _grown_shape(key: str, shape: Sequence[int], tiny: tuple[int, int, int], large: LargeDims) -> list[int]:
    """Map each dimension of a tiny tensor to its large size by what it is (width, FFN, vocabulary)."""
    d_tiny, ffn_tiny, vocab_tiny = tiny
    out = []
    for dim in shape:
        if dim == vocab_tiny:
            out.append(large.vocab)
        elif dim == d_tiny:
            out.append(large.d_model)
        elif dim == 3 * d_tiny:
            out.append(3 * large.d_model)  # fused q, k, v
        elif dim == 2 * d_tiny and "linear_k_v" in key:
            out.append(2 * large.d_model)  # fused k, v of source attention
        elif dim == ffn_tiny:
            out.append(large.ffn)
        elif dim in _FIXED_DIMS:
            out.append(dim)
        else:
            raise ValueError(f"{key}: do not know how to grow dimension {dim} of {tuple(shape)}")
    return out


def _block_counts(large: LargeDims) -> dict[str, int]:
    return {
        "encoder.encoders": large.encoder_blocks - 1,  # encoders0 holds the first block
        "encoder.tp_encoders": large.tp_blocks,
        "decoder.decoders": large.att_layer_num,
        "decoder.decoders2": large.decoder_blocks - large.att_layer_num,
    }


def grow_state_dict(
    tiny: dict[str, torch.Tensor], tiny_dims: tuple[int, int, int], large: LargeDims
) -> dict[str, torch.Size]:
    """The large model's key -> shape, derived from the tiny state dict (block 0 is the template)."""
    counts = _block_counts(large)
    shapes: dict[str, torch.Size] = {}
    for key, tensor in tiny.items():
        match = _BLOCK.match(key)
        grown = torch.Size(_grown_shape(key, tensor.shape, tiny_dims, large))
        if match is None:
            shapes[key] = grown
            continue
        if match["index"] != "0":
            continue
        prefix, rest = match["prefix"], match["rest"]
        if prefix not in counts:
            raise ValueError(f"{key}: unknown block list {prefix}")
        for index in range(counts[prefix]):
            shapes[f"{prefix}.{index}.{rest}"] = grown
    return shapes


def random_weights(shapes: dict[str, torch.Size], seed: int = SEED) -> dict[str, torch.Tensor]:
    """Seeded weights with sane scales: N(0, 1/fan_in) matrices, small biases, LayerNorm weights near 1."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        if len(shape) == 1:
            base = 1.0 if ("norm" in key and key.endswith("weight")) else 0.0
            tensor = base + 0.05 * torch.randn(shape, generator=generator)
        else:
            fan_in = math.prod(shape[1:])
            tensor = torch.randn(shape, generator=generator) / math.sqrt(fan_in)
        state[key] = tensor.contiguous()
    if "predictor.cif_output.weight" in state:
        state["predictor.cif_output.weight"].mul_(3.0)
    if "decoder.output_layer.bias" in state:
        state["decoder.output_layer.bias"][0:3] -= 3.0  # rarely emit <blank>/<s>/</s>
    return state


def paraformer_tokens(tiny_tokens: Sequence[str], vocab: int) -> list[str]:
    """The tiny token list grown to ``vocab`` entries with CJK characters; ``<unk>`` stays last."""
    body = [t for t in tiny_tokens if t not in ("<blank>", "<s>", "</s>", "<unk>")]
    seen = set(body)
    code = 0x4E00
    while len(body) < vocab - 4:
        char = chr(code)
        code += 1
        if char not in seen:
            body.append(char)
            seen.add(char)
    return ["<blank>", "<s>", "</s>", *body, "<unk>"]


def sentencepiece_grown(model_bytes: bytes, vocab: int) -> bytes:
    """A sentencepiece model with extra single-character pieces appended until it has ``vocab`` pieces.

    Decoding ids (all SenseVoice does with it) works for any piece list; training a real 25,055-piece model
    would need far more text than we have and would not change the timing.
    """
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()  # type: ignore[attr-defined]
    proto.ParseFromString(model_bytes)
    existing = {piece.piece for piece in proto.pieces}
    score = min((piece.score for piece in proto.pieces), default=0.0)
    code = 0x4E00
    while len(proto.pieces) < vocab:
        char = chr(code)
        code += 1
        if char in existing:
            continue
        score -= 1.0
        piece = proto.pieces.add()
        piece.piece, piece.score = char, score
        piece.type = sentencepiece_model_pb2.ModelProto.SentencePiece.NORMAL  # type: ignore[attr-defined]
    proto.trainer_spec.vocab_size = len(proto.pieces)
    return proto.SerializeToString()


def _grow_config(config: dict, family: str, large: LargeDims) -> dict:
    encoder = config["encoder_conf"]
    encoder.update(
        output_size=large.d_model,
        attention_heads=large.heads,
        linear_units=large.ffn,
        num_blocks=large.encoder_blocks,
    )
    if family == "sensevoice":
        encoder["tp_blocks"] = large.tp_blocks
    if "decoder_conf" in config and large.decoder_blocks:
        config["decoder_conf"].update(
            attention_heads=large.heads,
            linear_units=large.ffn,
            num_blocks=large.decoder_blocks,
            att_layer_num=large.att_layer_num,
        )
    if "predictor_conf" in config:
        config["predictor_conf"]["idim"] = large.d_model
    return config


def _write_vocab(src: Path, out: Path, family: str, large: LargeDims) -> int:
    """Write the grown vocabulary files; returns the tiny vocabulary size."""
    if family == "paraformer":
        tiny_tokens = json.loads((src / "tokens.json").read_text(encoding="utf-8"))
        tokens = paraformer_tokens(tiny_tokens, large.vocab)
        (out / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
        lines = (
            (src / "seg_dict").read_text(encoding="utf-8").splitlines()
            if (src / "seg_dict").is_file()
            else []
        )
        words = {line.split(" ", 1)[0] for line in lines if line}
        lines += [f"{t} {t}" for t in tokens[3:-1] if len(t) == 1 and t not in words and ord(t) >= 0x4E00]
        (out / "seg_dict").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return len(tiny_tokens)
    bpe_files = sorted(src.glob("*.bpe.model")) or sorted(src.glob("*.model"))
    if not bpe_files:
        raise FileNotFoundError(f"no sentencepiece model in {src}")
    from sentencepiece import SentencePieceProcessor

    tiny_size = SentencePieceProcessor(model_file=str(bpe_files[0])).get_piece_size()
    grown = sentencepiece_grown(bpe_files[0].read_bytes(), large.vocab)
    (out / bpe_files[0].name).write_bytes(grown)
    return int(tiny_size)


def build(family: str, src: Path, out: Path, *, large: LargeDims | None = None, seed: int = SEED) -> int:
    """Write the large directory ``out`` (without CIF calibration); returns its parameter count."""
    large = large or (PARAFORMER_LARGE if family == "paraformer" else SENSEVOICE_SMALL)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("configuration.json", "am.mvn"):
        if (src / name).is_file():
            shutil.copyfile(src / name, out / name)
    config = yaml.safe_load((src / "config.yaml").read_text(encoding="utf-8"))
    d_tiny, ffn_tiny = _tiny_dims(config)
    tiny_vocab = _write_vocab(src, out, family, large)
    config = _grow_config(config, family, large)
    (out / "config.yaml").write_text(
        yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    tiny_state = torch.load(src / "model.pt", map_location="cpu", weights_only=True)
    shapes = grow_state_dict(tiny_state, (d_tiny, ffn_tiny, tiny_vocab), large)
    state = random_weights(shapes, seed)
    torch.save(state, out / "model.pt")
    return sum(t.numel() for t in state.values())


# ---------------------------------------------------------------------------------------- CIF calibration
def _bisect(rate: Callable[[float], float], target: float, steps: int = 30) -> float:
    low, high = -30.0, 30.0
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if rate(middle) < target else (low, middle)
    return (low + high) / 2


def _read_wavs(paths: Sequence[Path]) -> list[torch.Tensor]:
    from bench.corpus import read_wav

    return [torch.from_numpy(read_wav(p)[0]) for p in paths]


def _rate_with_our_model(
    out: Path, wavs: Sequence[torch.Tensor], device: torch.device
) -> Callable[[float], float]:
    """Tokens per second through our engine's model, with the CIF bias patched in place."""
    from asr_engine.features import Frontend
    from asr_engine.models.base import DecodeRequest
    from asr_engine.models.loader import load_model

    model: Any = load_model(out, device=device, dtype=torch.float32)
    bias = None
    for module in _modules_of(model):
        for name, param in module.named_parameters():
            if name.endswith("cif_output.bias"):
                bias = param
    if bias is None:
        raise LookupError("the loaded model exposes no parameter ending in cif_output.bias")
    frontend = Frontend(model.frontend, device)
    seconds = sum(w.numel() for w in wavs) / 16000.0
    with torch.inference_mode():
        feats, lengths = frontend([w.to(device) for w in wavs])

    def rate(value: float) -> float:
        with torch.inference_mode():
            bias.fill_(value)
            hyps = model.decode_batch(feats, lengths, [DecodeRequest() for _ in wavs])
        return sum(len(h.token_ids) for h in hyps) / seconds

    return rate


def _modules_of(model: object) -> list[torch.nn.Module]:
    if isinstance(model, torch.nn.Module):
        return [model]
    return [value for value in vars(model).values() if isinstance(value, torch.nn.Module)]


def _rate_with_funasr(
    out: Path, wavs: Sequence[torch.Tensor], device: torch.device
) -> Callable[[float], float]:
    """Tokens per second counted from FunASR's own predictor (the sum of CIF weights)."""
    from funasr import AutoModel

    model, kwargs = AutoModel.build_model(model=str(out), device="cpu", disable_update=True)
    model.to(device).eval()
    predictor = model.predictor
    seconds = sum(w.numel() for w in wavs) / 16000.0
    encoded = []
    with torch.inference_mode():
        for wav in wavs:
            feats, lengths = kwargs["frontend"](wav[None], [wav.numel()])
            encoded.append(model.encode(feats.to(device), lengths.to(device))[0])

    def rate(value: float) -> float:
        with torch.inference_mode():
            predictor.cif_output.bias.fill_(value)
            total = 0.0
            for enc in encoded:
                hidden = torch.relu(predictor.cif_conv1d(predictor.pad(enc.transpose(1, 2)))).transpose(1, 2)
                total += torch.sigmoid(predictor.cif_output(hidden)).sum().item()
        return total / seconds

    return rate


def calibrate_cif(out: Path, wav_paths: Sequence[Path], device: torch.device, target: float = 4.0) -> float:
    """Set ``predictor.cif_output.bias`` in ``out/model.pt`` so the model fires ``target`` tokens/s."""
    wavs = _read_wavs(wav_paths)
    try:
        rate = _rate_with_our_model(out, wavs, device)
        source = "asr_engine"
    except (ImportError, LookupError) as exc:
        log.warning("our model is not usable for calibration (%s); using FunASR", exc)
        rate = _rate_with_funasr(out, wavs, device)
        source = "funasr"
    value = _bisect(rate, target)
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    state["predictor.cif_output.bias"].fill_(value)
    torch.save(state, out / "model.pt")
    log.info("CIF bias %.4f gives %.2f tokens/s (%s)", value, rate(value), source)
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build a full-size random-weight FunASR model directory.")
    parser.add_argument("family", choices=("paraformer", "sensevoice"))
    parser.add_argument("tiny_dir", type=Path, help="the parity model directory of that family")
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--calibrate-wav",
        type=Path,
        action="append",
        default=[],
        help="speech WAVs for setting Paraformer's CIF rate (repeatable)",
    )
    parser.add_argument("--tokens-per-s", type=float, default=4.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="a 4-block model for dry runs on a CPU")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    large = PARAFORMER_LARGE if args.family == "paraformer" else SENSEVOICE_SMALL
    if args.small:
        large = LargeDims(
            d_model=512,
            ffn=2048,
            heads=4,
            encoder_blocks=4,
            tp_blocks=2 if large.tp_blocks else 0,
            decoder_blocks=2 if large.decoder_blocks else 0,
            att_layer_num=2 if large.att_layer_num else 0,
            vocab=large.vocab,
        )
    started = time.perf_counter()
    params = build(args.family, args.tiny_dir, args.out, large=large, seed=args.seed)
    log.info("built %s: %d parameters in %.1f s", args.out, params, time.perf_counter() - started)
    if args.family == "paraformer" and args.calibrate_wav:
        calibrate_cif(args.out, args.calibrate_wav, torch.device(args.device), args.tokens_per_s)
    print(
        json.dumps(
            {
                "dir": str(args.out),
                "family": args.family,
                "params": params,
                "build_s": round(time.perf_counter() - started, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
