"""The app API's domain (DESIGN §2): contact details, diary uploads, location-alert
callbacks, exposure events.

``model`` holds the pure rules, ``repository`` the DynamoDB and S3 adapters, ``service`` the
use cases the routes call.
"""
