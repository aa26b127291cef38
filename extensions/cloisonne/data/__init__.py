"""Research data tooling, run by the operator (its plan additions and S3 helpers also in the hub):
imports core only. Synthetic warehouse, per-project pseudonymised provisioning, per-project S3."""
