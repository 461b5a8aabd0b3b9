"""Fixed-window rate limits on an atomic DynamoDB counter (``RateLimits``, key ``bucket``)."""
