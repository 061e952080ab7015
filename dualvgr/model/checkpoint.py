"""Model checkpoints: the original ``train.py`` format and our self-describing one.

Follows ``../shared/reference/dualvgr-original.md`` §3.11 (inferring dimensions from the tensors, the
``module.`` prefix of DataParallel, strict loading), §4.4 (the original file: ``epoch``, ``state_dict``,
``optimizer``, ``model_kwargs`` without ``unit_layers``), B11, B17 and B33 (``weights_only=True``).

Our format is ``{"format": CHECKPOINT_FORMAT, "config": DualVGRConfig as a dict, "state_dict": ..., **extra}``,
where the trainer adds its extras (spec hash, vocabulary sha, optimizer state, epoch...). Evaluation rebuilds
the model from ``config`` alone, so no dimension or flag has to be repeated by hand.

Graph indexing of original checkpoints with graph_layers > 1 (B11): the original routed unit u, layer j to
graph module u+j, and its weights were trained that way. ``original_graph_indexing=None`` (the default) therefore
replays u+j for such checkpoints and warns; pass ``True`` to silence the warning or ``False`` to use u*G+j.
With graph_layers = 1 (every shipped config) the two agree and nothing is said.

This is the only file under ``dualvgr/model/`` that touches files.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from dualvgr.core.errors import DataError, SpecError
from dualvgr.model.dualvgr import DualVGR, DualVGRConfig

CHECKPOINT_FORMAT = "dualvgr-harness/model-v1"
_RESERVED_KEYS = ("format", "config", "state_dict")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP (B41) and torch.compile

_MOTION = "visual_motion_input_unit.weight"
_EMBED = "linguistic_input_unit.encoder_embed.weight"
_CLASSIFIER = "output_unit.classifier.5.weight"
_QUERY_ATTN = re.compile(r"^visual_input_unit\.queryAttn\.(\d+)\.feat_enhance\.weight$")
_GAT = re.compile(r"^visual_input_unit\.appearance_GCN\.(\d+)\.attention_(\d+)\.W\.weight$")

PathOrMapping = str | os.PathLike | Mapping[str, Any]


def strip_prefixes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile) prefix from every key."""
    out = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def config_from_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    num_clips: int | None = None,
    frames_per_clip: int | None = None,
    original_graph_indexing: bool = False,
) -> DualVGRConfig:
    """Every dimension from the tensors (§3.11): vision/module/word dims, vocabulary sizes, U, G and heads.

    N and F are not in the weights: ``None`` means the model does not check them.
    """
    sd = strip_prefixes(state_dict)
    for key in (_MOTION, _EMBED, _CLASSIFIER):
        if key not in sd:
            raise DataError(f"not a DualVGR state_dict: key '{key}' is missing ({len(sd)} keys present)")
    module_dim, vision_dim = sd[_MOTION].shape
    question_vocab_size, word_dim = sd[_EMBED].shape
    answer_vocab_size = sd[_CLASSIFIER].shape[0]
    units = sorted({int(m.group(1)) for k in sd if (m := _QUERY_ATTN.match(k))})
    graphs = sorted({int(m.group(1)) for k in sd if (m := _GAT.match(k))})
    heads = sorted({int(m.group(2)) for k in sd if (m := _GAT.match(k))})
    if not units or units != list(range(len(units))):
        raise DataError(f"not a DualVGR state_dict: queryAttn unit indices {units}, expected 0..U-1")
    if not graphs or graphs != list(range(len(graphs))) or len(graphs) % len(units):
        raise DataError(
            f"not a DualVGR GAT state_dict: appearance_GCN indices {graphs} are not 0..U*G-1 for U={len(units)} "
            f"(a graph_module other than GAT has no GAT keys)"
        )
    return DualVGRConfig(
        question_vocab_size=int(question_vocab_size),
        answer_vocab_size=int(answer_vocab_size),
        vision_dim=int(vision_dim),
        module_dim=int(module_dim),
        word_dim=int(word_dim),
        num_clips=num_clips,
        frames_per_clip=frames_per_clip,
        unit_layers=len(units),
        graph_layers=len(graphs) // len(units),
        gat_heads=len(heads),
        original_graph_indexing=original_graph_indexing,
    )


def _read(path_or_mapping: PathOrMapping, map_location: Any) -> Mapping[str, Any]:
    if isinstance(path_or_mapping, Mapping):
        return path_or_mapping
    try:
        payload = torch.load(path_or_mapping, map_location=map_location, weights_only=True)  # B33
    except FileNotFoundError:
        raise DataError(f"checkpoint {os.fspath(path_or_mapping)} does not exist") from None
    except Exception as exc:  # unpickling errors carry their own reason
        raise DataError(
            f"cannot read checkpoint {os.fspath(path_or_mapping)} with weights_only=True: {exc}"
        ) from exc
    if not isinstance(payload, Mapping):
        raise DataError(f"checkpoint {os.fspath(path_or_mapping)} holds a {type(payload).__name__}, expected a dict")
    return payload


def _where(path_or_mapping: PathOrMapping) -> str:
    """How messages name a checkpoint: its path, or "checkpoint" for one given as a dict."""
    return "checkpoint" if isinstance(path_or_mapping, Mapping) else f"checkpoint {os.fspath(path_or_mapping)}"


def _build(
    config: DualVGRConfig, state_dict: Mapping[str, torch.Tensor], map_location: Any, where: str = "checkpoint"
) -> DualVGR:
    model = DualVGR(config)
    try:
        model.load_state_dict(strip_prefixes(state_dict), strict=True)
    except RuntimeError as exc:
        raise DataError(f"{where} does not fit the model it describes ({config}): {exc}") from exc
    if map_location is not None:
        model.to(map_location)
    return model.eval()


def load_original_checkpoint(
    path_or_state_dict: PathOrMapping,
    *,
    original_graph_indexing: bool | None = None,
    num_clips: int | None = None,
    frames_per_clip: int | None = None,
    map_location: Any = "cpu",
) -> DualVGR:
    """A model in eval mode from an original ``train.py`` file (a dict with ``state_dict``) or a bare state dict.

    ``num_clips`` defaults to the file's ``model_kwargs['num_of_nodes']`` where present, else is not checked.
    """
    payload = _read(path_or_state_dict, map_location)
    state_dict = payload["state_dict"] if "state_dict" in payload else payload
    kwargs = payload.get("model_kwargs") or {}
    if kwargs.get("graph_module", "GAT") != "GAT":
        raise DataError(f"checkpoint was trained with graph_module={kwargs['graph_module']!r}; only 'GAT' works")
    if num_clips is None and isinstance(kwargs.get("num_of_nodes"), int):
        num_clips = kwargs["num_of_nodes"]
    config = config_from_state_dict(state_dict, num_clips=num_clips, frames_per_clip=frames_per_clip)
    if "graph_layers" in kwargs and kwargs["graph_layers"] != config.graph_layers:
        raise DataError(
            f"checkpoint model_kwargs say graph_layers={kwargs['graph_layers']} but its weights hold "
            f"{config.graph_layers} graph layers per unit (U={config.unit_layers})"
        )
    if original_graph_indexing is None:
        original_graph_indexing = config.graph_layers > 1
        if original_graph_indexing:
            warnings.warn(
                f"original checkpoint has graph_layers={config.graph_layers}: replaying the original graph "
                f"indexing u+j it was trained with (B11); pass original_graph_indexing=True/False to choose",
                stacklevel=2,
            )
    config.original_graph_indexing = bool(original_graph_indexing)
    return _build(config, state_dict, map_location)


def model_checkpoint(model: torch.nn.Module, **extra: Any) -> dict[str, Any]:
    """Our self-describing checkpoint payload (save it with ``torch.save``).

    The state dict is a CPU copy, so the payload does not change as training goes on.
    """
    for attr in ("module", "_orig_mod"):  # DataParallel / torch.compile wrappers
        while hasattr(model, attr) and isinstance(getattr(model, attr), torch.nn.Module):
            model = getattr(model, attr)
    if not isinstance(model, DualVGR):
        raise TypeError(f"model_checkpoint expects a DualVGR, got {type(model).__name__}")
    clash = sorted(set(extra) & set(_RESERVED_KEYS))
    if clash:
        raise ValueError(f"extra checkpoint keys {clash} would overwrite the reserved {list(_RESERVED_KEYS)}")
    state_dict = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return {"format": CHECKPOINT_FORMAT, "config": model.config.to_dict(), "state_dict": state_dict, **extra}


def load_model_checkpoint(
    path_or_dict: PathOrMapping, *, map_location: Any = "cpu", original_graph_indexing: bool | None = None
) -> tuple[DualVGR, dict[str, Any]]:
    """(model in eval mode, payload) from our format or an original one (told apart by the ``format`` key).

    ``original_graph_indexing`` only applies to original checkpoints; ours record it in their config.
    """
    payload = dict(_read(path_or_dict, map_location))
    where = _where(path_or_dict)
    fmt = payload.get("format")
    if fmt is None:
        return load_original_checkpoint(
            payload, original_graph_indexing=original_graph_indexing, map_location=map_location
        ), payload
    if fmt != CHECKPOINT_FORMAT:
        raise DataError(f"{where}: checkpoint format {fmt!r} is not supported; expected {CHECKPOINT_FORMAT!r}")
    broken = [key for key in ("config", "state_dict") if not isinstance(payload.get(key), Mapping)]
    if broken:
        raise DataError(
            f"{where} says it is {CHECKPOINT_FORMAT!r} but {broken} {'is' if len(broken) == 1 else 'are'} missing "
            f"or not a mapping (keys present: {sorted(payload)[:12]}): the file is damaged or was written by other code"
        )
    try:
        config = DualVGRConfig.from_dict(payload["config"])
    except (SpecError, TypeError) as exc:
        raise DataError(f"{where}: its model config is not valid ({exc}): the file is damaged") from exc
    return _build(config, payload["state_dict"], map_location, where), payload
