"""What a transform produces: packages to write, and rejected / parked / held / reported records (data, not errors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Callable, Sequence
from typing import Any

from .paths import Path, set_path


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One bad value: the source field, the target path, the offending value and a full sentence."""

    source_field: str
    target: str
    value: Any
    reason: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that cannot be written until someone fixes its data. ``reason`` joins all its problems."""

    source_id: str
    source_name: str
    source_field: str
    target: str
    reason: str
    problems: tuple[FieldProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class Parked:
    """A valid record waiting for a dependency (customer, material) to exist in the target system."""

    source_id: str
    source_name: str
    reason: str
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record not written because of its status: ``held`` until it changes, or ``reported`` (e.g. voided)."""

    source_id: str
    source_name: str
    status: str
    number: str | None
    reason: str


# Keys that name the lookup property of a base-data reference ({"FNumber": …}), not a field of their own.
_REFERENCE_KEYS = {"fnumber", "fname", "fuserid", "fid", "fstaffnumber", "fmasterid"}


def field_keys(path: Path) -> list[str]:
    """The K3Cloud keys a path writes: ``FCustTypeId.FNumber`` → FCustTypeId; ``FT_X[0].FMOBILE`` → FT_X, FMOBILE."""
    keys = [step for step in path if isinstance(step, str)]
    if len(keys) >= 2 and keys[-1].lower() in _REFERENCE_KEYS:
        keys.pop()
    return keys


@dataclass(frozen=True, slots=True)
class Shape:
    """What every package of one mapping shares: key names, mapped paths and the compiled template builders."""

    pk: str
    texts: tuple[str, ...]  # header target paths in field order (the number first)
    paths: dict[str, Path]
    build: Callable[[Sequence[Any]], dict[str, Any]]
    entity: str | None = None
    entry_pk: str | None = None
    row_texts: tuple[str, ...] = ()
    row_paths: dict[str, Path] = field(default_factory=dict)
    build_row: Callable[[Sequence[Any]], dict[str, Any]] | None = None

    def need_update_fields(self) -> list[str]:
        out: dict[str, None] = {}
        for path in self.paths.values():
            out.update(dict.fromkeys(field_keys(path)))
        if self.entity is not None:
            out[self.entity] = None
            if self.entry_pk:
                out[self.entry_pk] = None
            for path in self.row_paths.values():
                out.update(dict.fromkeys(field_keys(path)))
        return list(out)


@dataclass(slots=True, eq=False)
class Package:
    """One accepted record, ready to save.

    ``model`` is the full create Model (every template key present), built from the compiled template on each
    access (a fresh, independent dict, ~10 µs): a flow skips unchanged records by ``payload_hash`` and never
    pays for their Model, and 100k packages do not hold 100k ~10 KB Models in memory. ``mapped``
    holds only the mapped values keyed by target path (entry rows under the entity key as a list of such dicts).
    ``payload_hash`` is the sha256 of ``mapped`` as canonical JSON (sorted keys, no spaces, ASCII escapes), so
    it ignores dict order and template-only changes.
    """

    source_id: str
    source_name: str
    number: str
    payload_hash: str
    values: tuple[Any, ...] = field(repr=False)
    rows: tuple[tuple[Any, ...], ...] = field(default=(), repr=False)
    shape: Shape = field(default=None, repr=False)  # type: ignore[assignment] - always given by the engine
    row_ids: tuple[str, ...] = field(default=(), repr=False)  # the source line id of each entry row

    @property
    def model(self) -> dict[str, Any]:
        """The full create Model, freshly built: callers may change it without affecting anything else."""
        shape = self.shape
        if shape.entity is None:
            return shape.build(self.values)
        assert shape.build_row is not None
        return shape.build((*self.values, [shape.build_row(r) for r in self.rows]))

    @property
    def mapped(self) -> dict[str, Any]:
        """Only the mapped values: ``{target path: value}``, entry rows as a list under the entity key."""
        out: dict[str, Any] = dict(zip(self.shape.texts, self.values))
        if self.shape.entity is not None:
            out[self.shape.entity] = [dict(zip(self.shape.row_texts, r)) for r in self.rows]
        return out

    @property
    def need_update_fields(self) -> list[str]:
        """K3Cloud ``NeedUpDateFields``: the mapped fields' keys (entity keys and their field keys included)."""
        return self.shape.need_update_fields()

    def update_model(self, target_id: int | str, *, entry_ids: dict[str, list[int]] | None = None) -> dict[str, Any]:
        """The update Model: ``{pk: target_id}`` plus only the mapped fields (never template-only values).

        :param entry_ids: known entry ids per entity key, by row position, so K3Cloud updates rows in place;
            rows without an id (or ``None``) are sent without one (K3Cloud adds them; with ``IsDeleteEntry`` it drops the old).
        """
        shape = self.shape
        model: dict[str, Any] = {shape.pk: target_id}
        for text, value in zip(shape.texts, self.values):
            set_path(model, shape.paths[text], value)
        ids = entry_ids or {}
        for key, rows in model.items():
            if isinstance(rows, list) and key in ids:
                _fill_ids(rows, ids[key], "FENTRYID")
        if shape.entity is not None:
            built = []
            for values in self.rows:
                row: dict[str, Any] = {}
                for text, value in zip(shape.row_texts, values):
                    set_path(row, shape.row_paths[text], value)
                built.append(row)
            _fill_ids(built, ids.get(shape.entity, []), shape.entry_pk or "FEntryID")
            model[shape.entity] = built
        return model

    def update_request(self, target_id: int | str, save_options: dict[str, Any] | None = None,
                       *, entry_ids: dict[str, list[int]] | None = None) -> dict[str, Any]:
        """A Save ``data`` body for an update: save options, ``NeedUpDateFields`` and the update Model."""
        return {**(save_options or {}), "NeedUpDateFields": self.need_update_fields,
                "Model": self.update_model(target_id, entry_ids=entry_ids)}

    def create_request(self, save_options: dict[str, Any] | None = None) -> dict[str, Any]:
        """A Save ``data`` body for a create: save options and the full Model."""
        return {**(save_options or {}), "Model": self.model}


def _fill_ids(rows: list[Any], ids: list[int | None], key: str) -> None:
    """Put known entry ids into rows by position; ``None`` leaves a row without one (a new row)."""
    for row, entry_id in zip(rows, ids):
        if isinstance(row, dict) and entry_id is not None:
            row[key] = entry_id


@dataclass(slots=True)
class TransformResult:
    """Everything one transform call produced, in input order within each list."""

    target: str
    save_options: dict[str, Any]
    packages: list[Package] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    parked: list[Parked] = field(default_factory=list)
    held: list[Skipped] = field(default_factory=list)
    reported: list[Skipped] = field(default_factory=list)
    ignored_lines: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return {"packages": len(self.packages), "rejected": len(self.rejected), "parked": len(self.parked),
                "held": len(self.held), "reported": len(self.reported)}
