"""Shell completion of cluster names (``--install-completion``, ``--show-completion``).

The callback runs only when the shell asks for completions, never on a normal
command, so it costs ``plan`` nothing. It reads the state database read-only
with the standard library (no StateDB: that would create the home and the
database on a machine that has neither) and never fails: a completion that
raises would print a traceback into the user's prompt.
"""

from __future__ import annotations


def cluster_names(incomplete: str = "") -> list[str]:
    """Cluster names in the state database that start with ``incomplete``."""
    import os
    import sqlite3

    try:
        from skyplan import home

        path = home.home() / "state.db"
        if not os.path.exists(path):
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            rows = conn.execute("SELECT name FROM clusters ORDER BY name").fetchall()
        finally:
            conn.close()
    except Exception:  # noqa: BLE001 - see the module docstring
        return []
    return [name for (name,) in rows if name.startswith(incomplete)]
