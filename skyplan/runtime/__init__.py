"""The node runtime: sync, start, status, logs, exec and stop on a node, here or over SSH."""
