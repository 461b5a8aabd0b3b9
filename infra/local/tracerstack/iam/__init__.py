"""IAM in the local stack and the tests: every service's AWS calls are signed with its own
execution role's credentials and refused where its packaged policy would refuse them in AWS.

- ``roles``: each service's role, from the statements ``make package`` writes, resolved to
  the local stack's ARNs; credentials from STS ``AssumeRole``.
- ``gate``: WSGI middleware in front of moto that authenticates those credentials and
  authorizes each request (``requests``: what IAM checks for an operation; ``policy``: IAM's
  evaluation logic).
"""
