"""The Exposure Notification key server (DESIGN §4): registration, codes, key upload,
export file format, signing and batching."""
