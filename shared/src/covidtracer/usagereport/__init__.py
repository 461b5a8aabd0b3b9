"""The daily usage report (the export app's ``usage_report`` job) from the analytics events."""
