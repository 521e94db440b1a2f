"""The local cloud's Pulumi program: tasks run in sandboxes on this machine."""
