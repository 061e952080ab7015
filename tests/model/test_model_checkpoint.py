"""Checkpoints (§3.11, §4.4): original train.py files and bare state dicts, our self-describing format."""

from __future__ import annotations

import warnings

import pytest
import torch

from dualvgr.core.errors import DataError
from dualvgr.model import (
    CHECKPOINT_FORMAT,
    config_from_state_dict,
    load_model_checkpoint,
    load_original_checkpoint,
    model_checkpoint,
)


def _original_file(model, path, **kwargs_overrides):
    """What train.py saves (§4.4), under DataParallel: 'module.'-prefixed keys, model_kwargs without U."""
    c = model.config
    model_kwargs = {"vision_dim": c.vision_dim, "module_dim": c.module_dim, "word_dim": c.word_dim,
                    "num_of_nodes": c.num_clips, "graph_module": "GAT", "graph_layers": c.graph_layers,
                    **kwargs_overrides}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    torch.save({"epoch": 4, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(), "model_kwargs": model_kwargs}, path)
    return path


def _logits(model, inputs, run):
    with torch.no_grad():
        return run(model.eval(), inputs).logits


@pytest.mark.parametrize("units", [1, 2, 3])
def test_original_file_round_trip(units, tiny_model, make_inputs, run, tmp_path):
    source = tiny_model(unit_layers=units)
    inputs = make_inputs(source.config)
    loaded = load_original_checkpoint(_original_file(source, tmp_path / "m.pt"))
    assert not loaded.training
    expected = {**source.config.to_dict(), "frames_per_clip": None}  # F is in neither the weights nor model_kwargs
    assert loaded.config.to_dict() == expected, "every dimension, U and N come back from the file"
    torch.testing.assert_close(_logits(loaded, inputs, run), _logits(source, inputs, run), rtol=0, atol=0)


def test_bare_state_dict_infers_everything_but_n_and_f(tiny_model):
    source = tiny_model(unit_layers=3, gat_heads=2)
    config = config_from_state_dict(source.state_dict())
    expected = {**source.config.to_dict(), "num_clips": None, "frames_per_clip": None}
    assert config.to_dict() == expected
    model = load_original_checkpoint(source.state_dict(), num_clips=3, frames_per_clip=4)
    assert (model.config.num_clips, model.config.frames_per_clip) == (3, 4)


def test_original_with_graph_layers_replays_u_plus_j_with_a_warning(tiny_model, tmp_path):
    path = _original_file(tiny_model(graph_layers=2), tmp_path / "g2.pt")
    with pytest.warns(UserWarning, match="graph_layers=2: replaying the original graph indexing u\\+j"):
        model = load_original_checkpoint(path)
    assert model.config.original_graph_indexing is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_original_checkpoint(path, original_graph_indexing=False).config.original_graph_indexing is False
        assert load_original_checkpoint(path, original_graph_indexing=True).config.original_graph_indexing is True
        single = load_original_checkpoint(_original_file(tiny_model(), tmp_path / "g1.pt"))
        assert single.config.original_graph_indexing is False, "G=1: both indexings agree, nothing to warn about"


def test_original_checkpoint_conflicts_are_rejected(tiny_model, tmp_path):
    model = tiny_model()
    with pytest.raises(DataError, match="model_kwargs say graph_layers=2 but its weights hold 1"):
        load_original_checkpoint(_original_file(model, tmp_path / "a.pt", graph_layers=2))
    with pytest.raises(DataError, match="graph_module='GCN'; only 'GAT' works"):
        load_original_checkpoint(_original_file(model, tmp_path / "b.pt", graph_module="GCN"))
    with pytest.raises(DataError, match="not a DualVGR state_dict: key 'visual_motion_input_unit.weight' is missing"):
        load_original_checkpoint({"weight": torch.zeros(2)})
    with pytest.raises(DataError, match="does not exist"):
        load_original_checkpoint(tmp_path / "missing.pt")
    broken = {k: v for k, v in model.state_dict().items() if "classifier.3.running_var" not in k}
    with pytest.raises(DataError, match="(?s)does not fit the model.*Missing key.*running_var"):
        load_original_checkpoint(broken)


class _NotATensor:  # pickled as a custom class: refused by weights_only=True (B33)
    pass


def test_checkpoints_are_read_with_weights_only(tmp_path):
    torch.save({"state_dict": {}, "payload": _NotATensor()}, tmp_path / "evil.pt")
    with pytest.raises(DataError, match="weights_only=True"):
        load_model_checkpoint(tmp_path / "evil.pt")


def test_own_format_round_trip(tiny_model, make_inputs, run, tmp_path):
    source = tiny_model(unit_layers=3, graph_layers=2, num_clips=3, frames_per_clip=4)
    inputs = make_inputs(source.config)
    payload = model_checkpoint(source, spec_hash="abc123", epoch=9, optimizer={"state": {}, "param_groups": []})
    assert payload["format"] == CHECKPOINT_FORMAT and payload["config"] == source.config.to_dict()
    torch.save(payload, tmp_path / "ours.pt")
    with torch.no_grad():  # the payload is a copy: later training does not change it
        next(source.parameters()).add_(1.0)
    assert not torch.equal(payload["state_dict"]["feature_aggregation.v_proj.weight"],
                           source.state_dict()["feature_aggregation.v_proj.weight"])
    with torch.no_grad():
        next(source.parameters()).sub_(1.0)
    model, loaded = load_model_checkpoint(tmp_path / "ours.pt")
    assert model.config == source.config, "U, G, N, F and the indexing mode all come back without flags (B17)"
    assert (loaded["spec_hash"], loaded["epoch"]) == ("abc123", 9)
    assert not model.training
    torch.testing.assert_close(_logits(model, inputs, run), _logits(source, inputs, run), rtol=0, atol=0)


def test_load_model_checkpoint_also_reads_original_files(tiny_model, tmp_path):
    model, payload = load_model_checkpoint(_original_file(tiny_model(), tmp_path / "orig.pt"))
    assert payload["epoch"] == 4 and model.config.unit_layers == 2


def test_own_format_guards(tiny_model):
    model = tiny_model()
    with pytest.raises(ValueError, match="would overwrite the reserved"):
        model_checkpoint(model, config={"module_dim": 1})
    with pytest.raises(DataError, match="format 'someone-else/v9' is not supported"):
        load_model_checkpoint({**model_checkpoint(model), "format": "someone-else/v9"})
    wrapped = torch.nn.DataParallel(model)
    assert list(model_checkpoint(wrapped)["state_dict"]) == list(model.state_dict()), "wrappers are unwrapped"


def test_checkpoint_records_its_graph_module_and_older_ones_read_as_gat(tiny_model, tmp_path):
    model = tiny_model()
    payload = model_checkpoint(model)
    assert payload["config"]["graph_module"] == "GAT", "the checkpoint says which graph layer it holds"
    del payload["config"]["graph_module"]  # written before the choice existed
    loaded, _ = load_model_checkpoint(payload)
    assert loaded.config.graph_module == "GAT"


@pytest.mark.parametrize("payload, expected", [
    ({"format": CHECKPOINT_FORMAT, "epoch": 3},
     " says it is 'dualvgr-harness/model-v1' but ['config', 'state_dict'] are missing or not a mapping (keys present: "
     "['epoch', 'format']): the file is damaged or was written by other code"),
    ({"format": CHECKPOINT_FORMAT, "config": {"module_dim": 16}, "state_dict": {}},
     ": its model config is not valid (DualVGRConfig.__init__() missing 2 required keyword-only arguments: "
     "'question_vocab_size' and 'answer_vocab_size'): the file is damaged"),
])
def test_damaged_own_checkpoint_names_the_file(tmp_path, payload, expected):
    path = tmp_path / "best.pt"
    torch.save(payload, path)
    with pytest.raises(DataError) as err:
        load_model_checkpoint(path)
    assert str(err.value) == f"checkpoint {path}{expected}"
