"""``churnwatch console``: serve the account managers' pages and the JSON API (streams/console)."""

from __future__ import annotations

import argparse

from streams.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8088, env CHURNWATCH_CONSOLE_PORT)")
    parser.add_argument("--bind", default=None, metavar="ADDRESS",
                        help="address to listen on (default 127.0.0.1, env CHURNWATCH_CONSOLE_BIND; 0.0.0.0 exposes it)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from streams.console.app import create_app

    from streams.local import check_listen_address

    settings = settings.with_(console_port=args.port, console_bind=args.bind)
    check_listen_address(settings.console_bind, settings.console_port, "the console", "--port, CHURNWATCH_CONSOLE_PORT")
    app = create_app(settings)
    print(f"churnwatch console on http://{settings.console_bind}:{settings.console_port}/ "
          f"(API /api/v1, OpenAPI /openapi.json{', bearer token required' if settings.console_token else ''})", flush=True)
    uvicorn.run(app, host=settings.console_bind, port=settings.console_port, log_level=settings.log_level.lower(),
                access_log=False)
    return 0
