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
    parser.add_argument("--workers", type=int, help="processes on the port, each with its own model, on one store "
                        "(default: [server] workers, 1)")  # fmt: skip
    parser.set_defaults(func=lambda args: serve(args.config, args.host, args.port, args.workers))

    users = subparsers.add_parser("users", help="agent and admin accounts for the web app")
    sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add an account (the password is asked for, or read from stdin)")
    add.add_argument("name", help="user name")
    add.add_argument("--role", choices=("agent", "admin"), required=True, help="agent: console; admin: everything")
    add.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    add.set_defaults(func=lambda args: users_add(args.config, args.name, args.role, args.password_stdin))
    listing = sub.add_parser("list", help="list the accounts")
    listing.set_defaults(func=lambda args: users_list(args.config))


def serve(config_file: str | None = None, host: str | None = None, port: int | None = None,
          workers: int | None = None) -> int:  # fmt: skip
    """Serve the app with uvicorn: one process (loading the engine here, building the demo FAQ on first start), or
    `workers` processes on the port, each loading its own engine over the one store and knowledge base."""
    import logging

    import uvicorn

    from chatbot.config import AppConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = AppConfig.load(config_file)
    host = host or config.server.host
    port = port if port is not None else config.server.port
    workers = workers if workers is not None else config.server.workers
    if workers < 1:
        print("chatbot: --workers must be >= 1", file=sys.stderr)
        return 2
    print(f"chatbot: customer chat  http://{host}:{port}/\n"
          f"chatbot: agent console  http://{host}:{port}/agent  (accounts: chatbot users add NAME --role agent)\n"
          f"chatbot: admin page     http://{host}:{port}/admin\n"
          f"chatbot: OpenAI API     http://{host}:{port}/v1", file=sys.stderr, flush=True)  # fmt: skip
    if workers > 1:
        return _serve_workers(config, config_file, host, port, workers)
    from chatbot.engine import Engine
    from ui.app import create_app

    print("chatbot: loading the model and the knowledge base…", file=sys.stderr, flush=True)
    engine = Engine.from_config(config).warm_up()
    app = create_app(config, engine, follow=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
    finally:
        engine.close()
    return 0


def _serve_workers(config, config_file: str | None, host: str, port: int, workers: int) -> int:
    """Check what would stop every worker (Gradio's upload folder inside the data folder), prepare the shared state
    once (store migrations; the demo FAQ when the knowledge base is empty, so the workers do not each build it), then
    let uvicorn run `workers` processes of `ui.asgi:worker_app`."""
    import os
    from types import SimpleNamespace

    import uvicorn

    from chatbot.settings import chatbot_home
    from chatbot.store import Store
    from knowledge_base.kb import KnowledgeBase, demo_faq_path
    from ui.app import blocked_paths
    from ui.asgi import CONFIG_ENV

    store = Store(config.store)
    kb = KnowledgeBase(chatbot_home() / "kb", config.kb)
    try:  # what would stop every worker at start (uvicorn would restart them over and over): say it once, here
        blocked_paths(config, SimpleNamespace(store=store, kb=kb))
    except ValueError as exc:
        print(f"chatbot: {exc}", file=sys.stderr)
        return 2
    store.warm_up().close()
    if not any(v.current for v in kb.versions()):
        print("chatbot: the knowledge base is empty: building the demo FAQ", file=sys.stderr, flush=True)
        kb.build(demo_faq_path())
    if config_file:
        os.environ[CONFIG_ENV] = os.path.abspath(config_file)
    print(f"chatbot: {workers} workers, each loading the model and the knowledge base…\n"
          "chatbot: uvicorn spreads connections over the workers: right for /v1 and the JSON APIs. The browser pages "
          "(Gradio) need every request of a page on one worker: for them run one `chatbot serve --port P` per "
          "worker behind a sticky load balancer (README, \"Scaling out\")", file=sys.stderr, flush=True)  # fmt: skip
    uvicorn.run("ui.asgi:worker_app", factory=True, host=host, port=port, workers=workers, log_level="info",
                timeout_graceful_shutdown=5)  # fmt: skip
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
