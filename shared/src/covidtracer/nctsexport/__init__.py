"""NCTS personal-details export (DESIGN §3): stream → queue → JSON Lines files in S3.

``model`` (rules and the file format), ``service``, ``settings``, ``wiring``; ``stream`` (the
typed view of the table's stream events), ``messages`` (the ``PersonalDataUpdates`` queue's
schema: its producer, the stream handler, and its consumer, the export job, are both this
app's), ``repository`` (SQS, DynamoDB, S3). What it reads is ``covidtracer.personaldetails``.
"""
