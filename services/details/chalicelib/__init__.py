"""The details app's capabilities, one Chalice blueprint each (registered in ``app.py``)."""
