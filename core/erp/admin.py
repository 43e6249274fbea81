from __future__ import annotations

from django.contrib import admin

from core.erp.models import Customer, ExchangeRate, Invoice, Item, Payment, SalesOrder, SalesOrderLine


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("customer_account", "name", "currency", "credit_limit", "balance", "segment", "blocked")
    list_filter = ("currency", "segment", "blocked")
    search_fields = ("customer_account", "name")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("item_id", "name", "unit_price", "on_hand", "reserved", "reorder_point")
    search_fields = ("item_id", "name")


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("currency", "rate", "updated")


class LineInline(admin.TabularInline):
    model = SalesOrderLine
    extra = 0
    raw_id_fields = ("item",)


@admin.register(SalesOrder)
class SalesOrderAdmin(admin.ModelAdmin):
    list_display = ("sales_id", "customer", "status", "total_amount", "currency", "created")
    list_filter = ("status", "currency")
    search_fields = ("sales_id", "customer__customer_account", "customer_ref")
    raw_id_fields = ("customer",)
    inlines = [LineInline]


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ("invoice_id", "sales_order", "customer", "amount", "paid_amount", "status", "due_date")
    list_filter = ("status", "currency")
    search_fields = ("invoice_id", "customer__customer_account")
    raw_id_fields = ("sales_order", "customer")


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("payment_id", "customer", "invoice", "amount", "currency", "created")
    search_fields = ("payment_id", "customer__customer_account", "reference")
    raw_id_fields = ("customer", "invoice")
