from __future__ import annotations

import io
import zipfile
from decimal import Decimal

from core.erp.models import Item, SalesOrder
from core.imports.readers import OLE_MAGIC
from tests.imports.helpers import errors_of, run_import, xlsx_bytes

ITEM_HEADER = ["item_id", "name", "unit_price", "on_hand", "reorder_point"]


def test_xlsx_items_with_real_numbers(writer, erp):
    job = run_import(writer, "items", xlsx_bytes([ITEM_HEADER, ["X-1", "Tisch", 129.9, 12, 3],
                                                  [1001, "Numeric id", 5, 1.0, None]]), fmt="xlsx")
    assert job.successful == 2, errors_of(job)
    assert Item.objects.get(item_id="X-1").unit_price == Decimal("129.90")
    assert Item.objects.get(item_id="1001").on_hand == 1


def test_xlsx_named_sheet_and_missing_sheet(writer, erp):
    content = xlsx_bytes([ITEM_HEADER, ["X-2", "Lampe", 9.5, 0, 0]], sheet="Artikel")
    job = run_import(writer, "items", content, fmt="xlsx", sheet="Artikel")
    assert job.successful == 1
    job = run_import(writer, "items", content, fmt="xlsx", sheet="Nope")
    assert job.status == "failed" and job.last_error.startswith("SHEET_NOT_FOUND")


def test_xlsx_row_errors_use_sheet_row_numbers(writer, erp):
    job = run_import(writer, "items", xlsx_bytes([ITEM_HEADER, ["X-3", "ok", 1, 0, 0], ["X-4", "bad", "abc", 0, 0],
                                                  ["X-5", "frac", 1, 2.5, 0]]), fmt="xlsx")
    assert errors_of(job) == [(3, "unit_price", "INVALID_NUMBER"), (4, "on_hand", "INVALID_NUMBER")]


def test_corrupt_xlsx_fails_clearly(writer, erp):
    job = run_import(writer, "items", b"PK\x03\x04 this is not really a zip", fmt="xlsx")
    assert job.status == "failed" and job.last_error.startswith("INVALID_FILE")


def test_password_protected_workbook_is_refused(writer, erp):
    job = run_import(writer, "items", OLE_MAGIC + b"\x00" * 600, fmt="xlsx")
    assert job.status == "failed" and job.last_error.startswith("ENCRYPTED_FILE")


def test_zip_bomb_is_refused_before_parsing(writer, erp):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (20 * 1024 * 1024))
    job = run_import(writer, "items", buffer.getvalue(), fmt="xlsx")
    assert job.status == "failed" and job.last_error.startswith("ZIP_BOMB")


def test_file_over_the_limit_is_refused(settings, writer, erp):
    import pytest

    from core.errors import ToolError

    settings.IMPORT_MAX_FILE_BYTES = 2048
    with pytest.raises(ToolError) as exc:
        run_import(writer, "customers", "customer_account,name,currency\n" + "C,x,EUR\n" * 400)
    assert exc.value.code == "FILE_TOO_LARGE"


ORDER_HEADER = "order_ref,customer_account,item_id,quantity,unit_price\n"


def test_salesorder_lines_group_into_orders_and_reserve_stock(writer, erp):
    csv = (ORDER_HEADER + "PO-1,CUST-001,ITEM-001,2,\nPO-1,CUST-001,ITEM-002,1,400.00\n"
           + "PO-2,CUST-002,ITEM-001,3,\n")
    job = run_import(writer, "salesorders", csv, batch_size=1)
    assert (job.successful, job.failed) == (3, 0), errors_of(job)
    po1 = SalesOrder.objects.get(customer_ref="PO-1")
    assert po1.lines.count() == 2 and po1.total_amount == Decimal("600.00")
    erp["chair"].refresh_from_db()
    assert erp["chair"].reserved == 5


def test_an_order_that_cannot_be_created_fails_all_its_lines(writer, erp):
    csv = (ORDER_HEADER + "PO-3,CUST-001,ITEM-001,1,\nPO-3,CUST-001,ITEM-002,6,\n"  # not enough desks
           + "PO-4,NOPE,ITEM-001,1,\nPO-5,CUST-001,ITEM-404,1,\n")
    job = run_import(writer, "salesorders", csv)
    assert errors_of(job) == [(2, "", "INSUFFICIENT_STOCK"), (3, "", "INSUFFICIENT_STOCK"),
                              (4, "customer_account", "CUST_NOT_FOUND"), (5, "item_id", "ITEM_NOT_FOUND")]
    assert not SalesOrder.objects.exists()
    erp["chair"].refresh_from_db()
    assert erp["chair"].reserved == 0


def test_reimporting_orders_and_split_references_are_refused(writer, erp):
    run_import(writer, "salesorders", ORDER_HEADER + "PO-6,CUST-001,ITEM-001,1,\n")
    job = run_import(writer, "salesorders", ORDER_HEADER + "PO-6,CUST-001,ITEM-001,1,\nPO-7,CUST-001,ITEM-001,1,\n"
                     + "PO-8,CUST-001,ITEM-001,1,\nPO-7,CUST-001,ITEM-001,1,\n")
    assert errors_of(job) == [(2, "order_ref", "ORDER_ALREADY_EXISTS"), (5, "order_ref", "DUPLICATE_KEY")]
    assert SalesOrder.objects.filter(customer_ref="PO-6").count() == 1
