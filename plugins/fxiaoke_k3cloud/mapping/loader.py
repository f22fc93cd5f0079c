"""Read a mapping file: safe YAML, the pydantic vocabulary, then the cross-checks a schema cannot express.

Every failure is a :class:`~fxiaoke_k3cloud.errors.MappingError` naming the file, the key path
(``fields[3].trasform``) and what is allowed, so whoever edits the YAML can fix it without reading code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import MappingError
from .paths import PathError, check_template, format_path, parse_path, resolve
from .schema import MASTER_PREFIX, FieldMap, FlowMapping


class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser when present: ≈ 10× faster
    """``yaml.SafeLoader`` (no ``!!python`` tags) that also refuses duplicate keys, which YAML silently overwrites."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (the later one would silently win)", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_mapping(path: str | Path) -> FlowMapping:
    """Load and fully validate one mapping file; raise :class:`MappingError` (``file=``, ``key=``) on any problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"cannot read the mapping file: {exc.strerror or exc}", file=file) from exc
    return parse_mapping(text, file=file)


def parse_mapping(text: str, *, file: str = "<string>") -> FlowMapping:
    """Validate mapping YAML given as text (``file`` is only used in messages)."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - _StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else None
        problem = exc.problem or str(exc)
        if "could not determine a constructor" in problem:
            problem += " (tags such as !!python/… are refused: a mapping file is data, not code)"
        raise MappingError(f"not valid mapping YAML: {problem}", file=file, key=where) from None
    except yaml.YAMLError as exc:
        raise MappingError(f"not valid YAML: {exc}", file=file) from None
    if not isinstance(data, dict):
        raise MappingError("the file must be a YAML mapping with version:, source:, target:, template:, fields: …", file=file)
    try:
        mapping = FlowMapping.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(exc, file) from None
    mapping._file = file
    _cross_check(mapping, file)
    return mapping


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _from_validation(exc: ValidationError, file: str) -> MappingError:
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        ctx = err.get("ctx") or {}
        if ctx.get("key"):
            loc.append(ctx["key"])
        if err["type"] == "missing":
            message = "required key is missing"
        elif err["type"] in {"unknown_key", "unknown_transform", "bad_argument", "not_scalar", "overlap", "bad_timezone",
                             "missing_target_name", "wrong_target_name", "on_missing_without_lookup",
                             "lookup_and_value_map", "missing_name", "source_action_target",
                             "source_action_form", "write_back_mapped", "write_back_empty", "write_back_same",
                             "write_back_refresh"}:
            message = err["msg"]
        else:
            message = f"{err['msg']} (got {_short(err.get('input'))})"
        problems.append((_loc(loc), message))
    key, message = problems[0]
    if len(problems) > 1:
        message += "".join(f"\n  also {k}: {m}" for k, m in problems[1:])
    return MappingError(message, file=file, key=key)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _cross_check(m: FlowMapping, file: str) -> None:
    def fail(key: str, message: str) -> None:
        raise MappingError(message, file=file, key=key)

    try:
        check_template(m.template)
    except PathError as exc:
        fail("template", str(exc))

    def leaf(key: str, text: str, template: dict[str, Any], what: str = "the template") -> tuple:
        try:
            path = parse_path(text)
            value = resolve(template, path)
        except PathError as exc:
            fail(key, f"target {text!r} is not inside {what}: {exc}")
        if isinstance(value, (dict, list)):
            fail(key, f"target {text!r} is a {'list of rows' if isinstance(value, list) else 'object'} in {what}; "
                      "point at one value inside it, e.g. " + text + (("[0]." if isinstance(value, list) else ".") + "FNumber"))
        return path

    claimed: dict[tuple, str] = {}

    def claim(key: str, path: tuple) -> None:
        if path in claimed:
            fail(key, f"target {format_path(path)!r} is already written by {claimed[path]}")
        claimed[path] = key

    if m.target.system == "k3cloud" and m.target.pk not in m.template:
        fail("target.pk", f"{m.target.pk!r} is not a top-level key of the template; creates need it as 0")
    if m.target.system == "fxiaoke" and m.save_options.as_dict():
        fail("save_options", "save options are K3Cloud Save options; a fxiaoke target takes none")
    claim("number_rule", leaf("target.number", m.target.number, m.template))
    if m.org is not None:
        if m.org.entry_fields and m.entries is None:
            fail("org.entry_fields", "entry_fields needs an entries: section")
        for group in ("create_fields", "use_fields"):
            for i, text in enumerate(getattr(m.org, group)):
                claim(f"org.{group}[{i}]", leaf(f"org.{group}[{i}]", text, m.template))
    _check_fields(m, m.fields, "fields", m.template, "the template", leaf, claim, fail)

    if m.entries is not None:
        e = m.entries
        if not isinstance(m.template.get(e.entity), list):
            fail("entries.entity", f"{e.entity!r} must be a key of the template holding a list of rows (e.g. {e.entity}: [])")
        for path in claimed:
            if path[0] == e.entity:
                fail(claimed[path], f"{e.entity} rows are built from entries:; map their fields under entries.fields")
        try:
            check_template(e.template)
        except PathError as exc:
            fail("entries.template", str(exc))
        if e.entry_pk is not None and e.entry_pk not in e.template:
            fail("entries.entry_pk", f"{e.entry_pk!r} is not a key of the entry row template")
        row_claimed: dict[tuple, str] = {}

        def row_claim(key: str, path: tuple) -> None:
            if path in row_claimed:
                fail(key, f"target {format_path(path)!r} is already written by {row_claimed[path]}")
            row_claimed[path] = key

        if m.org is not None:
            for i, text in enumerate(m.org.entry_fields):
                row_claim(f"org.entry_fields[{i}]", leaf(f"org.entry_fields[{i}]", text, e.template, "the entry row template"))
        _check_fields(m, e.fields, "entries.fields", e.template, "the entry row template", leaf, row_claim, fail)
        if e.source.fields is not None:
            needed = {e.source.id_field, e.source.parent_field,
                      *(f.source for f in e.fields if not f.source.startswith(MASTER_PREFIX))}
            _check_projection(needed, e.source.fields, "entries.source.fields", fail)

    if m.source.fields is not None:
        needed = {m.source.id_field, m.source.name_field, m.number_rule.source, *(f.source for f in m.fields),
                  *(c.source for c in m.checks)}
        if m.entries is not None:
            needed |= {f.source[len(MASTER_PREFIX):] for f in m.entries.fields if f.source.startswith(MASTER_PREFIX)}
        if m.life_status is not None:
            needed.add(m.life_status.field)
        if m.source.modified_field:
            needed.add(m.source.modified_field)
        _check_projection(needed, m.source.fields, "source.fields", fail)


def _check_fields(m: FlowMapping, fields: list[FieldMap], where: str, template: dict[str, Any], what: str,
                  leaf: Any, claim: Any, fail: Any) -> None:
    for i, f in enumerate(fields):
        if f.source.startswith(MASTER_PREFIX) and where == "fields":
            fail(f"{where}[{i}].source", f"{MASTER_PREFIX}<field> only applies to entries.fields")
        claim(f"{where}[{i}].target", leaf(f"{where}[{i}].target", f.target, template, what))
        if f.value_map is not None and f.value_map not in m.value_maps:
            fail(f"{where}[{i}].value_map",
                 f"no value map named {f.value_map!r}; defined under value_maps: {', '.join(m.value_maps) or '(none)'}")
        if f.lookup is not None and f.lookup not in m.lookups:
            fail(f"{where}[{i}].lookup", f"no lookup named {f.lookup!r}; declared under lookups: {', '.join(m.lookups) or '(none)'}")


def _check_projection(needed: set[str], projection: list[str], key: str, fail: Any) -> None:
    missing = sorted(needed - set(projection))
    if missing:
        fail(key, f"the field projection leaves out {', '.join(missing)}, which the mapping reads; add them")
