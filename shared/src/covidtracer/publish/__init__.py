"""Google's key-server contract, ``POST /v1/publish``: verification certificates, report
types and revision tokens, on the keys and export files COVID Green's upload uses."""
