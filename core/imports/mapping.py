"""Column mapping: which column of a file feeds which field of an import type.

Real files say `Kundennummer`, `Customer No.` or `Währung`. A mapping ({file column: field})
names them; columns it does not name still match a field whose name they spell, ignoring case,
spaces, punctuation and umlauts (`Customer Account` = `customer_account`). suggest() proposes
a mapping from the header for people to confirm: exact names first, then a small list of
English and German synonyms. guess_type() names the type a header most likely belongs to.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from core.imports.readers import ImportFailure

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")

# Synonyms per field, written as people write them; compared normalised.
_ACCOUNT = ("account", "customer", "customer no", "customer number", "customer id", "account no",
            "account number", "customer account", "debtor", "debtor no", "kundennummer", "kunden nr", "kundennr",
            "kunde", "kunden id", "debitor", "debitorennummer", "debitor nr", "kontonummer")
_ITEM = ("item", "item no", "item number", "item id", "sku", "article", "article no", "article number",
         "product", "product id", "product no", "part number", "artikel", "artikelnummer", "artikel nr", "artikelnr",
         "materialnummer", "material")
_PRICE = ("price", "unit price", "sales price", "list price", "net price", "preis", "einzelpreis",
          "verkaufspreis", "stückpreis", "listenpreis", "nettopreis", "vk preis")
SYNONYMS: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "customer_account": _ACCOUNT,
        "name": ("customer name", "company", "company name", "name 1", "firma", "firmenname", "kundenname",
                 "name1", "bezeichnung"),
        "currency": ("currency code", "curr", "ccy", "währung", "währungscode", "wkz", "devise"),
        "credit_limit": ("limit", "credit", "creditlimit", "kreditlimit", "kreditrahmen", "kreditlinie"),
        "segment": ("customer group", "group", "category", "kundengruppe", "gruppe", "branche", "kategorie"),
        "email": ("e mail", "mail", "email address", "e mail address", "e mail adresse", "emailadresse"),
    },
    "items": {
        "item_id": _ITEM,
        "name": ("item name", "description", "product name", "article name", "bezeichnung",
                 "artikelbezeichnung", "beschreibung", "artikelname"),
        "unit_price": _PRICE,
        "on_hand": ("stock", "on hand qty", "quantity on hand", "qty on hand", "inventory", "bestand",
                    "lagerbestand", "vorrat"),
        "reorder_point": ("reorder level", "min stock", "minimum stock", "safety stock", "meldebestand",
                          "mindestbestand", "sicherheitsbestand"),
    },
    "salesorders": {
        "order_ref": ("order", "order no", "order number", "order reference", "po", "po number",
                      "purchase order", "reference", "bestellung", "bestellnummer", "auftragsnummer",
                      "auftrag", "referenz", "bestellnr"),
        "customer_account": _ACCOUNT,
        "item_id": _ITEM,
        "quantity": ("qty", "amount", "pieces", "menge", "anzahl", "stückzahl", "stueck"),
        "unit_price": _PRICE,
    },
}


def normalise(name: object) -> str:
    """Case, spaces, punctuation and umlauts ignored: 'Kunden-Nr.' -> 'kundennr', 'Währung' -> 'waehrung'."""
    text = str(name if name is not None else "").strip().lstrip("\ufeff").translate(_UMLAUTS).casefold()
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _NOT_ALNUM.sub("", text)


@dataclass(frozen=True)
class Resolved:
    """A header resolved against a type: field -> column index, and per column its field."""

    positions: dict[str, int]
    columns: list[tuple[str, str | None]]  # (the header's text, its field or None), in file order


def _field_names(spec) -> list[str]:
    return [c.name for c in spec.columns]


def suggest(spec, header: list[str]) -> dict[str, str]:
    """{file column: field} for the columns that look like a field: a column spelling the field's
    name first, then synonyms; each field at most once, earlier columns first."""
    fields = _field_names(spec)
    by_name = {normalise(f): f for f in fields}
    synonyms = {normalise(s): f for f, words in SYNONYMS.get(spec.type, {}).items() for s in words}
    taken: set[str] = set()
    result: dict[str, str] = {}
    for table in (by_name, synonyms):
        for column in header:
            if not column or column in result:
                continue
            field = table.get(normalise(column))
            if field and field not in taken:
                result[column] = field
                taken.add(field)
    return result


def resolve(spec, header: list[str], mapping: dict[str, str | None] | None, *, required: list[str]) -> Resolved:
    """Which column feeds which field. `mapping` names file columns (as the header spells them,
    or the same ignoring case, spaces and umlauts) and their field, or None to ignore the column;
    other columns match a field by its name. Raises ImportFailure for a mapped column the header
    lacks, two columns for one field, or a required field left without a column."""
    fields = set(_field_names(spec))
    mapping = dict(mapping or {})
    wanted = {normalise(k): v for k, v in mapping.items()}
    exact = set(mapping)
    found: set[str] = set()
    by_name = {normalise(f): f for f in fields}
    positions: dict[str, int] = {}
    columns: list[tuple[str, str | None]] = []
    for index, column in enumerate(header):
        key = normalise(column)
        if column in exact or (key and key in wanted):
            field = mapping[column] if column in exact else wanted[key]
            found.add(key)
        else:
            field = by_name.get(key)
        if field:
            if field in positions:
                raise ImportFailure("DUPLICATE_COLUMN", f"columns {header[positions[field]]!r} and {column!r} "
                                                        f"both give {field}; map one of them to nothing")
            positions[field] = index
        columns.append((column, field or None))
    absent = [k for k in mapping if normalise(k) not in found]
    if absent:
        raise ImportFailure("MISSING_COLUMNS", f"the mapping names column(s) {', '.join(map(repr, absent))}, which "
                                               f"the header lacks; the header has {', '.join(map(repr, header))}")
    missing = [f for f in required if f not in positions]
    if missing:
        raise ImportFailure("MISSING_COLUMNS", _missing_message(spec, header, missing))
    return Resolved(positions, columns)


def _missing_message(spec, header: list[str], missing: list[str]) -> str:
    message = (f"no column for required field(s) {', '.join(missing)}; expected "
               f"{', '.join(c.name for c in spec.columns)}")
    suggested = {f: c for c, f in suggest(spec, header).items() if f in missing}
    if suggested:
        message += "; map " + ", ".join(f"{c!r} to {f}" for f, c in suggested.items())
    likely = guess_type(header)
    if likely and likely != spec.type:
        message += f"; this header looks like a {likely} file (type {likely})"
    return message


def guess_type(header: list[str]) -> str | None:
    """The import type whose required fields the header has (by name or synonym), the one with
    most matching columns first; None when no type fits."""
    from core.imports.specs import SPECS

    best, best_score = None, 0
    for name, spec in SPECS.items():
        matched = set(suggest(spec, header).values())
        if all(f in matched for f in spec.required) and len(matched) > best_score:
            best, best_score = name, len(matched)
    return best


def check_mapping(spec, mapping: object) -> dict[str, str | None]:
    """A mapping as given by a caller: file column -> a field of the type (or null to ignore)."""
    from core.errors import ToolError

    if not isinstance(mapping, dict):
        raise ToolError("VALIDATION_ERROR", "mapping must be an object of file column -> field", field="mapping")
    fields = _field_names(spec)
    for column, field in mapping.items():
        if field is not None and field not in fields:
            raise ToolError("VALIDATION_ERROR", f"mapping: {column!r} maps to {field!r}, which is not a field of "
                                                f"{spec.type}; fields are {', '.join(fields)}", field="mapping")
    seen: dict[str, str] = {}
    for column, field in mapping.items():
        if field and field in seen:
            raise ToolError("DUPLICATE_COLUMN", f"mapping: columns {seen[field]!r} and {column!r} both give {field}; "
                                                f"map one of them to null", field="mapping")
        if field:
            seen[field] = column
    return dict(mapping)
