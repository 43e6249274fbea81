"""What each import type reads, checks and writes.

A type turns a chunk of raw rows into outcomes (clean record or row errors), checks them
against the database in bulk, and writes the valid ones in bulk with their audit rows and
events. Everything here runs inside the chunk's transaction (see engine.py).
"""

from __future__ import annotations

import functools
import json
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from decimal import Context as DecimalContext
from json.encoder import encode_basestring
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone

from core import jsoncodec
from core.accounts.services import department_code
from core.audit import writer as audit_writer
from core.db import existing_values, insert_select_sql, row_values, rows_payload, update_from_rows_sql
from core.dialect import dialect as sql_dialect
from core.erp import serializers, services, values
from core.erp.models import Customer, Item, SalesOrder, search_text
from core.errors import ToolError
from core.events.bus import publish_many, publish_rows
from core.imports.fields import as_decimal, as_int, as_text
from core.imports.models import Dialect, ImportType

FastReader = Callable[[list[Any]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    description: str
    example: str
    default: Any = None  # an optional column's value when a new record leaves it blank, or it is cleared


# A cell holding only this clears an optional field (sets its default) in update and upsert
# modes, where a blank cell leaves the field as it is; a required field cannot be cleared.
CLEAR = "#N/A"


@dataclass
class RowError:
    column: str
    code: str
    message: str
    value: str


class Outcome:
    """One row of a chunk: its clean record, or its errors. `raw` (the row's text per column, for
    error reports) is built on first use, since the rows that pass never need it."""

    __slots__ = ("line", "record", "errors", "_raw", "_source", "action", "changes", "current", "row")

    def __init__(self, line: int, raw: dict[str, str] | None = None, record: dict[str, Any] | None = None, *,
                 source: tuple[dict[str, int], list[Any]] | None = None) -> None:
        self.line = line
        self.record = record if record is not None else {}
        self.errors: list[RowError] = []
        self._raw = raw
        self._source = source  # (column positions, the row's cells)
        self.action = "create"  # or "update", "unchanged" (see ImportSpec.classify)
        self.changes: tuple[str, ...] | list[str] = ()  # the fields an update changes
        self.current: dict[str, Any] | None = None  # the stored record an update or unchanged row names
        self.row: list[Any] | None = None  # the record as a row of the insert payload (ImportSpec.prepare)

    @property
    def raw(self) -> dict[str, str]:
        if self._raw is None:
            positions, cells = self._source or ({}, [])
            self._raw = {name: as_text(cells[i] if i < len(cells) else None) for name, i in positions.items()}
        return self._raw

    @property
    def ok(self) -> bool:
        return not self.errors

    def fail(self, column: str, code: str, message: str) -> None:
        self.errors.append(RowError(column, code, message[:500], self.raw.get(column, "")[:500]))


@dataclass
class Prepared:
    """What ImportSpec.prepare() built for a chunk's valid outcomes (in create mode, where they
    are all inserted unless the database refuses a key): the list of them, their insert
    payload and, for a type with a created event, each one's event data (publish_rows()).
    write() uses them for these very outcomes and builds anew for any other list."""

    outcomes: list[Outcome]
    payload: str
    events: list[str] | None = None

    def built_for(self, outcomes: list[Outcome]) -> bool:
        """Whether these are the very outcomes it was built for (no check refused one)."""
        return outcomes is self.outcomes or (
            len(outcomes) == len(self.outcomes) and all(map(operator.is_, outcomes, self.outcomes)))

    def payload_for(self, outcomes: list[Outcome]) -> str | None:
        return self.payload if self.built_for(outcomes) else None


@dataclass
class WriteContext:
    job: Any
    started: float
    now: Any = field(default_factory=timezone.now)
    prepared: Prepared | None = None

    @property
    def audit_via(self) -> str:
        # ROI counts imported records as saved manual work, except a one-off migration's.
        return "import" if self.job.roi else "migration"


class ImportSpec(ABC):
    type: str
    columns: tuple[Column, ...]
    key: str  # the column that must be unique in the file
    model: type[models.Model]
    fields: tuple[str, ...] = ()  # the record's fields, the key first
    stored: tuple[str, ...] = ()  # more stored fields an update needs (rules, events)
    label: str  # what one record is called in messages
    not_found_code: str = ""

    # The types whose records an import may update (mode update or upsert).
    updatable = False
    # Whether write() runs check() itself, when the database refuses a key (RowsSpec).
    insert_checks_keys = False

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def required_columns(self, mode: str) -> list[str]:
        """The columns a file must have: in update and upsert modes only the key (a blank or
        missing column leaves the field as it is; a row that creates needs every required value)."""
        return self.required if mode == "create" else [self.key]

    @property
    def audit_tool(self) -> str:
        return f"import.{self.type}"

    def read(self, line: int, cells: dict[str, Any], dialect: Dialect, mode: str = "create") -> Outcome:
        raw = {name: as_text(value) for name, value in cells.items()}
        outcome = Outcome(line, raw)
        required = self.required if mode == "create" else (self.key,)
        for column in self.columns:
            value = raw.get(column.name, "")
            if hasattr(cells.get(column.name), "formula"):  # an XLSX formula whose value was never stored
                outcome.fail(column.name, "FORMULA_WITHOUT_VALUE",
                             f"{column.name} holds the formula {value} without a stored value; open and save the "
                             f"workbook in Excel, or paste the values, and import it again")
            elif "\x00" in value:  # no database stores NUL in text
                raw[column.name] = value.replace("\x00", "\\0")
                outcome.fail(column.name, "INVALID_TEXT", f"{column.name} contains a NUL character")
            elif value == CLEAR and column.required:
                outcome.fail(column.name, "MISSING_FIELD", f"{column.name} is required and cannot be cleared")
            elif column.name in required and not value:
                outcome.fail(column.name, "MISSING_FIELD", f"{column.name} is required")
        self.clean(outcome, cells, dialect)
        return outcome

    @abstractmethod
    def clean(self, outcome: Outcome, cells: dict[str, Any], dialect: Dialect) -> None:
        """Parse the cells of a row that has every required value into outcome.record."""

    @abstractmethod
    def check(self, outcomes: list[Outcome]) -> None:
        """Checks against the database for the valid outcomes of a chunk (bulk queries)."""

    @abstractmethod
    def write(self, outcomes: list[Outcome], ctx: WriteContext) -> None:
        """Write the valid outcomes; mark those the database still refuses as failed."""

    def prepare(self, outcomes: list[Outcome], mode: str) -> Prepared | None:
        """Work for write() done beforehand, on the read-ahead thread (see RowsSpec)."""
        return None

    def take(self, outcome: Outcome, column: str, parse) -> None:
        """record[column] = parse() for a cell with a value; a blank cell leaves the field out of
        the record (a new record takes its default), CLEAR sets its default."""
        if any(e.column == column for e in outcome.errors):
            return  # already reported (a required value is missing)
        text = outcome.raw.get(column, "")
        if not text:
            return
        if text == CLEAR:
            outcome.record[column] = self.column(column).default
            return
        try:
            outcome.record[column] = parse()
        except ToolError as error:
            outcome.fail(column, error.code, error.message)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def classify(self, outcomes: list[Outcome], mode: str, *, lock: bool) -> None:
        """Update and upsert modes: name each valid outcome's action from the stored records
        (one query; `lock`: inside the write transaction, rows locked where the database can):
        create (upsert, unknown key), update (some field differs: outcome.changes), unchanged;
        an unknown key in update mode fails with the type's not-found code."""
        current = {r[self.key]: r for r in self.stored_rows([o.record[self.key] for o in outcomes], lock=lock)}
        for outcome in outcomes:
            stored = current.get(outcome.record[self.key])
            if stored is None:
                if mode == "update":
                    outcome.fail(self.key, self.not_found_code,
                                 f"{self.label} {outcome.record[self.key]} does not exist")
                    continue
                outcome.action = "create"
                for name in self.required:
                    if name not in outcome.record:
                        outcome.fail(name, "MISSING_FIELD", f"{name} is required for a new {self.label}")
                continue
            outcome.current = stored
            outcome.changes = [name for name, value in outcome.record.items()
                               if name != self.key and stored[name] != value]
            outcome.action = "update" if outcome.changes else "unchanged"
        self.check_updates([o for o in outcomes if o.ok and o.action == "update"])

    def stored_rows(self, keys: list[str], *, lock: bool) -> list[dict[str, Any]]:
        """The stored records of these keys, as dicts of the columns an update compares, writes or
        announces: one statement with one JSON parameter however many keys (see
        core.db.existing_values), values typed as the ORM would type them, without its per-row cost."""
        quote = connection.ops.quote_name
        names = ("id", *self.fields, *self.stored)
        meta = [self.model._meta.get_field(name) for name in names]
        columns = [quote(f.column) for f in meta]
        table = quote(self.model._meta.db_table)
        sql = (f"SELECT {', '.join(columns)} FROM {table} WHERE {quote(self.model._meta.get_field(self.key).column)} "
               f"IN ({sql_dialect().text_elements})" + (" FOR UPDATE" if lock and not sql_dialect().one_writer else ""))
        places = {i: Decimal(1).scaleb(-f.decimal_places) for i, f in enumerate(meta)
                  if isinstance(f, models.DecimalField)}
        flags = [i for i, f in enumerate(meta) if isinstance(f, models.BooleanField)]
        with connection.cursor() as cursor:
            cursor.execute(sql, [json.dumps(keys, ensure_ascii=False)])
            rows = cursor.fetchall()
        result = []
        for row in rows:
            values_ = list(row)
            for i, step in places.items():
                values_[i] = _stored_decimal(values_[i]).quantize(step)
            for i in flags:
                values_[i] = bool(values_[i])
            result.append(dict(zip(names, values_, strict=True)))
        return result

    def check_updates(self, outcomes: list[Outcome]) -> None:  # noqa: B027 - most types have none
        """Rules an update must keep beyond the values themselves (bulk queries)."""

    def fast_reader(self, positions: dict[str, int], dialect: Dialect) -> FastReader | None:
        """A reader for the common case, a row of plain text cells that is valid: returns the
        clean record, or None for anything else (a non-text cell, a short row, any doubt), which
        then takes the full path in read() with its row errors. It must accept only what read()
        accepts and produce the same record."""
        return None

    def check_new(self, model, outcomes: list[Outcome], code: str, label: str) -> None:
        """Fail the outcomes whose key the model's table already holds (one query)."""
        existing = existing_values(model, self.key, [o.record[self.key] for o in outcomes])
        for outcome in outcomes:
            if outcome.record[self.key] in existing:
                outcome.fail(self.key, code, f"{label} {outcome.record[self.key]} already exists")

    def update_rows(self, outcomes: list[Outcome], ctx: WriteContext) -> list[Outcome]:
        """Write the updates of a chunk in one UPDATE over a JSON payload: per row the key and the
        new value of every field (the stored value where the row leaves it), read and locked by
        classify() in this transaction."""
        if not outcomes:
            return []
        fields = self.fields[1:]
        rows = []
        for o in outcomes:
            merged = {**o.current, **o.record}
            if "search_name" in merged:  # the name's search text follows the name
                merged["search_name"] = search_text(merged["name"])
            rows.append([merged[self.key], *(str(v) if isinstance(v, Decimal) else v
                                             for v in (merged[f] for f in fields))])
        sql = update_from_rows_sql(self.model, self.key, fields, ("updated",))
        with connection.cursor() as cursor:
            cursor.execute(sql, [connection.ops.adapt_datetimefield_value(ctx.now), rows_payload(rows)])
        return outcomes

    def audit(self, ctx: WriteContext, count: int) -> None:
        """One audit row per imported record, generated by the database in one statement."""
        user = ctx.job.user
        audit_writer.record_many(count, tool=self.audit_tool, user_id=user.pk, username=user.username,
                                 department=department_code(user), via=ctx.audit_via, batch_id=ctx.job.job_id,
                                 created=ctx.now)


class RowsSpec(ImportSpec):
    """A type that inserts its new records itself, set-based (customers, items; sales orders go
    through the order service)."""

    # check() asks only whether the keys are taken, which the insert's unique index asks again:
    # an import that writes in create mode runs it only when its insert meets a taken key
    # (insert_new()), not for every chunk before.
    insert_checks_keys = True

    @abstractmethod
    def insert_row(self, record: dict[str, Any]) -> list[Any]:
        """A new record as a row of the insert payload: its values in the order of `fields`, a
        blank cell taking its column's default."""

    def prepare(self, outcomes: list[Outcome], mode: str) -> Prepared | None:
        """In create mode, where every valid outcome is inserted unless the check refuses it,
        what write() would otherwise build inside the write transaction, built beforehand (on
        the read-ahead thread, see core.imports.ahead): each valid outcome's insert row
        (Outcome.row) and the payload of them all. (In upsert mode most rows of a sync are
        unchanged, and write() builds the rows of the new ones.)"""
        if mode != "create":
            return None
        valid = [o for o in outcomes if not o.errors]
        for o in valid:
            o.row = self.insert_row(o.record)
        return Prepared(valid, rows_payload([o.row for o in valid])) if valid else None

    @staticmethod
    def by_action(outcomes: list[Outcome], ctx: WriteContext) -> tuple[list[Outcome], list[Outcome]]:
        """The outcomes to insert and those to update (in create mode, all of them are new)."""
        if ctx.job.mode == "create":
            return outcomes, []
        return [o for o in outcomes if o.action == "create"], [o for o in outcomes if o.action == "update"]

    def insert_new(self, model, outcomes: list[Outcome], ctx: WriteContext, constants: dict[str, Any], code: str,
                   label: str) -> list[Outcome]:
        """Insert the outcomes' rows (insert_row(), kept in Outcome.row), with the same
        `constants` in every row, in one INSERT ... SELECT over their JSON payload (see
        core.db.insert_select_sql). When a key is taken, check() fails the rows whose key the
        table holds (a file imported again) and the others are inserted the same way; if a
        concurrent writer took a key since, they are inserted one by one and only the rows whose
        key is taken fail. Returns the outcomes written."""
        payload = ctx.prepared.payload_for(outcomes) if ctx.prepared is not None else None
        if payload is None:  # not the outcomes prepare() built the rows and payload of
            for o in outcomes:
                if o.row is None:
                    o.row = self.insert_row(o.record)
        sql = insert_select_sql(model, row_values(model, self.fields) + tuple((name, "%s") for name in constants))
        params = [connection.ops.adapt_datetimefield_value(v) if isinstance(v, datetime) else v
                  for v in constants.values()]

        def inserted(chunk: list[Outcome], payload: str | None = None) -> bool:
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(sql, [*params, payload or rows_payload([o.row for o in chunk])])
                return True
            except IntegrityError:
                return False

        if inserted(outcomes, payload):
            return outcomes
        self.check(outcomes)
        kept = [o for o in outcomes if o.ok]
        if inserted(kept):
            return kept
        written = []
        for outcome in kept:
            if inserted([outcome]):
                written.append(outcome)
            else:
                outcome.fail(self.key, code, f"{label} {outcome.record[self.key]} already exists")
        return written


ZERO = Decimal("0.00")
# What the ORM makes of a decimal column SQLite returns as a float (REAL): its 15 significant digits.
_FROM_FLOAT = DecimalContext(prec=15).create_decimal_from_float


def _stored_decimal(value: Any) -> Decimal:
    return _FROM_FLOAT(value) if isinstance(value, float) else Decimal(value)


def _xlsx_texts(cells: list[Any]) -> list[str] | None:
    """An XLSX row's cells as text, as the full reader's as_text() makes them, when each is text, a
    number or empty; None for anything else (a boolean, a date, a formula without a value), which
    the full reader then reports or reads."""
    try:
        return [cell if cell.__class__ is str else _xlsx_text(cell) for cell in cells]
    except _NotText:
        return None


class _NotText(Exception):
    """A cell _xlsx_texts() leaves to the full reader."""


def _xlsx_text(cell: Any) -> str:
    if cell is None:
        return ""
    cls = cell.__class__
    if cls is int:
        return str(cell)
    if cls is float:  # as as_text(): a whole one without ".0" (one of 10**15 or more; below, it is an int)
        return str(int(cell)) if cell.is_integer() else str(cell)
    raise _NotText


def xlsx_fast_reader(read: FastReader) -> FastReader:
    """A spec's fast reader for XLSX rows, whose numbers and empty cells become text first."""

    def read_xlsx(cells: list[Any]) -> dict[str, Any] | None:
        texts = _xlsx_texts(cells)
        return None if texts is None else read(texts)

    return read_xlsx


def _money_reader(dialect: Dialect) -> Callable[[str], Decimal | None]:
    """Text -> a Decimal of at most two places, >= 0 and in range, as values.money accepts it
    after fields.as_decimal; None for anything else (the full path then reports it)."""
    comma = dialect.decimal_comma

    def parse(text: str) -> Decimal | None:
        if comma:
            text = text.replace(".", "").replace(",", ".")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            return None
        if (not amount.is_finite() or amount < 0 or amount > values.MAX_MONEY
                or amount != amount.quantize(values.CENT, rounding=ROUND_HALF_UP)):
            return None
        return amount.quantize(values.CENT) if amount else ZERO

    return parse


class CustomersSpec(RowsSpec):
    type = ImportType.CUSTOMERS
    key = "customer_account"
    model = Customer
    label = "customer"
    not_found_code = "CUST_NOT_FOUND"
    updatable = True
    columns = (
        Column("customer_account", True, "unique account, letters/digits/.-_/ up to 20", "CUST-1001"),
        Column("name", True, "name, any Unicode, up to 255", "Müller GmbH"),
        Column("currency", True, "active ISO 4217 code", "EUR"),
        Column("credit_limit", False, "number, two decimals at most; 0 or empty = no limit", "50000.00", ZERO),
        Column("segment", False, "free text up to 40", "wholesale", ""),
        Column("email", False, "an e-mail address, up to 254 characters", "einkauf@mueller.example", ""),
    )

    def clean(self, outcome: Outcome, cells: dict[str, Any], dialect: Dialect) -> None:
        raw = outcome.raw
        self.take(outcome, "customer_account", lambda: values.key(raw["customer_account"], "customer_account", 20))
        self.take(outcome, "name", lambda: values.text(raw["name"], "name", 255))
        self.take(outcome, "currency", lambda: values.currency(raw["currency"]))
        self.take(outcome, "credit_limit", lambda: values.money(
            as_decimal(cells.get("credit_limit"), dialect.decimal_comma, "credit_limit"), "credit_limit"))
        self.take(outcome, "segment", lambda: values.text(raw.get("segment", ""), "segment", 40, required=False))
        self.take(outcome, "email", lambda: values.email(raw.get("email", "")))

    def check(self, outcomes: list[Outcome]) -> None:
        self.check_new(Customer, outcomes, "CUST_ALREADY_EXISTS", "customer")

    def check_updates(self, outcomes: list[Outcome]) -> None:
        # As ax_update_customer: the currency of a customer with a balance or orders stays.
        moving = [o for o in outcomes if "currency" in o.changes]
        if not moving:
            return
        busy = set(SalesOrder.objects.filter(customer_id__in=[o.current["id"] for o in moving])
                   .exclude(status=SalesOrder.Status.CANCELLED).values_list("customer_id", flat=True).distinct())
        for o in moving:
            if o.current["balance"] != 0 or o.current["id"] in busy:
                o.fail("currency", "INVALID_STATE", "the currency of a customer with orders or a balance cannot "
                                                    "change")

    def fast_reader(self, positions: dict[str, int], dialect: Dialect) -> FastReader | None:
        account_at, name_at, currency_at = (positions.get("customer_account"), positions.get("name"),
                                            positions.get("currency"))
        if account_at is None or name_at is None or currency_at is None:
            return None
        limit_at, segment_at, email_at = (positions.get("credit_limit"), positions.get("segment"),
                                          positions.get("email"))
        width = 1 + max(positions[c.name] for c in self.columns if c.name in positions)
        key_match, currencies, parse_money = values.KEY_RE.match, values.iso_currencies(), _money_reader(dialect)
        email_match = values.EMAIL_RE.match

        def read(cells: list[Any]) -> dict[str, Any] | None:
            if len(cells) < width:
                return None
            try:
                account, name = cells[account_at].strip(), cells[name_at].strip()
                currency = cells[currency_at].strip().upper()
                limit = cells[limit_at].strip() if limit_at is not None else ""
                segment = cells[segment_at].strip() if segment_at is not None else ""
                email = cells[email_at].strip() if email_at is not None else ""
            except AttributeError:  # not text: an XLSX number or empty cell, read as the full reader reads it
                texts = _xlsx_texts(cells)
                return None if texts is None else read(texts)
            if (len(account) > 20 or not key_match(account) or not name or len(name) > 255
                    or currency not in currencies or len(segment) > 40
                    or (email and (len(email) > 254 or not email_match(email)))
                    or "\x00" in name or "\x00" in segment or name == CLEAR or segment == CLEAR
                    or limit == CLEAR or email == CLEAR):
                return None
            record = {"customer_account": account, "name": name, "currency": currency}
            if limit:
                credit_limit = parse_money(limit)
                if credit_limit is None:
                    return None
                record["credit_limit"] = credit_limit
            if segment:
                record["segment"] = segment
            if email:
                record["email"] = email
            return record

        return read

    # A row of the payload: the values of these fields, in this order. Every new customer also has NEW.
    fields = ("customer_account", "name", "currency", "credit_limit", "segment", "email", "search_name")
    stored = ("balance", "blocked")
    NEW = {"balance": Decimal("0.00"), "blocked": False}

    def insert_row(self, record: dict[str, Any]) -> list[Any]:
        # A new record's blank cells take their column's default (ZERO, "").
        return [record.get("customer_account"), record.get("name"), record.get("currency"),
                str(record.get("credit_limit", ZERO)), record.get("segment", ""), record.get("email", ""),
                search_text(record.get("name", ""))]

    def write(self, outcomes: list[Outcome], ctx: WriteContext) -> None:
        new, changed = self.by_action(outcomes, ctx)
        written = self.insert_new(Customer, new, ctx, {**self.NEW, "created": ctx.now, "updated": ctx.now},
                                  "CUST_ALREADY_EXISTS", "customer") if new else []
        updated = self.update_rows(changed, ctx)
        self.audit(ctx, len(written) + len(updated))
        if written:
            prepared = ctx.prepared
            if prepared is not None and prepared.events is not None and prepared.built_for(written):
                events = prepared.events
            else:
                members = self.event_members()
                events = [members(o.row) for o in written]
            publish_rows("customer.created", events, user=ctx.job.user, via="import")
        if updated:
            publish_many("customer.updated", [
                {**serializers.customer_data(Customer(**{**o.current, **o.record})), "changed": o.changes}
                for o in updated], user=ctx.job.user, via="import")

    def prepare(self, outcomes: list[Outcome], mode: str) -> Prepared | None:
        prepared = super().prepare(outcomes, mode)
        if prepared is not None:  # each new customer's event data too, off the write transaction
            members = self.event_members()
            prepared.events = [members(o.row) for o in prepared.outcomes]
        return prepared

    @classmethod
    @functools.cache
    def event_members(cls) -> Callable[[list[Any]], str]:
        """customer.created's data for a row of the insert payload, as JSON object members (for
        publish_rows()): what ax_create_customer's event carries, serializers.customer_data(),
        key for key. A field the row carries is written as the serializer writes it (text; money
        as the JSON number the hub writes for it); every other field is the serializer's value
        for a new customer (NEW), a constant."""
        parts, fields = [], []
        for key, value in serializers.customer_data(Customer(**cls.NEW)).items():
            if key not in cls.fields:
                parts.append(f"{encode_basestring(key)}:{jsoncodec.dumps(value)}".replace("%", "%%"))
                continue
            parts.append(f"{encode_basestring(key)}:%s")
            money = isinstance(Customer._meta.get_field(key), models.DecimalField)
            fields.append((cls.fields.index(key), _money_number if money else encode_basestring))
        template = ",".join(parts)

        def members(row: list[Any]) -> str:
            return template % tuple([encode(row[index]) for index, encode in fields])

        return members


def _money_number(text: str) -> str:
    """The JSON number the hub writes for an amount given as two-place text (insert_row()): the
    serializers' as_float() and jsoncodec's Decimal both come out as the shortest form that
    keeps one decimal: 1000.50 -> 1000.5, 100.00 -> 100.0, 12.34 as it is."""
    return text[:-1] if text[-1] == "0" else text


class ItemsSpec(RowsSpec):
    type = ImportType.ITEMS
    key = "item_id"
    model = Item
    label = "item"
    not_found_code = "ITEM_NOT_FOUND"
    updatable = True
    columns = (
        Column("item_id", True, "unique item number up to 30", "ITEM-1001"),
        Column("name", True, "name up to 255", "Bürostuhl ergonomisch"),
        Column("unit_price", True, "price in the base currency, two decimals at most", "149.90"),
        Column("on_hand", False, "whole number >= 0; in update and upsert modes the counted stock", "120", 0),
        Column("reorder_point", False, "whole number >= 0", "20", 0),
    )

    def clean(self, outcome: Outcome, cells: dict[str, Any], dialect: Dialect) -> None:
        raw, comma = outcome.raw, dialect.decimal_comma
        self.take(outcome, "item_id", lambda: values.key(raw["item_id"], "item_id", 30))
        self.take(outcome, "name", lambda: values.text(raw["name"], "name", 255))
        self.take(outcome, "unit_price", lambda: values.money(
            as_decimal(cells.get("unit_price"), comma, "unit_price"), "unit_price"))
        self.take(outcome, "on_hand", lambda: as_int(cells.get("on_hand"), comma, "on_hand"))
        self.take(outcome, "reorder_point", lambda: as_int(cells.get("reorder_point"), comma, "reorder_point"))

    def check(self, outcomes: list[Outcome]) -> None:
        self.check_new(Item, outcomes, "ITEM_ALREADY_EXISTS", "item")

    def check_updates(self, outcomes: list[Outcome]) -> None:
        # The counted stock is set as an inventory adjustment would: never below what is reserved.
        for o in outcomes:
            if "on_hand" in o.changes and o.record["on_hand"] < o.current["reserved"]:
                o.fail("on_hand", "INSUFFICIENT_STOCK", f"item {o.record['item_id']}: on hand {o.record['on_hand']} "
                                                        f"would be below the {o.current['reserved']} reserved")

    fields = ("item_id", "name", "unit_price", "on_hand", "reorder_point", "search_name")  # of a row in the payload
    stored = ("reserved",)

    def insert_row(self, record: dict[str, Any]) -> list[Any]:
        # A new record's blank cells take their column's default (0).
        return [record.get("item_id"), record.get("name"), str(record.get("unit_price")), record.get("on_hand", 0),
                record.get("reorder_point", 0), search_text(record.get("name", ""))]

    def write(self, outcomes: list[Outcome], ctx: WriteContext) -> None:
        new, changed = self.by_action(outcomes, ctx)
        written = self.insert_new(Item, new, ctx, {"reserved": 0, "created": ctx.now, "updated": ctx.now},
                                  "ITEM_ALREADY_EXISTS", "item") if new else []
        updated = self.update_rows(changed, ctx)
        # Items have no created/updated event in the catalogue; the audit rows record them. A
        # counted stock that takes an item below its reorder point is announced as for an
        # inventory adjustment.
        self.audit(ctx, len(written) + len(updated))
        low = []
        for o in updated:
            after = Item(**{**o.current, **o.record})
            before = o.current["on_hand"] - o.current["reserved"]
            if after.available < after.reorder_point <= before:
                low.append({**serializers.item_data(after), "cause": "inventory adjustment: import", "sales_id": None})
        publish_many("inventory.low_stock", low, user=ctx.job.user, via="import")


class SalesOrdersSpec(ImportSpec):
    """One row per order line; consecutive rows with one order_ref form one order, created
    through the same service as ax_create_salesorder (stock, credit and price rules apply)."""

    type = ImportType.SALESORDERS
    key = "order_ref"
    model = SalesOrder
    label = "sales order"
    columns = (
        Column("order_ref", True, "your order reference; the rows of one order are consecutive", "PO-2026-0042"),
        Column("customer_account", True, "an existing customer", "CUST-001"),
        Column("item_id", True, "an existing item", "ITEM-001"),
        Column("quantity", True, "whole number >= 1", "3"),
        Column("unit_price", False, "price override in the order currency; empty = list price", "145.00"),
    )

    def clean(self, outcome: Outcome, cells: dict[str, Any], dialect: Dialect) -> None:
        raw, comma = outcome.raw, dialect.decimal_comma
        self.take(outcome, "order_ref", lambda: values.text(raw["order_ref"], "order_ref", 60))
        self.take(outcome, "customer_account", lambda: raw["customer_account"])
        self.take(outcome, "item_id", lambda: raw["item_id"])
        self.take(outcome, "quantity", lambda: as_int(cells.get("quantity"), comma, "quantity", minimum=1))
        self.take(outcome, "unit_price", lambda: values.money(
            as_decimal(cells.get("unit_price"), comma, "unit_price"), "unit_price"))

    def check(self, outcomes: list[Outcome]) -> None:
        accounts = {o.record["customer_account"] for o in outcomes}
        items = {o.record["item_id"] for o in outcomes}
        refs = {o.record["order_ref"] for o in outcomes}
        known_customers = set(Customer.objects.filter(customer_account__in=accounts)
                              .values_list("customer_account", flat=True))
        known_items = set(Item.objects.filter(item_id__in=items).values_list("item_id", flat=True))
        imported = set(SalesOrder.objects.filter(customer_ref__in=refs).values_list("customer_ref", flat=True))
        for o in outcomes:
            if o.record["customer_account"] not in known_customers:
                o.fail("customer_account", "CUST_NOT_FOUND", f"customer {o.record['customer_account']} does not exist")
            if o.record["item_id"] not in known_items:
                o.fail("item_id", "ITEM_NOT_FOUND", f"item {o.record['item_id']} does not exist")
            if o.record["order_ref"] in imported:
                o.fail("order_ref", "ORDER_ALREADY_EXISTS", f"an order with reference {o.record['order_ref']} "
                                                            f"already exists")

    def write(self, outcomes: list[Outcome], ctx: WriteContext) -> None:
        orders: dict[str, list[Outcome]] = {}
        for outcome in outcomes:
            orders.setdefault(outcome.record["order_ref"], []).append(outcome)
        written = 0
        for ref, lines in orders.items():
            if len({o.record["customer_account"] for o in lines}) > 1:
                for o in lines:
                    o.fail("customer_account", "VALIDATION_ERROR", f"the lines of order {ref} name different customers")
                continue
            try:
                with transaction.atomic():
                    services.create_sales_order(lines[0].record["customer_account"], [
                        {"item_id": o.record["item_id"], "quantity": o.record["quantity"],
                         **({"unit_price": o.record["unit_price"]} if o.record.get("unit_price") is not None else {})}
                        for o in lines], customer_ref=ref)
                written += 1
            except ToolError as error:
                for o in lines:
                    o.fail("", error.code, f"order {ref}: {error.message}")
        self.audit(ctx, written)


SPECS: dict[str, ImportSpec] = {spec.type: spec for spec in (CustomersSpec(), ItemsSpec(), SalesOrdersSpec())}


def get_spec(type_name: str) -> ImportSpec:
    spec = SPECS.get(type_name)
    if spec is None:
        raise ToolError("VALIDATION_ERROR", f"unknown import type {type_name!r}; choose one of {', '.join(SPECS)}",
                        field="type")
    return spec
