"""Experiment spec: strict validation, overrides, hashing, and every shipped experiment file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dualvgr.core.errors import SpecError
from dualvgr.core.spec import (
    dump_spec,
    flatten,
    load_spec,
    parse_override,
    parse_yaml,
    replace_in,
    spec_from_dict,
    spec_hash,
    split_overrides,
)

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_shipped_experiments_resolve(path):
    spec = load_spec(path)
    assert spec.name == path.stem, f"{path.name}: name should match the file name, got {spec.name}"
    again = spec_from_dict(yaml.safe_load(dump_spec(spec)))
    assert spec_hash(again) == spec_hash(spec), "the resolved YAML must round-trip to the same hash"


@pytest.mark.parametrize("name,clips,table", [("msvd_qa", 8, "msvd-qa"), ("msrvtt_qa", 16, "msrvtt-qa")])
def test_paper_experiments_are_the_official_setup(name, clips, table):
    spec = load_spec(REPO / "experiments" / f"{name}.yaml")
    assert spec.features.num_clips == clips
    assert spec.paper.table == table
    assert (spec.features.appearance.image_size, spec.features.motion.image_size) == (224, 112)
    assert spec.features.appearance.normalization == "original"
    assert spec.features.appearance.frames_per_clip == spec.features.motion.frames_per_clip == 16
    assert (spec.model.module_dim, spec.model.unit_layers, spec.model.graph_layers) == (768, 2, 1)
    assert spec.model.graph_module == "GAT" and spec.model.gat_heads == 4
    assert (spec.model.alpha, spec.model.beta) == (1.0, 1e-8)
    t = spec.train
    assert (t.batch_size, t.lr, t.lr_decay_every, t.lr_decay_factor, t.epochs, t.grad_clip, t.seed) == (
        256, 1e-4, 10, 0.5, 25, 12.0, 666)
    assert t.precision == "fp32" and t.eval_split == "test" and not t.tf32
    assert spec.questions.answer_top == 4000 and spec.questions.glove.endswith("glove.840B.300d.txt")
    assert not spec.features.allow_random_weights


def test_unknown_key_suggests_closest(tmp_path):
    path = write(tmp_path, "name: x\n")
    with pytest.raises(SpecError) as err:
        load_spec(path, ["train.lrr=1"])
    assert "train.lrr" in str(err.value) and "did you mean 'train.lr'" in str(err.value)


def test_unknown_section_suggests_closest(tmp_path):
    with pytest.raises(SpecError, match=r"unknown key 'trian'; did you mean 'train'"):
        load_spec(write(tmp_path, "name: x\ntrian: {lr: 1}\n"))


def test_wrong_type_names_expected_type(tmp_path):
    with pytest.raises(SpecError, match=r"'train.epochs' must be an integer, got str 'many'"):
        load_spec(write(tmp_path, "name: x\ntrain: {epochs: many}\n"))
    with pytest.raises(SpecError, match=r"'train.preload' must be a boolean"):
        load_spec(write(tmp_path, "name: x\ntrain: {preload: 3}\n"))
    with pytest.raises(SpecError, match=r"'train.precision' must be one of fp32, bf16, fp16, got 'fp64'"):
        load_spec(write(tmp_path, "name: x\ntrain: {precision: fp64}\n"))


def test_missing_required_value(tmp_path):
    with pytest.raises(SpecError, match=r"required value 'name' is missing"):
        load_spec(write(tmp_path, "train: {epochs: 1}\n"))


def test_b1_safe_load_only(tmp_path):
    """A YAML tag that would construct a Python object is refused (original used yaml.load, B1)."""
    path = write(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(path)


def test_b1_strict_loader_still_refuses_python_tags():
    """The duplicate-key loader is a SafeLoader: Python tags stay refused in files and in overrides."""
    with pytest.raises(yaml.YAMLError, match="could not determine a constructor"):
        parse_yaml("x: !!python/name:os.system\n")
    with pytest.raises(SpecError, match="the value is not valid YAML"):
        parse_override("name=!!python/object/apply:os.system ['echo pwned']")


def test_duplicate_key_in_one_section_names_file_line_and_key(tmp_path):
    path = write(tmp_path, "name: x\ntrain:\n  lr: 1.0e-4\n  epochs: 3\n  lr: 1.0e-3\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == (f"{path}: line 5: key 'train.lr' is given twice (first on line 3); YAML would "
                              f"silently keep only the last value: remove one of them")


def test_duplicate_section_is_refused(tmp_path):
    path = write(tmp_path, "name: x\ntrain: {lr: 0.1}\nmodel: {alpha: 1}\ntrain: {epochs: 2}\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).startswith(f"{path}: line 4: key 'train' is given twice (first on line 2)")


def test_duplicate_key_in_a_flow_mapping_and_deep_sections(tmp_path):
    with pytest.raises(SpecError, match=r"line 2: key 'dataset.synthetic.seed' is given twice \(first on line 2\)"):
        load_spec(write(tmp_path, "name: x\ndataset: {synthetic: {seed: 1, frames: 8, seed: 2}}\n"))
    with pytest.raises(SpecError, match=r"line 3: key 'name' is given twice \(first on line 1\)"):
        load_spec(write(tmp_path, "name: x\ndescription: d\n'name': y\n"))


def test_same_key_in_different_sections_and_merge_keys_are_not_duplicates(tmp_path):
    spec = load_spec(write(tmp_path, "name: x\ntrain: {workers: 0}\nfeatures: {workers: 0}\n"
                                     "tracking: &t {outputs: a}\nreport: {<<: {output_dir: r}, output_dir: s}\n"))
    assert (spec.train.workers, spec.features.workers, spec.report.output_dir) == (0, 0, "s")


def test_duplicate_key_inside_an_override_value(tmp_path):
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, "name: x\n"), ["train={lr: 0.1, lr: 0.2}"])
    assert str(err.value) == ("override 'train={lr: 0.1, lr: 0.2}': key 'lr' is given twice in the value; "
                              "give it once")


def test_a_later_override_of_the_same_key_wins(tmp_path):
    """Repeating --set is how a command line overrides an earlier override (the MLproject's, a script's)."""
    spec = load_spec(write(tmp_path, "name: x\n"), ["train.epochs=2", "train.epochs=5"])
    assert spec.train.epochs == 5


def test_b1_exponent_without_dot_is_a_float(tmp_path):
    """PyYAML reads 1e-4 as a string; float fields accept it instead of failing like the original."""
    spec = load_spec(write(tmp_path, "name: x\ntrain: {lr: 1e-4}\n"), ["model.beta=1e-8"])
    assert spec.train.lr == 1e-4 and spec.model.beta == 1e-8


def test_overrides_parse_yaml_values(tmp_path):
    spec = load_spec(write(tmp_path, "name: x\n"), ["train.seeds=[666,667,668]", "train.preload=true",
                                                    "questions.vocabulary=null", "train.epochs=3"])
    assert spec.train.seeds == [666, 667, 668] and spec.run_seeds == (666, 667, 668)
    assert spec.train.preload is True and spec.questions.vocabulary is None and spec.train.epochs == 3


def test_override_errors(tmp_path):
    path = write(tmp_path, "name: x\n")
    with pytest.raises(SpecError, match="not of the form dotted.key=value"):
        load_spec(path, ["train.epochs"])
    with pytest.raises(SpecError, match=r"'train.lr' must be a number, got dict"):
        load_spec(path, ["train.lr.x=1"])
    with pytest.raises(SpecError, match="'lr' is a value, not a section"):
        load_spec(write(tmp_path, "name: x\ntrain: {lr: 0.1}\n"), ["train.lr.x=1"])


def test_mlproject_overrides_string():
    assert split_overrides("") == []
    assert split_overrides("train.epochs=2 'dataset.root=/a b'") == ["train.epochs=2", "dataset.root=/a b"]
    assert parse_override("train.seeds=[1, 2]") == ("train.seeds", [1, 2])


def test_hash_is_canonical_and_sensitive(tmp_path):
    a = load_spec(write(tmp_path, "name: x\ntrain: {epochs: 3, lr: 0.001}\n"))
    b = spec_from_dict({"train": {"lr": 1e-3, "epochs": 3}, "name": "x"})
    assert spec_hash(a) == spec_hash(b), "key order and number spelling must not change the hash"
    assert spec_hash(replace_in(a, **{"train.epochs": 4})) != spec_hash(a)


def test_consistency_rules():
    with pytest.raises(SpecError, match="divisible by model.gat_heads"):
        spec_from_dict({"name": "x", "model": {"module_dim": 30}})
    with pytest.raises(SpecError, match="lists a seed twice"):
        spec_from_dict({"name": "x", "train": {"seeds": [1, 1]}})


def test_flatten_gives_dotted_params():
    flat = flatten(spec_from_dict({"name": "x"}))
    assert flat["train.lr"] == 1e-4 and flat["dataset.synthetic.num_videos"] == 160
    assert all(not isinstance(v, dict) for v in flat.values())
