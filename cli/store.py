"""`chatbot store copy --to URL`: every row of the configured store (or `--from URL`) into a new, empty database,
e.g. the laptop's SQLite file into the PostgreSQL that several workers will share."""

from __future__ import annotations

import dataclasses
import sys


def register(sub) -> None:
    parser = sub.add_parser("store", help="the conversation store: copy it into another database")
    commands = parser.add_subparsers(dest="store_command", required=True, metavar="STORE_COMMAND")
    copy = commands.add_parser(
        "copy", help="copy every row (conversations, reviews, users, sessions, the conversation key) into a new, "
        "empty database: SQLite into PostgreSQL before scaling out, or back",
    )  # fmt: skip
    copy.add_argument("--to", required=True, help="the target database's URL: postgresql://user@host:5432/dbname "
                      "or sqlite:///file.sqlite3; migrated first, it must have no conversations or users")  # fmt: skip
    copy.add_argument("--from", dest="source", help="the source database's URL (default: [store] of the config)")
    copy.set_defaults(func=lambda args: copy_command(args.to, args.source, config_path=args.config))


def copy_command(to: str, source: str | None = None, *, config_path: str | None = None) -> int:
    """Copy the store; prints the rows copied per table. 1 (and why, on stderr) when either database cannot be
    opened or the target is not empty."""
    from chatbot.config import AppConfig
    from chatbot.store import Store, StoreError, copy_store

    config = AppConfig.load(config_path)
    stores = [Store(dataclasses.replace(config.store, url=source) if source else config.store),
              Store(dataclasses.replace(config.store, url=to))]  # fmt: skip
    try:
        counts = copy_store(stores[0].warm_up(), stores[1].warm_up())
    except StoreError as exc:
        print(f"chatbot: {exc}", file=sys.stderr)
        return 1
    finally:
        for store in stores:
            store.close()
    for table, n in counts.items():
        print(f"{table}: {n} rows")
    print(f"chatbot: copied {sum(counts.values())} rows; point [store] url (or $CHATBOT_STORE_URL) at the target")
    return 0
