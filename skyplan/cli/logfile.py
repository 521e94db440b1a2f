"""skyplan's log file (``<SKYPLAN_HOME>/logs/skyplan.log``) for the library's records.

The library logs through ``logging`` (``skyplan.*`` loggers) and never configures
it; the CLI attaches one file handler here, so what people see shortened (an
attempt's first sentence) is in the log in full. Internal errors' tracebacks go
to the same file (``cli/errors.py``).
"""

from __future__ import annotations

import logging

_handler: logging.Handler | None = None


def attach(level: int = logging.INFO) -> logging.Handler | None:
    """Send ``skyplan.*`` records at ``level`` and above to the log file (once per
    process and home). Returns the handler, or None when the file cannot be opened:
    a log must never stop a command."""
    global _handler
    from skyplan import home

    try:
        path = home.private_file(home.log_file())
    except Exception:  # noqa: BLE001 - no log is better than a failed command
        return None
    logger = logging.getLogger("skyplan")
    if _handler is not None and getattr(_handler, "baseFilename", None) == str(path.absolute()):
        return _handler
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler.close()
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    _handler = handler
    return handler
