"""Google's verification contract on NCTS's codes: ``POST /api/verify`` (code -> token) and
``POST /api/certificate`` (token -> ES256 verification certificate)."""
