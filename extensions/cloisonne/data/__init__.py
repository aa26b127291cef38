"""Research data: synthetic warehouse, per-project pseudonymised provisioning, per-project S3."""
