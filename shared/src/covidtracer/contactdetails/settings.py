"""Settings of contact details: none of its own. It reads the ``PersonalDetails`` and
``Users`` tables and the user pool from the details app's settings (``details_settings``,
every problem reported at once), which sign-in shares."""
