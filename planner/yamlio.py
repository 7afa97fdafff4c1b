"""YAML loading that remembers where each value came from, and pydantic errors rendered as Problems.

Users fix what they can find: every problem names the file, the dotted YAML path and, when known, the line.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from planner.errors import PlannerError, Problem
from planner.strict import plain_number

PathKey = tuple[str | int, ...]


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Bounds on what one input file may make the planner do; the shipped catalogs are far below both. A price
# table may be a whole provider's SkyPilot catalog (tens of MB), so tables get a larger allowance.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TABLE_BYTES = 256 * 1024 * 1024
MAX_YAML_VALUES = 1_000_000


@dataclass
class YamlDocument:
    file: str
    data: Any
    text: str = ""
    _lines: dict[PathKey, int] | None = field(default=None, repr=False)

    @property
    def lines(self) -> dict[PathKey, int]:
        # Line numbers are only needed to report a problem, so the (slow) composition is done on demand.
        if self._lines is None:
            self._lines = {}
            node = yaml.compose(self.text, Loader=_FAST_LOADER) if self.text else None
            if node is not None:
                _index_lines(node, (), self._lines)
        return self._lines

    def line_of(self, path: PathKey) -> int | None:
        # Fall back to the nearest parent that has a line (a missing key is reported at its mapping).
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def _index_lines(node: yaml.Node, path: PathKey, out: dict[PathKey, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[path + (key,)] = key_node.start_mark.line + 1
            _index_lines(value_node, path + (key,), out)
            out[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, path + (i,), out)


# `-` names standard input (`cat spec.yaml | planner solve -`); it is read once and kept, since a command
# may look at its input more than once (is it a fleet? then load it). Includes resolve from the working folder.
STDIN = "-"
_stdin_cache: dict[str, Any] = {}


def _decoded(raw: bytes, name: str, error: type[PlannerError]) -> str:
    """UTF-8 with or without a byte-order mark; another encoding is refused at the line of its first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(Problem(f"not UTF-8 text (byte 0x{raw[exc.start]:02x})", file=name,
                            line=raw[:exc.start].count(b"\n") + 1, fix="save it as UTF-8")) from None


def _stdin_text(error: type[PlannerError], max_bytes: int) -> str:
    if _stdin_cache.get("stream") is not sys.stdin:  # a new stream (each CliRunner call has its own)
        raw = sys.stdin.buffer.read(max_bytes + 1) if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        if len(raw) > max_bytes:
            raise error(Problem(f"too large: more than {max_bytes:,} bytes", file=STDIN, fix="trim the input"))
        _stdin_cache.update(stream=sys.stdin, text=_decoded(raw, STDIN, error))
    return _stdin_cache["text"]


def is_file(path: Path) -> bool:
    """Whether `path` names a readable file; a name the system cannot even look up (too long, a NUL byte)
    is simply not one."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def read_text(path: Path, error: type[PlannerError], max_bytes: int = MAX_FILE_BYTES) -> str:
    """A user's text file as UTF-8 (a byte-order mark is dropped); other encodings are refused at their line."""
    name = str(path)
    if name == STDIN:
        return _stdin_text(error, max_bytes)
    try:
        if path.stat().st_size > max_bytes:
            raise error(Problem(f"too large: {path.stat().st_size:,} bytes (at most {max_bytes:,})", file=name,
                                fix="split the file or trim it"))
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(Problem("file not found", file=name, fix="check the path")) from None
    except OSError as exc:
        raise error(Problem(f"cannot read: {exc.strerror or exc.__class__.__name__}", file=name,
                            fix="check the path and its permissions")) from None
    return _decoded(raw, name, error)


def _expanded_size_exceeds(data: Any, budget: int) -> bool:
    """Whether the data, with every YAML alias expanded, holds more than `budget` values.

    Aliases load as shared objects, so a small file can stand for billions of values (nested anchors);
    everything downstream (merging profiles, validation, line indexing) would walk them all."""
    stack = [data]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load_yaml(path: Path, error: type[PlannerError]) -> YamlDocument:
    name = str(path)
    text = read_text(path, error)
    try:
        data = yaml.load(text, Loader=_FAST_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(
            Problem(
                f"malformed YAML: {what}",
                file=name,
                line=mark.line + 1 if mark else None,
                fix="check indentation and quoting near that line",
            )
        ) from None
    except RecursionError:
        raise error(Problem("nested too deeply", file=name, fix="flatten the file")) from None
    if _expanded_size_exceeds(data, MAX_YAML_VALUES):
        raise error(Problem(f"too many values once its aliases (*name) are expanded (at most {MAX_YAML_VALUES:,})",
                            file=name, fix="write the values out instead of nesting anchors")) from None
    return YamlDocument(file=name, data=data, text=text)


def file_kind(path: Path, error: type[PlannerError]) -> str:
    """What a spec file holds, by its top-level keys: `fleet` (fleet:), `tier` (site: and workloads:) or
    `workload`; read here, before the command loads the modules of that kind."""
    doc = load_yaml(path, error)
    if isinstance(doc.data, dict) and "fleet" in doc.data:
        return "fleet"
    if isinstance(doc.data, dict) and "site" in doc.data and "workloads" in doc.data:
        return "tier"
    return "workload"


def dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: type[BaseModel], loc: PathKey, data: Any) -> list[str]:
    """Field names of the sub-model at `loc`, to suggest a correction for an unknown key."""
    current: Any = model
    for part in loc[:-1]:
        data = data.get(part) if isinstance(data, dict) else (data[part] if isinstance(data, list)
                                                               and isinstance(part, int) and part < len(data) else None)
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(part)
        if info is None:
            return []
        current = _pick_model(info.annotation, data)
        if current is None:
            return []
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out.extend(_models_in(arg))
    return out


def _pick_model(annotation: Any, data: Any) -> type[BaseModel] | None:
    """The model a (possibly discriminated-union) field holds, chosen by the data's `kind` when it has one."""
    models = _models_in(annotation)
    if len(models) > 1 and isinstance(data, dict) and "kind" in data:
        for m in models:
            kind = m.model_fields.get("kind")
            if kind is not None and data["kind"] in (getattr(kind.annotation, "__args__", ()) or ()):
                return m
    return models[0] if models else None


def validation_problems(
    exc: ValidationError, doc: YamlDocument, model: type[BaseModel], prefix: PathKey = ()
) -> list[Problem]:
    problems = []
    for err in exc.errors():
        # pydantic inserts the tag of a discriminated union into loc; users never wrote it.
        loc = tuple(p for p in err["loc"] if p not in ("llm", "vision", "training", "serving", "vision-inference"))
        named = re.match(r"Value error, `([\w.]+)`: (.*)", err["msg"]) if err["type"] == "value_error" else None
        if named:  # a model-level check about one of its fields (or a nested one): report it there, message whole
            loc, err = loc + tuple(named.group(1).split(".")), {**err, "msg": named.group(2)}
        full = prefix + loc
        fix = None
        if err["type"] == "extra_forbidden":
            key = str(loc[-1])
            close = get_close_matches(key, _allowed_keys(model, loc, doc.data), n=1, cutoff=0.5)
            message = f"unknown field `{key}`." + (f" Did you mean `{close[0]}`?" if close else "")
            fix = "remove it or correct its name"
        elif err["type"] == "missing" and isinstance(loc[-1], int):
            # A fixed-length list ([width, height]) with too few entries: the path names the list, not a key.
            full = full[:-1]
            message = f"too few values: entry {loc[-1] + 1} is missing"
            fix = "give every value of the list, e.g. [1920, 1080] for a resolution"
        elif err["type"] == "missing":
            message = "required field is missing"
            fix = f"add `{loc[-1]}`"
        else:
            got = err.get("input")
            shown = "" if named or isinstance(got, (dict, list)) else f" (got {got!r})"
            message = f"{err['msg']}{shown}"
            if err["type"] in ("less_than_equal", "less_than"):
                ceiling = (err.get("ctx") or {}).get("le", (err.get("ctx") or {}).get("lt"))
                if isinstance(ceiling, (int, float)):
                    shown = f" (got {got:g})" if isinstance(got, (int, float)) else shown
                    message = f"too large{shown}: at most {plain_number(ceiling)}"
                fix = "check the value and its unit"
            elif err["type"] == "finite_number":
                fix = "give a finite number (.inf and .nan are not values a plan can meet)"
            elif isinstance(got, bool) and err["type"] in ("float_type", "int_type", "float_parsing", "int_parsing"):
                fix = "give a number, not true/false"
        problems.append(Problem(message, file=doc.file, path=dotted(full) or "(top level)", fix=fix, line=doc.line_of(full)))
    return problems


def parse_document(doc: YamlDocument, model: type[BaseModel], error: type[PlannerError]) -> Any:
    if not isinstance(doc.data, dict):
        raise error(Problem("expected a mapping at the top level", file=doc.file, fix="see `planner schema`"))
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise error(validation_problems(exc, doc, model)) from None
