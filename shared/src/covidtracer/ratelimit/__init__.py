"""Fixed-window rate limits (DESIGN §8): ``model`` (the rule), ``repository`` (the counters:
DynamoDB and an in-memory twin), ``service`` (``counted(counters, now)`` and
``enforce(counters, checks, now)``: the counters are the deps), ``wiring``."""
