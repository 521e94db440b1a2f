"""GCP: catalog mapping (catalog.py, hosts.py), error classifier (classify.py) and the Cloud (cloud.py).

The Pulumi program is ``stacks/gcp/program.py``; nothing here imports Pulumi at import time.
"""
