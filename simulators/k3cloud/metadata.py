"""Form metadata: which field keys a form has, their kind, caption and the base data they reference.

The real server validates a Save package against the form's metadata (unknown key → error, required fields,
base-data lookups); the simulator needs the same information, kept here as small declarative tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Field kinds: t text · m multilingual text · n number · i integer · b boolean · d date · r reference · x raw
# (stored as given: link rows, plan rows) · s status letter.
KINDS = frozenset("tmnibdrxs")


@dataclass(frozen=True)
class Field:
    key: str
    kind: str = "t"
    caption: str = ""
    ref: str | None = None  # referenced form id
    ref_category: str | None = None  # assistant-data category (BOS_ASSISTANTDATA_DETAIL.FId)
    required: bool = False
    read_only: bool = False  # maintained by the server (execution quantities, statuses)

    @property
    def orm(self) -> str:
        """ORM property name used by View: the field key without its leading ``F``."""
        return self.key[1:] if self.key[:1] in "Ff" and len(self.key) > 1 else self.key


@dataclass
class Entity:
    """A sub-entity: multi-row (array in the model) or single-row (object in the model)."""

    key: str
    pk: str
    caption: str
    multi: bool = True
    orm: str = ""
    fields: dict[str, Field] = field(default_factory=dict)  # lower-case key -> Field
    loose: bool = False  # accept any key (rarely used plan/clause entities)

    def get(self, key: str) -> Field | None:
        return self.fields.get(key.lower())


@dataclass
class Form:
    form_id: str
    caption: str
    pk: str
    number_key: str  # FNumber (base data) or FBillNo (bills)
    header: dict[str, Field]
    entities: dict[str, Entity]  # lower-case entity key -> Entity
    number_prefix: str = ""
    number_width: int = 6
    base_data: bool = False
    org_key: str | None = None  # the field naming the org a document is used in (reference allocation checks)
    org_controlled: bool = False  # base data allocated per org
    defaults: dict[str, object] = field(default_factory=dict)

    def header_field(self, key: str) -> Field | None:
        return self.header.get(key.lower())

    def entity(self, key: str) -> Entity | None:
        return self.entities.get(key.lower())

    def lookup(self, key: str) -> tuple[Entity | None, Field] | None:
        """Find a field anywhere in the form (header first, then single-row and multi-row entities)."""
        f = self.header_field(key)
        if f is not None:
            return None, f
        for ent in self.entities.values():
            ef = ent.get(key)
            if ef is not None and ef.key.lower() != ent.pk.lower():
                return ent, ef
        return None


def parse_fields(table: str) -> dict[str, Field]:
    """Parse a field table: one field per line, ``Key kind[:RefForm[/category]] caption [req] [ro]``."""
    out: dict[str, Field] = {}
    for raw in table.strip().splitlines():
        parts = raw.split()
        if not parts:
            continue
        key, spec = parts[0], parts[1]
        caption = parts[2] if len(parts) > 2 and parts[2] not in ("req", "ro") else key
        flags = set(parts[2:])
        kind, _, target = spec.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown field kind {kind!r} in {raw!r}")
        ref, _, category = target.partition("/")
        out[key.lower()] = Field(
            key=key,
            kind=kind,
            caption=caption,
            ref=ref or None,
            ref_category=category or None,
            required="req" in flags,
            read_only="ro" in flags,
        )
    return out


def entity(key: str, pk: str, caption: str, table: str = "", *, multi: bool = True, orm: str = "", loose: bool = False) -> Entity:
    fields = parse_fields(f"{pk} i {pk}\n{table}")
    return Entity(key=key, pk=pk, caption=caption, multi=multi, orm=orm or key.lstrip("F"), fields=fields, loose=loose)
