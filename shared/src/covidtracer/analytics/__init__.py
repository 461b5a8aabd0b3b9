"""The services' own events to the analytics stream, and the daily usage report built from them."""
