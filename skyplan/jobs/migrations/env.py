"""Alembic's environment for the jobs database.

``skyplan.jobs.store`` runs the upgrade on a connection it opened (and locked
against other migrating processes), passed as ``config.attributes["connection"]``;
without one (the alembic command line, for a developer) the URL comes from
``sqlalchemy.url`` or ``skyplan.jobs.settings``.
"""

from __future__ import annotations

from alembic import context

config = context.config


def _run(connection) -> None:  # noqa: ANN001
    context.configure(connection=connection, target_metadata=None,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from skyplan.jobs.store import _engine

    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from skyplan.jobs.settings import load

        url = load().db_url
    engine = _engine(url)
    with engine.connect().execution_options(skyplan_write=True) as conn:
        _run(conn)
        conn.commit()
    engine.dispose()
