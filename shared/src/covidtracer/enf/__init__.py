"""The Exposure Notification key server: registration, codes, key upload (DESIGN §4)."""
