"""`chatbot serve` (the web app) and `chatbot users add|list` (agent and admin accounts)."""

from __future__ import annotations

import getpass
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="the web app: customer chat at /, agent console at /agent, admin at /admin, API at /v1"
    )
    parser.add_argument("--host", help="address to listen on (default: [server] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: [server] port, 8000)")
    parser.set_defaults(func=lambda args: serve(args.config, args.host, args.port))

    users = subparsers.add_parser("users", help="agent and admin accounts for the web app")
    sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add an account (the password is asked for, or read from stdin)")
    add.add_argument("name", help="user name")
    add.add_argument("--role", choices=("agent", "admin"), required=True, help="agent: console; admin: everything")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.set_defaults(func=lambda args: users_add(args.config, args.name, args.role, args.password_stdin))
    listing = sub.add_parser("list", help="list the accounts")
    listing.set_defaults(func=lambda args: users_list(args.config))


def serve(config_file: str | None = None, host: str | None = None, port: int | None = None) -> int:
    """Load the engine (building the demo FAQ index on first start), then serve the app with uvicorn."""
    import logging

    import uvicorn

    from chatbot.adapter_watch import ActiveAdapterWatcher
    from chatbot.config import AppConfig
    from chatbot.engine import Engine
    from ui.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = AppConfig.load(config_file)
    host = host or config.server.host
    port = port if port is not None else config.server.port
    print("chatbot: loading the model and the knowledge base…", file=sys.stderr, flush=True)
    engine = Engine.from_config(config).warm_up()
    watcher = ActiveAdapterWatcher(engine).start() if config.model.adapter is None else None
    app = create_app(config, engine)
    print(f"chatbot: customer chat  http://{host}:{port}/\n"
          f"chatbot: agent console  http://{host}:{port}/agent  (accounts: chatbot users add NAME --role agent)\n"
          f"chatbot: admin page     http://{host}:{port}/admin\n"
          f"chatbot: OpenAI API     http://{host}:{port}/v1", file=sys.stderr, flush=True)  # fmt: skip
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
    finally:
        if watcher is not None:
            watcher.stop()
        engine.close()
    return 0


def _open_store(config_file: str | None):
    from chatbot.config import AppConfig
    from chatbot.store import Store

    return Store(AppConfig.load(config_file).store).warm_up()


def users_add(config_file: str | None, name: str, role: str, password_stdin: bool = False) -> int:
    """Add an account; the password comes from a prompt (twice) or the first line of stdin."""
    from chatbot.store import StoreError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            print("chatbot: the passwords differ; nothing was changed", file=sys.stderr)
            return 1
    store = _open_store(config_file)
    try:
        user = store.add_user(name, role, password)  # type: ignore[arg-type]
    except StoreError as exc:
        print(f"chatbot: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"added {user.role} {user.name}")
    return 0


def users_list(config_file: str | None) -> int:
    """Print the accounts: name, role, creation date."""
    import datetime as dt

    store = _open_store(config_file)
    try:
        users = store.users()
    finally:
        store.close()
    if not users:
        print("no accounts yet: chatbot users add NAME --role agent|admin")
    for user in users:
        created = dt.datetime.fromtimestamp(user.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(f"{user.name:<20} {user.role:<6} {created}")
    return 0
