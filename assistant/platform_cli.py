"""``yinling platform serve | add-home | add-staff``: the command line of the reference community platform.

Kept apart from :mod:`assistant.platform_server` so that building the ``yinling`` argument parser does
not import FastAPI and uvicorn (``yinling parse`` must start in well under a second).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from assistant.config import Config
from assistant.errors import UsageError

logger = logging.getLogger(__name__)


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
                 parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add ``platform serve``, ``platform add-home`` and ``platform add-staff`` to the ``yinling`` commands.

    Handlers are called as ``handler(args, cfg, state_dir) -> exit code``; ``state_dir`` (``--home``)
    holds ``platform.db`` unless ``--db URL`` names another database.
    """
    platform = subparsers.add_parser("platform", parents=list(parents), help="run the reference community platform",
                                     description="The community platform: orders and alerts API and staff console.")
    actions = platform.add_subparsers(dest="platform_action", metavar="ACTION", required=True)
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--db", metavar="URL", help="SQLAlchemy database URL (default: SQLite platform.db in --home)")
    serve = actions.add_parser("serve", parents=[*parents, database], help="serve the API and the staff console",
                               description="Serve CONTRACTS.md §4 and the staff console; prints a staff token "
                                           "on first start.")
    serve.add_argument("--port", type=int, default=8321, help="TCP port (default 8321)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.set_defaults(handler=_cmd_serve)
    home = actions.add_parser("add-home", parents=[*parents, database], help="register a home, print its token",
                              description="Register a home and print a new bearer token for it as the only line.")
    home.add_argument("home_id", metavar="HOME_ID", help="the home's [home] id")
    home.set_defaults(handler=_cmd_add_home)
    staff = actions.add_parser("add-staff", parents=[*parents, database], help="print a new staff token",
                               description="Issue a staff token (console, status changes); prints it as the only line.")
    staff.add_argument("--name", default="staff", help="who the token is for")
    staff.set_defaults(handler=_cmd_add_staff)


def _cmd_serve(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling platform serve --port N [--host H] [--db URL]``."""
    if not 1 <= args.port <= 65535:
        raise UsageError(f"yinling platform serve: --port {args.port} is not a TCP port (1..65535).")
    import uvicorn

    from assistant.platform_server import create_app, listen
    from assistant.platform_store import PlatformStore

    store = PlatformStore.in_dir(state_dir, args.db)
    if not store.has_staff():
        print(f"staff token (员工令牌): {store.add_staff()}", flush=True)
        logger.warning("a staff token was created; it is shown only once (on stdout)")
    sock = listen(args.host, args.port)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"console (服务台): http://{host}:{args.port}/", flush=True)
    # the console polls every 2 s: one access-log line per request only when debugging
    config = uvicorn.Config(create_app(store), log_level=cfg.logging.level.lower(), timeout_graceful_shutdown=3,
                            access_log=cfg.logging.level == "DEBUG")
    uvicorn.Server(config).run(sockets=[sock])
    store.close()
    return 0


def _cmd_add_home(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling platform add-home HOME_ID``: the token is the only stdout line."""
    from assistant.platform_models import HOME_ID_PATTERN
    from assistant.platform_store import PlatformStore

    if not re.fullmatch(HOME_ID_PATTERN, args.home_id):
        raise UsageError(f"yinling platform add-home: {args.home_id!r} is not a home id "
                         "(1..64 characters without '/', '+', '#' or spaces).")
    store = PlatformStore.in_dir(state_dir, args.db)
    print(store.add_home(args.home_id))
    sys.stdout.flush()
    store.close()
    return 0


def _cmd_add_staff(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling platform add-staff [--name NAME]``: the token is the only stdout line."""
    from assistant.platform_store import PlatformStore

    store = PlatformStore.in_dir(state_dir, args.db)
    print(store.add_staff(args.name))
    sys.stdout.flush()
    store.close()
    return 0
