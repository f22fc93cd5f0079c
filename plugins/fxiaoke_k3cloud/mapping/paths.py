"""Target paths into a package template, and the precompiled builder that fills a template fast.

A path is ``Key(.Key|[n])*``: ``FName``, ``FCustTypeId.FNumber``, ``FT_BD_CUSTCONTACT[0].FMOBILE``.

Why a compiled builder: a flow fills the same ~100-node template for every record. ``copy.deepcopy`` costs
~100 µs per record; instead the template is turned once into one Python function whose body is the template
written as a dict/list *display* with each mapped slot replaced by ``v[i]``. Calling it builds a fresh, fully
independent package in a few microseconds. The source is generated only from JSON scalars (``repr`` of a
``str``/``int``/``float``/``bool``/``None`` is always a literal) and from ``v[i]`` subscripts, and it runs with
no builtins, so nothing in a mapping file can inject code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

Step = str | int
Path = tuple[Step, ...]

_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*")
_STEP_RE = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PathError(ValueError):
    """A path is malformed or does not lead to a value inside the template."""


def parse_path(text: str) -> Path:
    """``"FT_BD_CUSTCONTACT[0].FMOBILE"`` → ``("FT_BD_CUSTCONTACT", 0, "FMOBILE")``."""
    if not isinstance(text, str) or not _PATH_RE.fullmatch(text):
        raise PathError(f"{text!r} is not a path; write keys joined by dots with [n] for rows, e.g. FT_BD_CUSTCONTACT[0].FMOBILE")
    return tuple(m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP_RE.finditer(text))


def format_path(path: Path) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def resolve(template: Any, path: Path) -> Any:
    """The template value at ``path``; :class:`PathError` saying which step is missing and what exists there."""
    node = template
    for depth, step in enumerate(path):
        where = format_path(path[:depth]) or "the template root"
        if isinstance(step, int):
            if not isinstance(node, list):
                raise PathError(f"{where} is not a list of rows, so [{step}] does not exist")
            if step >= len(node):
                raise PathError(f"{where} has {len(node)} row(s) in the template; [{step}] does not exist")
            node = node[step]
        else:
            if not isinstance(node, dict):
                raise PathError(f"{where} is a {type(node).__name__}, not an object, so .{step} does not exist")
            if step not in node:
                keys = ", ".join(list(node)[:12]) + (", …" if len(node) > 12 else "")
                raise PathError(f"{step!r} is not a key of {where}; keys there: {keys}")
            node = node[step]
    return node


def set_path(target: dict[str, Any], path: Path, value: Any) -> None:
    """Write ``value`` at ``path`` into a sparse nested dict, creating objects and rows on the way."""
    node: Any = target
    for step, nxt in zip(path, path[1:]):
        blank: Any = [] if isinstance(nxt, int) else {}
        if isinstance(step, int):
            while len(node) <= step:
                node.append({})
            if isinstance(nxt, int) and not node[step]:
                node[step] = []
            node = node[step]
        else:
            node = node.setdefault(step, blank)
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


def check_template(template: Any, where: str = "") -> None:
    """Refuse anything but JSON data with identifier keys; refuse ``{{field}}`` placeholders (map them instead)."""
    if isinstance(template, dict):
        for key, value in template.items():
            here = f"{where}.{key}" if where else str(key)
            if not isinstance(key, str) or not KEY_RE.fullmatch(key):
                raise PathError(f"{here}: template keys must be K3Cloud/Fxiaoke field keys (letters, digits, _)")
            check_template(value, here)
    elif isinstance(template, list):
        for i, value in enumerate(template):
            check_template(value, f"{where}[{i}]")
    elif isinstance(template, str):
        if "{{" in template and "}}" in template:
            raise PathError(
                f"{where}: template placeholder {template!r} is not expanded; keep the default value in the template "
                "and add an entry under fields: (target: this path, source: the CRM field)"
            )
    elif isinstance(template, float):
        if not math.isfinite(template):
            raise PathError(f"{where}: {template!r} is not valid JSON")
    elif template is not None and not isinstance(template, (bool, int)):
        raise PathError(f"{where}: {type(template).__name__} is not JSON data")


def compile_builder(template: dict[str, Any], slots: Sequence[Path], name: str) -> Callable[[Sequence[Any]], dict]:
    """A function ``build(v)`` returning a fresh copy of ``template`` with ``v[i]`` placed at ``slots[i]``.

    A slot may replace a whole subtree (an entry entity's row list). ``template`` must have passed
    :func:`check_template`.
    """
    index = {tuple(path): i for i, path in enumerate(slots)}

    def emit(node: Any, path: Path) -> str:
        slot = index.get(path)
        if slot is not None:
            return f"v[{slot}]"
        if isinstance(node, dict):
            return "{" + ", ".join(f"{key!r}: {emit(val, (*path, key))}" for key, val in node.items()) + "}"
        if isinstance(node, list):
            return "[" + ", ".join(emit(val, (*path, i)) for i, val in enumerate(node)) + "]"
        if node is None or type(node) in (str, int, float, bool):
            return repr(node)
        raise PathError(f"{format_path(path)}: cannot compile {type(node).__name__}")  # check_template stops this

    source = f"def build(v):\n    return {emit(template, ())}\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<template {name}>", "exec"), {"__builtins__": {}}, namespace)  # noqa: S102 - see module doc
    return namespace["build"]
