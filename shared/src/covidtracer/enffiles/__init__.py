"""The Exposure Notification export files (DESIGN §4 "Export"): batching keys into files,
encoding and signing them, storing them in S3, and the listing phones discover them by."""
