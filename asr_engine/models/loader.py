"""Read FunASR/ModelScope model directories and load their weights strictly.

``read_model_dir`` resolves the files of a directory the way FunASR 1.4.16 does (``configuration.json``'s
``file_path_metas`` first, else fixed-name probing); ``load_model`` dispatches on ``config["model"]``
through a plain table to the family module's ``from_model_dir``. Unlike FunASR, weights are loaded
strictly: a missing, unexpected or mis-shaped tensor is an error, never a silently random layer.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from asr_engine.errors import ModelLoadError

__all__ = [
    "MODEL_FAMILIES",
    "ModelDir",
    "assign_weights",
    "load_checkpoint",
    "load_model",
    "read_model_dir",
]

log = logging.getLogger(__name__)

# config.yaml ``model:`` value -> module exposing ``from_model_dir(model_dir, *, device, dtype)``.
MODEL_FAMILIES: dict[str, str] = {
    "Paraformer": "asr_engine.models.paraformer",
    "SeacoParaformer": "asr_engine.models.seaco_paraformer",
    "SenseVoiceSmall": "asr_engine.models.sensevoice",
    "FsmnVADStreaming": "asr_engine.models.fsmn_vad",
    "CTTransformer": "asr_engine.models.ct_punc",
}

_CHECKPOINT_WRAPPERS = ("state_dict", "model_state_dict", "model")


@dataclass(frozen=True, kw_only=True)
class ModelDir:
    """A resolved model directory: its parsed config.yaml and the absolute paths of its files.

    A path is None when the directory does not provide that file (under FunASR's resolution rules).
    """

    path: Path
    config: dict[str, Any]
    model_type: str
    checkpoint: Path | None = None
    token_list: Path | None = None
    seg_dict: Path | None = None
    bpe_model: Path | None = None
    cmvn_file: Path | None = None
    jieba_usr_dict: Path | None = None

    def require(self, name: str) -> Path:
        """The path field ``name``, or a ModelLoadError saying the directory lacks it."""
        value = getattr(self, name)
        if value is None:
            raise ModelLoadError(f"{self.path}: the model directory has no {name} file")
        return Path(value)


def _existing(root: Path, value: Any) -> Path | None:
    if not isinstance(value, str) or not value:
        return None
    candidate = (root / value).resolve()
    return candidate if candidate.is_file() else None


def _lookup(meta: Mapping[str, Any], *keys: str) -> Any:
    node: Any = meta
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open("r", encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ModelLoadError(f"{path}: cannot read config: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: config is not a mapping")
    return data


def _fallback_checkpoint(root: Path) -> Path | None:
    for name in ("model.pt", "model.safetensors"):
        if (root / name).is_file():
            return (root / name).resolve()
    tensors = sorted(root.glob("*.safetensors"))
    if len(tensors) == 1:
        return tensors[0].resolve()
    return None


def read_model_dir(path: str | Path) -> ModelDir:
    """Resolve a FunASR model directory (funasr-spec §1.1)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ModelLoadError(f"model directory {str(root)!r} does not exist or is not a directory")
    root = root.resolve()
    files: dict[str, Path | None] = {}
    meta_file = root / "configuration.json"
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{meta_file}: cannot parse: {exc}") from exc
        metas = meta.get("file_path_metas", {}) if isinstance(meta, dict) else {}
        config_path = _existing(root, _lookup(metas, "config")) or _existing(root, "config.yaml")
        files["checkpoint"] = _existing(root, _lookup(metas, "init_param"))
        files["token_list"] = _existing(root, _lookup(metas, "tokenizer_conf", "token_list"))
        files["seg_dict"] = _existing(root, _lookup(metas, "tokenizer_conf", "seg_dict_file")) or _existing(
            root, _lookup(metas, "tokenizer_conf", "seg_dict")
        )
        files["bpe_model"] = _existing(root, _lookup(metas, "tokenizer_conf", "bpemodel"))
        files["cmvn_file"] = _existing(root, _lookup(metas, "frontend_conf", "cmvn_file"))
        files["jieba_usr_dict"] = _existing(root, _lookup(metas, "jieba_usr_dict"))
    else:
        config_path = _existing(root, "config.yaml")
        files["checkpoint"] = _existing(root, "model.pt")
        files["token_list"] = _existing(root, "tokens.txt") or _existing(root, "tokens.json")
        files["seg_dict"] = _existing(root, "seg_dict")
        files["bpe_model"] = _existing(root, "bpe.model")
        files["cmvn_file"] = _existing(root, "am.mvn")
        files["jieba_usr_dict"] = _existing(root, "jieba_usr_dict")
    if config_path is None:
        raise ModelLoadError(f"{root}: no config.yaml found")
    if files["checkpoint"] is None:
        # Our own bundled/converted directories ship safetensors instead of model.pt.
        files["checkpoint"] = _fallback_checkpoint(root)
    config = _read_yaml(config_path)
    model_type = config.get("model")
    if not isinstance(model_type, str) or not model_type:
        raise ModelLoadError(f"{config_path}: missing the top-level 'model' key")
    return ModelDir(path=root, config=config, model_type=model_type, **files)


def _unwrap(obj: Any, source: Path) -> dict[str, torch.Tensor]:
    for key in _CHECKPOINT_WRAPPERS:
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{source}: checkpoint is not a state dict")
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            continue
        name = key[len("module.") :] if key.startswith("module.") else key
        out[name] = value
    return out


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a flat CPU state dict from model.pt (weights only) or a .safetensors file."""
    source = Path(path)
    if not source.is_file():
        raise ModelLoadError(f"checkpoint {str(source)!r} does not exist")
    if source.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(source), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types
            raise ModelLoadError(f"{source}: cannot read safetensors: {exc}") from exc
    try:
        obj = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise ModelLoadError(f"{source}: cannot load checkpoint: {exc}") from exc
    return _unwrap(obj, source)


def assign_weights(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    ignore_unexpected: Iterable[str] = (),
) -> None:
    """Copy ``state_dict`` into ``module`` strictly: same key set, same shapes, else ModelLoadError.

    ``ignore_unexpected`` lists key prefixes a family knowingly leaves unused (they must be named).
    """
    expected = module.state_dict()
    ignored = tuple(ignore_unexpected)
    for key, target in expected.items():
        if key not in state_dict:
            raise ModelLoadError(f"checkpoint lacks {key!r} (expected shape {tuple(target.shape)})")
        got = state_dict[key]
        if tuple(got.shape) != tuple(target.shape):
            raise ModelLoadError(
                f"checkpoint tensor {key!r} has shape {tuple(got.shape)}, expected {tuple(target.shape)}"
            )
    extra = [k for k in state_dict if k not in expected and not k.startswith(ignored)]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise ModelLoadError(f"checkpoint has unexpected tensor {extra[0]!r}{more}")
    subset = {k: state_dict[k] for k in expected}
    module.load_state_dict(subset, strict=True)


def load_model(path: str | Path, *, device: torch.device, dtype: torch.dtype = torch.float32) -> object:
    """Read a FunASR directory and build its model through the family table."""
    model_dir = read_model_dir(path)
    module_name = MODEL_FAMILIES.get(model_dir.model_type)
    if module_name is None:
        supported = ", ".join(sorted(MODEL_FAMILIES))
        raise ModelLoadError(
            f"{model_dir.path}: model type {model_dir.model_type!r} is not supported (supported: {supported})"
        )
    family = importlib.import_module(module_name)
    log.info("loading %s from %s on %s (%s)", model_dir.model_type, model_dir.path, device, dtype)
    return family.from_model_dir(model_dir, device=device, dtype=dtype)
