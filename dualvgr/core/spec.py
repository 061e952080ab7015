"""Load, override, validate, hash and write experiment specs.

Validation is strict: an unknown key names the closest valid key, a wrong type names the expected type, a value
outside its range (declared beside its default in the schema) names the range, NaN and infinity are refused for
every number, a key given twice in one YAML mapping names both lines, a missing required value says which. YAML
is read with a ``yaml.SafeLoader`` subclass only: ``safe_load`` semantics, never Python tags (original bug B1).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import re
import shlex
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, get_args, get_origin

import yaml

from dualvgr.core.errors import SpecError
from dualvgr.core.schema import ExperimentSpec, OneOf, Range

DEFAULT_EXPERIMENT = "experiments/demo.yaml"
# PyYAML (YAML 1.1) reads "1e-4" (no dot) as a string (B1); float fields accept such strings.
_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# ----------------------------------------------------------------------------------------------- loading


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one YAML mapping (a plain YAML loader silently keeps the last value)."""

    def __init__(self, key: str, first_line: int, line: int) -> None:
        super().__init__(f"key '{key}' is given twice (lines {first_line} and {line})")
        self.key, self.first_line, self.line = key, first_line, line


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (plain data only, B1) that refuses duplicate keys before building anything."""

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            _refuse_duplicate_keys(node, "", set())
        return node


def _refuse_duplicate_keys(node: yaml.Node, prefix: str, seen: set[int]) -> None:
    if id(node) in seen:  # an alias of a node already checked (anchors may even nest recursively)
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            # Scalar keys only: "<<" merges are YAML's explicit way of overriding a merged key, not a duplicate.
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                line = key_node.start_mark.line + 1
                ident = (key_node.tag, key_node.value)
                if ident in first:
                    raise DuplicateKeyError(prefix + key_node.value, first[ident], line)
                first[ident] = line
                _refuse_duplicate_keys(value_node, f"{prefix}{key_node.value}.", seen)
            else:
                _refuse_duplicate_keys(value_node, prefix, seen)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, prefix, seen)


def parse_yaml(text: str) -> Any:
    """``yaml.safe_load(text)``, except that a key given twice in one mapping is a ``DuplicateKeyError``."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass: no Python tags


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentSpec:
    """Read an experiment file, apply ``dotted.key=value`` overrides and validate the result."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"experiment file not found: {path} (pass --experiment FILE; shipped ones are in experiments/)")
    try:
        raw = parse_yaml(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as err:
        raise SpecError(
            f"{path}: line {err.line}: key '{err.key}' is given twice (first on line {err.first_line}); YAML would "
            f"silently keep only the last value: remove one of them"
        ) from err
    except yaml.YAMLError as err:
        raise SpecError(f"{path} is not valid YAML: {err}") from err
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: the top level must be a mapping of sections, got {type(raw).__name__}")
    for override in overrides:
        key, value = parse_override(override)
        set_dotted(raw, key, value)
    return spec_from_dict(raw, source=str(path))


def parse_override(text: str) -> tuple[str, Any]:
    """``train.lr=1e-3`` -> ("train.lr", 0.001); values are parsed as YAML (lists, booleans, null)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise SpecError(f"override '{text}' is not of the form dotted.key=value (e.g. train.epochs=5)")
    try:
        parsed = parse_yaml(value) if value.strip() else ""
    except DuplicateKeyError as err:
        raise SpecError(f"override '{text}': key '{err.key}' is given twice in the value; give it once") from err
    except yaml.YAMLError as err:
        raise SpecError(f"override '{text}': the value is not valid YAML ({err})") from err
    return key, parsed


def split_overrides(text: str) -> list[str]:
    """The MLproject's ``overrides`` parameter: space-separated ``key=value`` (shell quoting allowed)."""
    return shlex.split(text) if text and text.strip() else []


def set_dotted(raw: dict, key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise SpecError(f"override '{key}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


# -------------------------------------------------------------------------------------------- validation


def spec_from_dict(raw: dict, source: str = "<spec>") -> ExperimentSpec:
    spec = _build(ExperimentSpec, raw, prefix="", source=source)
    _check_consistency(spec, source)
    return spec


def _build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: '{prefix.rstrip('.') or '<top>'}' must be a mapping, got {_describe(raw)}")
    hints = typing.get_type_hints(cls, include_extras=True)  # keep the Annotated ranges
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            raise SpecError(_unknown_key_message(prefix + str(key), list(fields), prefix, source))
    values = {}
    for name, fld in fields.items():
        dotted = prefix + name
        if name in raw:
            values[name] = _coerce(hints[name], raw[name], dotted, source)
        elif fld.default is dataclasses.MISSING and fld.default_factory is dataclasses.MISSING:
            raise SpecError(f"{source}: required value '{dotted}' is missing (expected {_type_name(hints[name])})")
    return cls(**values)


def _coerce(hint: Any, value: Any, dotted: str, source: str) -> Any:
    """``value`` as the schema type ``hint``, checked against its range; a SpecError naming the key otherwise."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, {} if value is None else value, dotted + ".", source)
    if get_origin(hint) in (typing.Union, types.UnionType):
        options = get_args(hint)
        nullable = type(None) in options
        if value is None and nullable:
            return None
        for option in (o for o in options if o is not type(None)):
            try:
                converted = _convert(option, value, dotted, source)
            except SpecError:
                continue
            return _in_range(option, converted, value, dotted, source, nullable)
        raise SpecError(f"{source}: '{dotted}' must be {_type_name(hint)}, got {_describe(value)}")
    return _in_range(hint, _convert(hint, value, dotted, source), value, dotted, source)


def _in_range(hint: Any, converted: Any, value: Any, dotted: str, source: str, nullable: bool = False) -> Any:
    """Every number finite, and inside the Range the schema declares for it."""
    ranges = [r for r in get_args(hint)[1:] if isinstance(r, Range)] if get_origin(hint) is Annotated else []
    or_null = " (or null)" if nullable else ""
    if isinstance(converted, float) and not math.isfinite(converted):
        allowed = "".join(f" {r}" for r in ranges)
        raise SpecError(f"{source}: '{dotted}' must be a finite number{allowed}{or_null}, got {_shown(value)}")
    for allowed in ranges:
        if not allowed.allows(converted):
            raise SpecError(f"{source}: '{dotted}' must be {allowed}{or_null}, got {_shown(value)}")
    return converted


def _convert(hint: Any, value: Any, dotted: str, source: str) -> Any:
    """``value`` as the type ``hint`` (its range aside)."""
    if get_origin(hint) is Annotated:
        converted = _convert(get_args(hint)[0], value, dotted, source)
        for allowed in (extra for extra in get_args(hint)[1:] if isinstance(extra, OneOf)):
            _choose(allowed.values(), converted, dotted, source, f" ({allowed.where})")
        return converted
    origin = get_origin(hint)
    if origin is Literal:
        return _choose(get_args(hint), value, dotted, source)
    if origin is list:
        (item,) = get_args(hint)
        if not isinstance(value, list):
            raise SpecError(f"{source}: '{dotted}' must be a list of {_type_name(item)}, got {_describe(value)}")
        return [_coerce(item, v, f"{dotted}[{i}]", source) for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - schema uses only the types above
        raise TypeError(f"unsupported schema type {hint!r} for {dotted}")
    raise SpecError(f"{source}: '{dotted}' must be {_type_name(hint)}, got {_describe(value)}")


def _choose(choices: tuple, value: Any, dotted: str, source: str, where: str = "") -> Any:
    """``value`` if it is one of ``choices``, else a SpecError listing them (and where they come from)."""
    if value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint_text = f"; did you mean '{close[0]}'?" if close else ""
        raise SpecError(
            f"{source}: '{dotted}' must be one of {', '.join(map(str, choices))}{where}, got {value!r}{hint_text}"
        )
    return value


def _unknown_key_message(dotted: str, valid: list[str], prefix: str, source: str) -> str:
    key = dotted[len(prefix):]
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    suggestion = f"; did you mean '{prefix}{close[0]}'?" if close else ""
    return f"{source}: unknown key '{dotted}'{suggestion} (valid keys here: {', '.join(valid)})"


def _type_name(hint: Any) -> str:
    if get_origin(hint) is Annotated:
        return _type_name(get_args(hint)[0])
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(map(str, get_args(hint)))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in get_args(hint))
    if origin is list:
        return f"a list of {_type_name(get_args(hint)[0])}"
    if dataclasses.is_dataclass(hint):
        return "a mapping"
    return {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}.get(
        hint, str(hint)
    )


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _shown(value: Any) -> str:
    """A value as the user wrote it: ``-5``, ``nan``, ``1e-4`` (a number YAML read as text, B1)."""
    return value if isinstance(value, str) else repr(value)


def _check_consistency(spec: ExperimentSpec, source: str) -> None:
    """Rules that relate several keys; a single key's range is declared in the schema and checked by _coerce."""
    if spec.model.module_dim % spec.model.gat_heads:
        raise SpecError(
            f"{source}: model.module_dim ({spec.model.module_dim}) must be divisible by model.gat_heads "
            f"({spec.model.gat_heads}): each GAT head is module_dim/heads wide"
        )
    synthetic = spec.dataset.synthetic
    if synthetic.val_fraction + synthetic.test_fraction >= 1:
        raise SpecError(
            f"{source}: 'dataset.synthetic.val_fraction' + 'dataset.synthetic.test_fraction' must be < 1, got "
            f"{synthetic.val_fraction} + {synthetic.test_fraction}: no video would be left to train on"
        )
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", spec.name):
        raise SpecError(f"{source}: 'name' must be letters, digits, '.', '_' or '-', got {spec.name!r}")
    if len(set(spec.train.seeds)) != len(spec.train.seeds):
        raise SpecError(f"{source}: 'train.seeds' lists a seed twice: {spec.train.seeds}")


# ----------------------------------------------------------------------------------- canonical form, hash


def spec_to_dict(spec: Any) -> dict:
    return dataclasses.asdict(spec)


def canonical_json(value: Any) -> str:
    """One byte sequence per value: sorted keys, no whitespace, floats in repr form."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def spec_hash(spec: ExperimentSpec) -> str:
    """sha256 of the canonical resolved spec: two runs with the same hash declared the same experiment."""
    return sha256_of(spec_to_dict(spec))


def config_hash(spec: ExperimentSpec) -> str:
    """The spec hash without the seed: what several seeds of one configuration have in common."""
    values = spec_to_dict(spec)
    values["train"] = {k: v for k, v in values["train"].items() if k not in ("seed", "seeds")}
    return sha256_of(values)


def dump_spec(spec: ExperimentSpec) -> str:
    """The resolved spec as YAML (every value, defaults included), in schema order."""
    return yaml.safe_dump(spec_to_dict(spec), sort_keys=False, default_flow_style=None, width=100)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-4}}`` -> ``{"train.lr": 1e-4}`` (MLflow params)."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, child in value.items():
            flat.update(flatten(child, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def replace_in(spec: ExperimentSpec, **changes: Any) -> ExperimentSpec:
    """A copy of ``spec`` with dotted keys replaced (``replace_in(spec, **{"train.seed": 7})``), re-validated."""
    raw = copy.deepcopy(spec_to_dict(spec))
    for key, value in changes.items():
        set_dotted(raw, key, value)
    return spec_from_dict(raw, source=f"{spec.name} (derived)")
