"""``skyplan jobs dashboard``: where the jobs controller serves its web page.

The page and its API (``skyplan.jobs.http``) are served by the controller
process itself, on 127.0.0.1; this command starts the controller when it is
not running, prints the page's address (``--json``: ``{"url", "port"}``) and,
at a terminal with a graphical session, opens it in the browser (``--no-open``:
never).
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from skyplan.cli.errors import handle_errors


def _can_open_a_browser() -> bool:
    # Without a graphical session, webbrowser falls back to text browsers (lynx,
    # w3m) that would take over this terminal: print the address only.
    if not sys.stdout.isatty():
        return False
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _check_free(port: int) -> None:
    """InputError when 127.0.0.1:``port`` cannot be listened on (taken, or not allowed)."""
    import socket

    from skyplan.errors import InputError

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the controller binds it
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError as e:
            raise InputError(f"cannot serve the jobs dashboard on 127.0.0.1:{port}: {e.strerror or e}",
                             hint="choose another port with --port (or jobs.dashboard_port), or leave it "
                             "unset for a free one") from e


@handle_errors
def dashboard(
    port: Optional[int] = typer.Option(None, "--port", min=0, max=65535, metavar="PORT",
                                       help="Serve on this port of 127.0.0.1 when the controller starts "
                                       "(default: jobs.dashboard_port, else a free port)."),
    no_open: bool = typer.Option(False, "--no-open", help="Print the address; do not open a browser."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Serve the managed-jobs dashboard (the `jobs queue -a` table, refreshing, with each job's logs)
    on localhost and print its address; starts the jobs controller if it is not running."""
    from skyplan.cli import views
    from skyplan.contract import document
    from skyplan.jobs.daemon import ensure_dashboard, is_running
    from skyplan.jobs.settings import load

    settings = load()
    wanted = port if port is not None else settings.dashboard_port
    if wanted and not is_running(settings.db_url):
        _check_free(wanted)  # at once, rather than a controller that comes up without its page
    served = ensure_dashboard(port)
    url = f"http://127.0.0.1:{served}/"  # (skyplan.jobs.http binds there; this process need not import aiohttp)
    if port and served != port:
        # The controller was running already: its port is fixed for its life.
        typer.echo(f"note: the jobs controller was already serving on port {served}; --port applies when "
                   "it starts", err=True)
    if as_json:
        views.write_json(document(url=url, port=served))
        return
    typer.echo(f"Jobs dashboard: {url}")
    if not no_open and _can_open_a_browser():
        import webbrowser

        webbrowser.open(url, new=2)
