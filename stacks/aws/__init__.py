"""The aws Pulumi program: ``build(request)`` declares one placement (see program.py)."""
