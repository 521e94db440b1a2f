"""AWS: catalog mapping (catalog.py, zones.py), error classifier (classify.py) and the Cloud (cloud.py).

The Pulumi program is ``stacks/aws/program.py``; nothing here imports Pulumi at import time.
"""
