"""Exposure Notification (ENF) domain: key export file format, signing and batching."""
