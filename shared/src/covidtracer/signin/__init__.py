"""Passwordless email sign-in (DESIGN §2.1), for the details API and the auth app's triggers.

``model`` (rules), ``service`` (initiate/confirm), ``triggers`` (the Cognito trigger use
cases), ``settings``, ``wiring``; adapters ``repository`` (DynamoDB), ``cognito``,
``messaging`` (SES, SQS), ``events`` (typed trigger events and the post-authentication
queue's schema), ``tokens`` (who is calling).
"""
