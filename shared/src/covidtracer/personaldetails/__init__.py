"""The ``PersonalDetails`` item and change contract: the details API writes, the export reads."""
