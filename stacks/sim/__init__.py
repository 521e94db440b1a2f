"""The sim cloud's Pulumi program: local sandboxes standing in for AWS/GCP/Azure under a scenario."""
