"""Plain statements for the hot path of order entry (ax_create_salesorder and its batches).

Building a query through the ORM costs several times what the database needs to run it
(compiling the WHERE, the SELECT list, the converters), and an order takes about ten of
them. These are the same statements written once: each function runs one statement and
hands back model instances built in memory, so the callers and the serializers stay the same.
SQLite and PostgreSQL; tables and columns come from the models' metadata, quoted through the
connection, and the inserts write every field of the model (core.db.insert_instance).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection

from core.db import insert_instance, insert_instances, run_sql
from core.dialect import dialect
from core.erp.models import Customer, ExchangeRate, Item, SalesOrder, SalesOrderLine

CENT = Decimal("0.01")
CUSTOMER_FIELDS = ("id", "customer_account", "name", "currency", "credit_limit", "balance", "segment", "email",
                   "blocked")
ITEM_FIELDS = ("id", "item_id", "name", "unit_price", "on_hand", "reserved", "reorder_point")


def money(value: Any) -> Decimal:
    """A money column as Decimal: PostgreSQL returns Decimal, SQLite a float or an int (read
    through its shortest repr: the same value as the ORM's converter for every two-place
    amount below 1e13)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value) if isinstance(value, float) else value).quantize(CENT)


def rate(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)


def _column(model, field: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(field).column)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@cache
def _select(model, fields: tuple[str, ...], by: str, count: int = 0) -> str:
    """SELECT fields of model WHERE by = %s, or with count, WHERE by IN (count placeholders):
    built once per shape."""
    condition = f"IN ({', '.join(['%s'] * count)})" if count else "= %s"
    return (f"SELECT {', '.join(_column(model, f) for f in fields)} FROM {_table(model)} "
            f"WHERE {_column(model, by)} {condition}")


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple]:
    return run_sql(sql, params) or []


def _customer(row: tuple) -> Customer:
    pk, account, name, currency, credit_limit, balance, segment, email, blocked = row
    # from_db: a loaded instance (not "adding"), its other fields deferred, as the ORM gives it.
    return Customer.from_db(DEFAULT_DB_ALIAS, CUSTOMER_FIELDS, (
        pk, account, name, currency, money(credit_limit), money(balance), segment, email, bool(blocked)))


def _item(row: tuple) -> Item:
    pk, item_id, name, unit_price, on_hand, reserved, reorder_point = row
    return Item.from_db(DEFAULT_DB_ALIAS, ITEM_FIELDS, (pk, item_id, name, money(unit_price), on_hand, reserved,
                                                        reorder_point))


def customer_by_account(account: str, *, lock: bool = False) -> Customer | None:
    """The customer, or None. lock=True (inside a transaction, before changing it): on
    PostgreSQL the row is locked FOR UPDATE, so what the change starts from is what it writes
    over (a concurrent writer, an import batch say, is waited for and its values seen); SQLite
    has one writer at a time, whose transaction already started before this read."""
    sql = _select(Customer, CUSTOMER_FIELDS, "customer_account")
    if lock and not dialect().one_writer:
        sql += " FOR UPDATE"
    rows = _fetch(sql, [account])
    return _customer(rows[0]) if rows else None


def items_by_item_id(item_ids: Iterable[str]) -> dict[str, Item]:
    wanted = list(dict.fromkeys(item_ids))
    rows = _fetch(_select(Item, ITEM_FIELDS, "item_id", len(wanted)), wanted)
    return {item.item_id: item for item in map(_item, rows)}


def exchange_rate(currency: str) -> Decimal | None:
    rows = _fetch(_select(ExchangeRate, ("rate",), "currency"), [currency])
    return rate(rows[0][0]) if rows else None


@cache
def _reserve_sql() -> str:
    reserved, on_hand = _column(Item, "reserved"), _column(Item, "on_hand")
    return (f"UPDATE {_table(Item)} SET {reserved} = {reserved} + %s, {_column(Item, 'updated')} = %s "
            f"WHERE {_column(Item, 'id')} = %s AND {on_hand} >= {reserved} + %s "
            f"RETURNING {on_hand}, {reserved}, {_column(Item, 'reorder_point')}")


def reserve(pk: int, quantity: int, now: datetime) -> tuple[int, int, int] | None:
    """Reserve quantity of item pk if on hand covers it: (on_hand, reserved, reorder_point) after
    the change, or None (nothing changed) when it does not."""
    rows = _fetch(_reserve_sql(), [quantity, connection.ops.adapt_datetimefield_value(now), pk, quantity])
    return rows[0] if rows else None


def insert_order(order: SalesOrder) -> int:
    """Insert a new order (its sales_id still empty), every field as set on it; returns its key."""
    return insert_instance(order)


@cache
def _set_sales_id_sql() -> str:
    return (f"UPDATE {_table(SalesOrder)} SET {_column(SalesOrder, 'sales_id')} = %s "
            f"WHERE {_column(SalesOrder, 'id')} = %s")


def set_sales_id(pk: int, sales_id: str) -> None:
    run_sql(_set_sales_id_sql(), [sales_id, pk])


def insert_lines(lines: list[SalesOrderLine]) -> None:
    insert_instances(lines)
