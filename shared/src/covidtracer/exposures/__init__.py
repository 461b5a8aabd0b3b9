"""Exposure events of interest (DESIGN §2.4, §2.5): events from NCTS, the feed published to
S3/CloudFront, the FCM pushes, and the location-alert callback requests."""
