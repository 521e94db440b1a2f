"""Azure: catalog mapping (catalog.py), error classifier (classify.py) and the Cloud (cloud.py).

The Pulumi program is ``stacks/azure/program.py``; nothing here imports Pulumi at import time.
"""
