from __future__ import annotations

from django.urls import include, path

from dashboard import audit, batches, imports, records, roi, vendor, views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("overview/", views.overview, name="overview"),
    path("customers/", records.customer_list, name="customers"),
    path("customers/<path:customer_account>/", records.customer_detail, name="customer"),
    path("items/", records.item_list, name="items"),
    path("items/<path:item_id>/", records.item_detail, name="item"),
    path("sales-orders/", records.order_list, name="salesorders"),
    path("sales-orders/<path:sales_id>/", records.order_detail, name="salesorder"),
    path("audit/", audit.audit_log, name="audit"),
    path("batches/", batches.batch_list, name="batches"),
    path("batches/new/", batches.batch_new, name="batch_new"),
    path("batches/<str:batch_id>/", batches.batch_detail, name="batch_detail"),
    path("imports/", imports.import_list, name="imports"),
    path("imports/new/", imports.import_new, name="import_new"),
    path("imports/new/mapping/", imports.import_mapping, name="import_mapping"),
    path("imports/templates/<str:type_name>.<str:fmt>", imports.import_template, name="import_template"),
    path("imports/<str:job_id>/", imports.import_detail, name="import_detail"),
    path("imports/<str:job_id>/cancel/", imports.import_cancel, name="import_cancel"),
    path("imports/<str:job_id>/resume/", imports.import_resume, name="import_resume"),
    path("imports/<str:job_id>/import-now/", imports.import_now, name="import_now"),
    path("imports/<str:job_id>/failed-rows.<str:fmt>", imports.import_failed_rows, name="import_failed_rows"),
    path("", include("dashboard.webhook_urls")),  # /webhooks/… (dashboard/webhook_urls.py)
    path("roi/", roi.roi_report, name="roi"),
    path("roi/export.csv", roi.roi_export_csv, name="roi_csv"),
    path("roi/export.xlsx", roi.roi_export_xlsx, name="roi_xlsx"),
    path("roi/operations/", roi.roi_operations, name="roi_operations"),
    path("roi/baselines/", roi.baseline_list, name="roi_baselines"),
    path("roi/baselines/new/", roi.baseline_new, name="roi_baseline_new"),
    path("roi/baselines/<int:pk>/", roi.baseline_edit, name="roi_baseline_edit"),
    path("tools/", views.tools, name="tools"),
    path("vendor/plotly-<str:version>.min.js", vendor.plotly_js, name="plotly_js"),
]
