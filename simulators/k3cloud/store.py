"""In-memory document store, one per simulator instance: documents per form, ids, numbering, base-data lookups."""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from .forms import get_form
from .metadata import Form

# The server speaks its own local time (China, UTC+8) without an offset (k3cloud-webapi.md §7.4).
SERVER_TZ = timezone(timedelta(hours=8))


def number_key(number: Any) -> str:
    """How the server compares numbers: SQL Server's default collation (Chinese_PRC_CI_AS) ignores case and
    full/half width; surrounding blanks are not part of a number."""
    return unicodedata.normalize("NFKC", str(number)).strip().casefold()


def now_local() -> str:
    """Current server time as ``yyyy-MM-ddTHH:mm:ss.fff`` (UTC+8, no offset)."""
    return datetime.now(SERVER_TZ).replace(tzinfo=None).isoformat(timespec="milliseconds")


def today_local() -> str:
    return datetime.now(SERVER_TZ).strftime("%Y-%m-%dT00:00:00")


def ref_number(value: Any) -> str | None:
    """The number of a stored reference ``{"FNumber": …}`` (None when empty)."""
    return str(value.get("FNumber")) if isinstance(value, dict) and value.get("FNumber") is not None else None


@dataclass
class Doc:
    """One stored document in Save-model shape (canonical keys).

    Org-controlled base data is one document per use org, as in K3Cloud: the one created (its ``FUseOrgId`` is
    its ``FCreateOrgId``) is the master; Allocate adds a copy per use org with the same number, its own id,
    ``FMasterId`` = the master's id, and its own ``FDocumentStatus`` / ``FForbidStatus``.
    """

    form: Form
    data: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.data[self.form.pk])

    @property
    def master_id(self) -> int:
        return int(self.data.get("FMasterId") or self.id)

    @property
    def use_org(self) -> str | None:
        return ref_number(self.data.get("FUseOrgId")) if self.form.org_controlled else None

    @property
    def number(self) -> str:
        return str(self.data.get(self.form.number_key) or "")

    @property
    def status(self) -> str:
        return str(self.data.get("FDocumentStatus") or "")

    @property
    def name(self) -> str:
        return str(self.data.get("FName") or "")

    def export(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


class Store:
    """Documents by form; ids and entry ids are unique per instance, bill numbers count up per form."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[int, Doc]] = {}
        self._next_id = 100001
        self._next_entry_id = 100001
        self._number_seq: dict[str, int] = {}
        # form id -> number key -> doc ids (one per use org for allocated base data; the master first), so
        # reference lookups stay O(1) with thousands of documents
        self._numbers: dict[str, dict[str, list[int]]] = {}
        self._number_of: dict[tuple[str, int], str] = {}

    # --- ids and numbers -------------------------------------------------------------------
    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def new_entry_id(self) -> int:
        self._next_entry_id += 1
        return self._next_entry_id - 1

    def next_number(self, form: Form) -> str:
        """Next free number of the form's coding rule (CUST0001, XSDD000001, …)."""
        width = 4 if form.form_id == "BD_Customer" else form.number_width
        while True:
            seq = self._number_seq.get(form.form_id, 0) + 1
            self._number_seq[form.form_id] = seq
            number = f"{form.number_prefix}{seq:0{width}d}"
            if self.by_number(form, number) is None:
                return number

    # --- access ------------------------------------------------------------------------------
    def table(self, form: Form) -> dict[int, Doc]:
        return self.docs.setdefault(form.form_id, {})

    def all(self, form: Form) -> Iterator[Doc]:
        return iter(sorted(self.table(form).values(), key=lambda d: d.id))

    def get(self, form: Form, doc_id: int) -> Doc | None:
        return self.table(form).get(doc_id)

    def all_by_number(self, form: Form, number: str) -> list[Doc]:
        """Every document with this number: one per use org for allocated base data, the master first."""
        # SQL Server's default collation compares numbers without regard to case and width.
        wanted = number_key(number)
        ids = self._numbers.get(form.form_id, {}).get(wanted, []) if wanted else []
        table = self.table(form)
        return sorted((table[i] for i in ids if i in table), key=lambda d: (d.master_id != d.id, d.id))

    def by_number(self, form: Form, number: str, org: str | None = None) -> Doc | None:
        """The document with this number; for allocated base data the copy used by ``org`` (None if the number
        is not allocated to it), or without an org the master (the create org's)."""
        docs = self.all_by_number(form, number)
        if org and form.org_controlled:
            return next((d for d in docs if d.use_org == str(org)), None)
        return docs[0] if docs else None

    def copies(self, doc: Doc) -> list[Doc]:
        """The allocated copies of a master (other use orgs)."""
        return [d for d in self.all_by_number(doc.form, doc.number) if d.id != doc.id and d.master_id == doc.id]

    def put(self, doc: Doc) -> None:
        self.table(doc.form)[doc.id] = doc
        self._unindex(doc)
        if doc.number.strip():
            key = number_key(doc.number)
            ids = self._numbers.setdefault(doc.form.form_id, {}).setdefault(key, [])
            ids.append(doc.id)
            self._number_of[(doc.form.form_id, doc.id)] = key

    def remove(self, doc: Doc) -> None:
        self.table(doc.form).pop(doc.id, None)
        self._unindex(doc)

    def _unindex(self, doc: Doc) -> None:
        old = self._number_of.pop((doc.form.form_id, doc.id), None)
        ids = self._numbers.get(doc.form.form_id, {}).get(old or "")
        if ids and doc.id in ids:
            ids.remove(doc.id)
            if not ids:
                del self._numbers[doc.form.form_id][old]

    def find_ref(self, form_id: str, lookup: str, value: Any, category: str | None = None,
                 org: str | None = None) -> Doc | None:
        """Resolve a base-data reference ``{"<lookup>": value}``: by number, name, or internal id. For allocated
        base data ``org`` picks the use org's copy (None when not allocated to it); without an org, the master."""
        form = get_form(form_id)
        if form is None:
            return None
        key = lookup.lower()
        text = str(value).strip().lower()
        if key in ("fnumber", "fstaffnumber"):
            doc = self.by_number(form, str(value), org)
            return doc if doc is not None and (not category or str(doc.data.get("FId", "")) == category) else None
        hits = []
        for doc in self.table(form).values():
            if category and str(doc.data.get("FId", "")) != category:
                continue
            # FName by name; FID, FUserID or the form's PK by internal id
            if doc.name.lower() == text if key == "fname" else str(doc.id) == text:
                hits.append(doc)
        if key != "fname" or not form.org_controlled:
            return hits[0] if hits else None
        if org:
            return next((d for d in hits if d.use_org == str(org)), None)
        return next((d for d in hits if d.master_id == d.id), hits[0] if hits else None)

    def ref_doc(self, form_id: str | None, value: Any, category: str | None = None,
                org: str | None = None) -> Doc | None:
        """The base document a stored reference (``{"FNumber": …}`` or None) points at (in ``org`` if given and
        allocated there, else the master)."""
        if not form_id or not isinstance(value, dict) or not value:
            return None
        (lookup, v), = list(value.items())[:1]
        doc = self.find_ref(form_id, lookup, v, category, org)
        return doc if doc is not None or not org else self.find_ref(form_id, lookup, v, category)
