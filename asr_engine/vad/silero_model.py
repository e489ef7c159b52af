"""The silero VAD v5/v6 16 kHz network, re-implemented so that it batches and runs on our device.

Per 512-sample window (32 ms) the network sees 576 samples: the 64 samples before the window (zeros
before the first one) and the window. Front end: reflect-pad 64 samples on the right, a fixed STFT as a
strided Conv1d (256 taps, hop 128, 129 real + 129 imaginary filters), magnitude, four Conv1d+ReLU layers
(129->128, 128->64 stride 2, 64->64 stride 2, 64->128) leaving one 128-dim vector. Decoder: an LSTM cell
(128) carried from window to window, ReLU, a 1x1 convolution and a sigmoid: the speech probability.

The front end is independent per window, so all windows of a recording (or of many) are computed as one
batch; only the LSTM is sequential, and it runs as one ``nn.LSTM`` call over the window sequence with
several recordings side by side.

Weights come from the installed ``silero-vad`` package. Its TorchScript model (``silero_vad.jit``, what
``load_silero_vad()`` returns) and its ``silero_vad_16k.safetensors`` hold *different* weights (6.2.3: the
safetensors file is an older release), so ``source="jit"`` (default: the package's current model, which
our module reproduces to 1e-5) reads the tensors of the TorchScript file, ``source="safetensors"`` the
other file. Both go through the same strict key/shape check.
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from asr_engine.errors import ModelLoadError

__all__ = [
    "CONTEXT_SAMPLES",
    "WINDOW_SAMPLES",
    "SileroNet",
    "bundled_weights_path",
    "load_silero_net",
    "silero_state_dict",
]

log = logging.getLogger(__name__)

WINDOW_SAMPLES = 512
CONTEXT_SAMPLES = 64
_N_FFT = 256
_HOP = 128
_BINS = _N_FFT // 2 + 1
_HIDDEN = 128

# source key -> our parameter name; the LSTM cell's weights drive an nn.LSTM with the same gates.
_SAFETENSORS_KEYS = {
    "stft_conv.weight": "stft_conv.weight",
    "conv1.weight": "conv1.weight",
    "conv1.bias": "conv1.bias",
    "conv2.weight": "conv2.weight",
    "conv2.bias": "conv2.bias",
    "conv3.weight": "conv3.weight",
    "conv3.bias": "conv3.bias",
    "conv4.weight": "conv4.weight",
    "conv4.bias": "conv4.bias",
    "lstm_cell.weight_ih": "lstm.weight_ih_l0",
    "lstm_cell.weight_hh": "lstm.weight_hh_l0",
    "lstm_cell.bias_ih": "lstm.bias_ih_l0",
    "lstm_cell.bias_hh": "lstm.bias_hh_l0",
    "final_conv.weight": "final_conv.weight",
    "final_conv.bias": "final_conv.bias",
}
_JIT_KEYS = {
    "stft.forward_basis_buffer": "stft_conv.weight",
    **{f"encoder.{i}.reparam_conv.{p}": f"conv{i + 1}.{p}" for i in range(4) for p in ("weight", "bias")},
    **{f"decoder.rnn.{p}": f"lstm.{p}_l0" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
    "decoder.decoder.2.weight": "final_conv.weight",
    "decoder.decoder.2.bias": "final_conv.bias",
}
_FILES = {"jit": "silero_vad.jit", "safetensors": "silero_vad_16k.safetensors"}


class SileroNet(nn.Module):
    """Silero VAD 16 kHz: ``encode`` windows in a batch, ``decode`` the window sequence with the LSTM."""

    def __init__(self) -> None:
        super().__init__()
        self.stft_conv = nn.Conv1d(1, 2 * _BINS, _N_FFT, stride=_HOP, bias=False)
        self.conv1 = nn.Conv1d(_BINS, 128, 3, padding=1)
        self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
        self.conv4 = nn.Conv1d(64, _HIDDEN, 3, padding=1)
        self.lstm = nn.LSTM(_HIDDEN, _HIDDEN, batch_first=True)
        self.final_conv = nn.Conv1d(_HIDDEN, 1, 1)

    def encode(self, windows: torch.Tensor) -> torch.Tensor:
        """``windows`` (N, 576) = 64 context samples + 512 window samples -> features (N, 128)."""
        x = F.pad(windows.unsqueeze(1), (0, CONTEXT_SAMPLES), mode="reflect")  # (N, 1, 640)
        spec = self.stft_conv(x)  # (N, 258, 4)
        mag = torch.sqrt(spec[:, :_BINS] ** 2 + spec[:, _BINS:] ** 2)
        x = torch.relu(self.conv1(mag))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        x = torch.relu(self.conv4(x))  # (N, 128, 1)
        return x.squeeze(-1)

    def decode(
        self, feats: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``feats`` (B, S, 128) in window order -> probabilities (B, S) and the LSTM state (h, c)."""
        hidden, new_state = self.lstm(feats, state)
        logits = self.final_conv(torch.relu(hidden).transpose(1, 2))  # (B, 1, S)
        return torch.sigmoid(logits).squeeze(1), (new_state[0], new_state[1])

    def initial_state(
        self, batch: int, *, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(1, batch, _HIDDEN, device=device, dtype=dtype)
        return zeros, zeros.clone()


def bundled_weights_path(source: str = "jit") -> Path:
    """The weights file of ``source`` ("jit" or "safetensors") inside the installed ``silero-vad``."""
    if source not in _FILES:
        raise ModelLoadError(f"unknown silero weight source {source!r}; use 'jit' or 'safetensors'")
    # Located, not imported: importing silero_vad calls torch.set_num_threads(1) for the whole process,
    # which made the single-process server's CPU inference single-threaded.
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the silero-vad package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))).resolve() / "data" / _FILES[source]
    if not path.is_file():
        raise ModelLoadError(f"silero-vad weights not found at {path}")
    return path


def silero_state_dict(path: Path, source: str) -> dict[str, torch.Tensor]:
    """The tensors of a silero weights file, renamed to ``SileroNet``'s parameter names (checked)."""
    try:
        if source == "jit":
            with warnings.catch_warnings():  # TorchScript loading is deprecated in torch >= 2.12; still works
                warnings.simplefilter("ignore", DeprecationWarning)
                scripted = torch.jit.load(str(path), map_location="cpu")
            raw = {k: v.detach().clone() for k, v in scripted._model.state_dict().items()}
            key_map = _JIT_KEYS
        else:
            from safetensors.torch import load_file

            raw = load_file(str(path))
            key_map = _SAFETENSORS_KEYS
    except (OSError, RuntimeError, AttributeError) as exc:
        raise ModelLoadError(f"cannot read silero weights {path}: {exc}") from exc
    missing = sorted(set(key_map) - set(raw))
    unexpected = sorted(set(raw) - set(key_map))
    if missing or unexpected:
        raise ModelLoadError(f"silero weights {path}: missing {missing}, unexpected {unexpected}")
    return {key_map[k]: v for k, v in raw.items()}


def load_silero_net(
    path: Path | None = None,
    *,
    source: str = "jit",
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> SileroNet:
    """Build ``SileroNet`` from the package's weights (or ``path`` of the same ``source`` kind)."""
    path = path or bundled_weights_path(source)
    state = silero_state_dict(path, source)
    net = SileroNet()
    for name, param in net.state_dict().items():
        if tuple(state[name].shape) != tuple(param.shape):
            got, want = tuple(state[name].shape), tuple(param.shape)
            raise ModelLoadError(f"silero weights {path}: {name} has shape {got}, expected {want}")
    net.load_state_dict(state, strict=True)
    log.debug("silero VAD weights loaded from %s (%s)", path, source)
    return net.to(device=device, dtype=dtype).eval().requires_grad_(False)
