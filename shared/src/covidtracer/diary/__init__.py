"""Diary uploads (DESIGN §2.3): ``POST /v2/user/location-history``, forwarded to NCTS."""
