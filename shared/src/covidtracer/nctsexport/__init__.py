"""NCTS personal-details export (DESIGN §3): stream → queue → JSON Lines files in S3."""
