"""The Exposure Notification key server's keys (DESIGN §4): device registration, upload
codes and tokens, key upload, metrics, call-backs, the documents phones read, retention,
and the ENF schema's migrations."""
