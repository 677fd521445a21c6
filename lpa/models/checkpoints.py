"""Checkpoints: our own format, and PaCo's (import and export).

Our format is one ``torch.save`` dict: ``format_version``, ``config`` (the resolved training
config), ``model_config`` (:class:`~lpa.models.networks.ModelConfig` as a dict), ``num_classes``,
``model`` (the state dict, loaded with ``strict=True``), ``epoch``, ``history`` and, while
training runs, ``optimizer``: tensors and plain Python values only, so every checkpoint, ours and
PaCo's, is read with ``torch.load(weights_only=True)`` and no code in a file runs. Files are
written to a temporary name and moved into place.

PaCo's format is what ``PaCo/LT/paco_cifar.py`` and ``paco_lt.py`` save: ``state_dict`` of
the DistributedDataParallel-wrapped ``moco.builder.MoCo`` (``module.`` prefix), holding
``encoder_q.*`` (backbone, and the projection head as ``encoder_q.fc.{0,1,3}``),
``encoder_k.*`` (the momentum copy), ``linear.*`` (the classifier), ``linear_k.*`` (a
momentum copy of the classifier that PaCo never uses), ``queue``, ``queue_l`` and
``queue_ptr``. Our module names are PaCo's, so the two layouts differ by a prefix only.

The workflow's ``import_paco`` rule runs :mod:`lpa.import_paco` on a file of PaCo's.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from lpa.io.files import atomic_path
from lpa.models.networks import LongTailNet, ModelConfig

log = logging.getLogger("lpa.checkpoints")

# 2: module names as PaCo's (conv1/bn1/layer<i>, projector numbered as encoder_q.fc), queue_ptr
FORMAT_VERSION = 2

# our prefix -> PaCo's
_PACO_PREFIXES = (
    ("key_projector.", "encoder_k.fc."),
    ("key_backbone.", "encoder_k."),
    ("projector.", "encoder_q.fc."),
    ("backbone.", "encoder_q."),
    ("classifier.", "linear."),
)
_PACO_BUFFERS = {"queue": "queue", "queue_labels": "queue_l", "queue_ptr": "queue_ptr"}
_PACO_IGNORED = ("linear_k.",)  # PaCo's momentum classifier: updated, never used


def save_checkpoint(path: str | Path, **fields) -> None:
    """Write our format atomically: ``format_version`` plus ``fields``."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": FORMAT_VERSION, **fields}, tmp)


def _refusal(err: Exception) -> str:
    """The line of torch's (many-line) ``weights_only`` error that says what it refused."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        line = line.partition("WeightsUnpickler error:")[2].strip() or line
        if "GLOBAL" in line or "unsupported" in line.lower():
            return line.split(". Please")[0]
    return lines[0] if lines else type(err).__name__


def _torch_load(path: str | Path, device: torch.device | str, what: str, kind: str):
    """``torch.load(weights_only=True)``; a file it refuses or cannot parse is a ValueError naming it."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"missing {what} {path}") from None
    except pickle.UnpicklingError as err:  # a global outside torch's allow-list, or not a pickle at all
        raise ValueError(f"{path} is not {kind} readable without running code: {_refusal(err)}") from None
    except PermissionError:
        raise
    except (EOFError, RuntimeError, OSError) as err:  # empty, or a truncated zip archive
        raise ValueError(f"{path} is not {kind}: {(str(err).splitlines() or ['empty file'])[0]}") from None


_MODEL_KEYS = ("model_config", "num_classes", "model")


def read_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict:
    """The checkpoint dict of our format, its version checked."""
    ckpt = _torch_load(path, device, "checkpoint", "an LPA checkpoint")
    version = ckpt.get("format_version") if isinstance(ckpt, dict) else None
    if version != FORMAT_VERSION:
        raise ValueError(f"{path} has checkpoint format {version!r}, expected {FORMAT_VERSION}")
    return ckpt


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[LongTailNet, dict]:
    """Rebuild the model stored in one of our checkpoints (strict load); returns it and the dict."""
    ckpt = read_checkpoint(path, device)
    missing = [key for key in _MODEL_KEYS if key not in ckpt]
    if missing:
        raise ValueError(f"{path} is not a model checkpoint: missing keys {', '.join(missing)}")
    model = LongTailNet(ModelConfig(**ckpt["model_config"]), ckpt["num_classes"])
    model.load_state_dict(ckpt["model"], strict=True)
    return model.to(device), ckpt


def paco_key(name: str) -> str:
    """PaCo's name (without ``module.``) of one of our state-dict entries."""
    if name in _PACO_BUFFERS:
        return _PACO_BUFFERS[name]
    for ours, theirs in _PACO_PREFIXES:
        if name.startswith(ours):
            return theirs + name[len(ours) :]
    raise KeyError(f"{name!r} has no counterpart in PaCo's MoCo model")


def export_paco(model: LongTailNet) -> dict[str, torch.Tensor]:
    """Our model's state dict in PaCo's layout, as PaCo's DDP training saves it (``module.`` prefix).

    ``linear_k.*`` is written as a copy of the classifier, as PaCo initialises it.
    """
    if not model.contrastive:
        raise ValueError("PaCo's layout needs the contrastive branch (a model with proj_dims)")
    state = {f"module.{paco_key(k)}": v.detach().clone() for k, v in model.state_dict().items()}
    for k, v in model.classifier.state_dict().items():
        state[f"module.linear_k.{k}"] = v.detach().clone()
    return state


def _paco_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    obj = _torch_load(path, "cpu", "PaCo checkpoint", "a PaCo checkpoint")
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no state dict (expected PaCo's {{'state_dict': ...}})")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def _listed(keys) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - 8} more" if len(keys) > 8 else ""
    return ", ".join(keys[:8]) + more


def import_paco(path: str | Path, model_config: ModelConfig, num_classes: int) -> LongTailNet:
    """Our model built from a checkpoint saved by PaCo's ``paco_cifar.py`` / ``paco_lt.py``.

    Query encoder, key encoder, classifier and the full queue are loaded; the next enqueue
    writes at PaCo's ``queue_ptr``. A key that is missing, unexpected (other than PaCo's
    unused ``linear_k.*``) or of another shape than ``model_config`` builds is an error naming it.
    """
    model = LongTailNet(model_config, num_classes)
    if not model.contrastive:
        raise ValueError("import_paco needs model_config.proj_dims (PaCo's projection head)")
    ours = model.state_dict()
    wanted = {paco_key(k): k for k in ours}
    state = {k: v for k, v in _paco_state_dict(path).items() if not k.startswith(_PACO_IGNORED)}
    missing, unexpected = set(wanted) - set(state), set(state) - set(wanted)
    if missing or unexpected:
        parts = [f"missing keys: {_listed(missing)}" if missing else "",
                 f"unexpected keys: {_listed(unexpected)}" if unexpected else ""]  # fmt: skip
        raise ValueError(
            f"{path} does not match PaCo's MoCo({model_config.arch}, proj_dims={tuple(model_config.proj_dims)}, "
            f"queue {model_config.queue_size}, {num_classes} classes): " + "; ".join(p for p in parts if p)
        )
    for theirs, name in wanted.items():
        if state[theirs].shape != ours[name].shape:
            raise ValueError(
                f"{path}: {theirs} has shape {tuple(state[theirs].shape)}, "
                f"the model_config builds {tuple(ours[name].shape)}"
            )
    model.load_state_dict({name: state[theirs].to(ours[name].dtype) for theirs, name in wanted.items()}, strict=True)
    return model
