"""Ranges: every numeric key declares its allowed values beside its default, and the loader enforces them.

Each case is a value a user can write (in the experiment file or with ``--set``) that used to validate and then
fail or mislead later: a negative clipping norm trained to a FINISHED run at chance accuracy, a NaN or negative
learning rate and a seed above 2**63 died in training with a raw traceback.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, get_args, get_origin

import pytest

from dualvgr.cli import main
from dualvgr.core.errors import SpecError
from dualvgr.core.schema import ExperimentSpec, Range
from dualvgr.core.spec import flatten, load_spec, spec_from_dict, spec_to_dict

REPO = Path(__file__).resolve().parents[2]
SEED_RANGE = "in [0, 4294967295] (numpy's seeding limit)"
SIDE = "a multiple of 2, >= 16 (MJPG stores even sides; a shape is 7 px across)"

# (dotted key, value as written after --set, the message after "'<key>' must be ")
REFUSED = [
    ("train.grad_clip", "-5", "> 0 (or null), got -5"),
    ("train.grad_clip", "0", "> 0 (or null), got 0"),
    ("train.grad_clip", ".nan", "a finite number > 0 (or null), got nan"),
    ("train.lr", "-1", "> 0, got -1"),
    ("train.lr", "0", "> 0, got 0"),
    ("train.lr", ".nan", "a finite number > 0, got nan"),
    ("train.lr", ".inf", "a finite number > 0, got inf"),
    ("train.lr", "1e400", "a finite number > 0, got 1e400"),
    ("train.lr", "-1e-4", "> 0, got -1e-4"),
    ("train.lr_decay_factor", "0", "in (0, 1], got 0"),
    ("train.lr_decay_factor", "1.5", "in (0, 1], got 1.5"),
    ("train.lr_decay_every", "0", ">= 1, got 0"),
    ("train.batch_size", "0", ">= 1, got 0"),
    ("train.epochs", "-3", ">= 1, got -3"),
    ("train.seed", "18446744073709551616", f"{SEED_RANGE}, got 18446744073709551616"),
    ("train.seed", "4294967296", f"{SEED_RANGE}, got 4294967296"),
    ("train.seed", "-1", f"{SEED_RANGE}, got -1"),
    ("train.workers", "-1", ">= 0, got -1"),
    ("train.train_num", "-1", ">= 0, got -1"),
    ("train.val_num", "-2", ">= 0, got -2"),
    ("train.test_num", "-3", ">= 0, got -3"),
    ("model.alpha", "-0.5", ">= 0, got -0.5"),
    ("model.alpha", ".nan", "a finite number >= 0, got nan"),
    ("model.beta", "-1.0e-8", ">= 0, got -1e-08"),
    ("model.beta", "-.inf", "a finite number >= 0, got -inf"),
    ("model.module_dim", "0", ">= 1, got 0"),
    ("model.vision_dim", "0", ">= 1, got 0"),
    ("model.word_dim", "-300", ">= 1, got -300"),
    ("model.unit_layers", "0", ">= 1, got 0"),
    ("model.graph_layers", "0", ">= 1, got 0"),
    ("model.gat_heads", "0", ">= 1, got 0"),
    ("features.num_clips", "0", ">= 1, got 0"),
    ("features.workers", "-1", ">= 0, got -1"),
    ("features.num_shards", "0", ">= 1, got 0"),
    ("features.appearance.frames_per_clip", "0", ">= 1, got 0"),
    ("features.appearance.image_size", "0", ">= 1, got 0"),
    ("features.appearance.batch_size", "0", ">= 1 (or null), got 0"),
    ("features.motion.frames_per_clip", "0", ">= 1, got 0"),
    ("features.motion.image_size", "-112", ">= 1, got -112"),
    ("features.motion.sample_size", "0", ">= 1, got 0"),
    ("features.motion.batch_size", "-4", ">= 1 (or null), got -4"),
    ("questions.answer_top", "0", ">= 1, got 0"),
    ("paper.tolerance", "-1", ">= 0, got -1"),
    ("paper.tolerance", ".inf", "a finite number >= 0, got inf"),
    ("dataset.synthetic.seed", "-1", f"{SEED_RANGE}, got -1"),
    ("dataset.synthetic.seed", "4294967296", f"{SEED_RANGE}, got 4294967296"),
    ("dataset.synthetic.num_videos", "2", ">= 3, got 2"),
    ("dataset.synthetic.questions_per_video", "0", "in [1, 8], got 0"),
    ("dataset.synthetic.questions_per_video", "9", "in [1, 8], got 9"),
    ("dataset.synthetic.val_fraction", "1", "in [0, 1), got 1"),
    ("dataset.synthetic.test_fraction", "-0.1", "in [0, 1), got -0.1"),
    ("dataset.synthetic.test_fraction", ".nan", "a finite number in [0, 1), got nan"),
    ("dataset.synthetic.frames", "1", ">= 2 (one frame shows no motion), got 1"),
    ("dataset.synthetic.fps", "0", ">= 1, got 0"),
    ("dataset.synthetic.width", "15", f"{SIDE}, got 15"),
    ("dataset.synthetic.width", "14", f"{SIDE}, got 14"),
    ("dataset.synthetic.height", "73", f"{SIDE}, got 73"),
]


def _numeric(hint) -> bool:
    """Does a schema type hold numbers (int or float, possibly Annotated, nullable or in a list)?"""
    if get_origin(hint) is Annotated:
        return _numeric(get_args(hint)[0])
    if get_origin(hint) in (typing.Union, types.UnionType, list):
        return any(_numeric(arg) for arg in get_args(hint) if arg is not type(None))
    return hint in (int, float)


def _ranges(hint) -> list[Range]:
    if get_origin(hint) is Annotated:
        return [extra for extra in get_args(hint)[1:] if isinstance(extra, Range)]
    return [r for arg in get_args(hint) for r in _ranges(arg)]


def _schema_fields(cls=ExperimentSpec, prefix=""):
    hints = typing.get_type_hints(cls, include_extras=True)
    for fld in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[fld.name]):
            yield from _schema_fields(hints[fld.name], f"{prefix}{fld.name}.")
        else:
            yield prefix + fld.name, hints[fld.name]


@pytest.mark.parametrize("key,value,message", REFUSED, ids=[f"{k}={v}" for k, v, _ in REFUSED])
def test_value_outside_its_range_names_key_value_and_range(tmp_path, key, value, message):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\n")
    with pytest.raises(SpecError) as err:
        load_spec(path, [f"{key}={value}"])
    assert str(err.value) == f"{path}: '{key}' must be {message}"


def test_every_numeric_key_declares_its_range():
    unranged = [key for key, hint in _schema_fields() if _numeric(hint) and not _ranges(hint)]
    assert not unranged, f"give {unranged} a Range beside the default in dualvgr/core/schema.py"


def test_every_refused_case_names_a_schema_key():
    keys = dict(_schema_fields())
    assert {k for k, _, _ in REFUSED} <= set(keys)
    ranged = {key for key, hint in keys.items() if _ranges(hint)}
    untested = sorted(ranged - {k for k, _, _ in REFUSED} - {"train.seeds"})
    assert not untested, f"add a refused value for {untested} to REFUSED"


def test_every_default_is_inside_its_range():
    """Defaults are not coerced when a file omits them: validate each explicitly."""
    defaults = spec_to_dict(ExperimentSpec(name="x"))
    assert spec_to_dict(spec_from_dict(defaults)) == defaults, "the defaults, written out, must validate"
    values = flatten(ExperimentSpec(name="x"))
    outside = [f"{key}={values[key]} ({allowed})" for key, hint in _schema_fields() for allowed in _ranges(hint)
               if isinstance(values[key], (int, float)) and not allowed.allows(values[key])]
    assert not outside, f"defaults outside their own range: {outside}"


@pytest.mark.parametrize("override", [
    "train.grad_clip=null", "train.lr_decay_factor=1", "train.seed=0", "train.seed=4294967295",
    "train.seeds=[0, 4294967295]", "train.workers=0", "features.workers=0", "train.train_num=0", "model.beta=0",
    "paper.tolerance=0", "dataset.synthetic.val_fraction=0", "dataset.synthetic.width=16",
    "dataset.synthetic.questions_per_video=1", "dataset.synthetic.num_videos=3", "features.motion.batch_size=null",
    "train.lr=1e-4",
])
def test_boundary_values_are_allowed(tmp_path, override):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\n")
    key, _, _ = override.partition("=")
    spec = load_spec(path, [override])
    assert key in flatten(spec), override


def test_grad_clip_null_means_no_clipping(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\ntrain:\n  grad_clip: null\n")
    assert load_spec(path).train.grad_clip is None


def test_a_seed_in_the_seed_list_is_range_checked(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\ntrain:\n  seeds: [666, 667, 18446744073709551616]\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: 'train.seeds[2]' must be {SEED_RANGE}, got 18446744073709551616"


@pytest.mark.parametrize("text,shown", [(".nan", "nan"), (".NaN", "nan"), (".inf", "inf"), ("-.Inf", "-inf")])
def test_nan_and_infinity_in_the_yaml_file_are_refused(tmp_path, text, shown):
    path = tmp_path / "x.yaml"
    path.write_text(f"name: x\ntrain:\n  lr: {text}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: 'train.lr' must be a finite number > 0, got {shown}"


def test_fractions_that_leave_no_training_video_are_refused(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("name: x\ndataset:\n  synthetic: {val_fraction: 0.5, test_fraction: 0.5}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == (
        f"{path}: 'dataset.synthetic.val_fraction' + 'dataset.synthetic.test_fraction' must be < 1, got 0.5 + 0.5: "
        f"no video would be left to train on")


def test_module_dim_not_divisible_by_heads_stays_a_cross_field_error():
    with pytest.raises(SpecError) as err:
        spec_from_dict({"name": "x", "model": {"module_dim": 30}}, source="x.yaml")
    assert str(err.value) == ("x.yaml: model.module_dim (30) must be divisible by model.gat_heads (4): each GAT "
                              "head is module_dim/heads wide")


def test_questions_per_video_bound_is_the_generator_template_count():
    """The schema states the bound the generator checks; if templates are added, both must move."""
    from dualvgr.data.synthetic import TEMPLATES

    (allowed,) = _ranges(dict(_schema_fields())["dataset.synthetic.questions_per_video"])
    assert allowed.le == len(TEMPLATES), f"schema says <= {allowed.le}, the generator has {len(TEMPLATES)} templates"


@pytest.mark.parametrize("bounds,text", [
    (Range(gt=0), "> 0"), (Range(ge=1), ">= 1"), (Range(lt=1), "< 1"), (Range(le=0.5), "<= 0.5"),
    (Range(ge=0, lt=1), "in [0, 1)"), (Range(gt=0, le=1), "in (0, 1]"),
    (Range(ge=16, multiple_of=2), "a multiple of 2, >= 16"), (Range(ge=0, why="a reason"), ">= 0 (a reason)"),
])
def test_range_describes_itself(bounds, text):
    assert str(bounds) == text


@pytest.mark.parametrize("value,inside", [(0, False), (1e-300, True), (1, True), (1.0000001, False), (math.nan, False)])
def test_range_bounds(value, inside):
    assert Range(gt=0, le=1).allows(value) is inside


def test_validate_prints_one_error_line_and_exits_2(capsys):
    code = main(["validate", "--experiment", str(REPO / "experiments/demo.yaml"), "--set", "train.grad_clip=-5"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "error: " + str(REPO / "experiments/demo.yaml") + ": 'train.grad_clip' must be > 0 (or null), got -5\n"


def test_validate_command_exits_2_without_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "dualvgr", "validate", "--set", "train.lr=.nan"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == "error: experiments/demo.yaml: 'train.lr' must be a finite number > 0, got nan\n"
