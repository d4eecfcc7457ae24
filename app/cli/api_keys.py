"""``kg create-api-key``, ``kg revoke-api-key``, ``kg list-api-keys``: keys managed on
the store itself, not through a server.

This is how the first admin key comes to exist on a server that accepts API keys only
(``KG_AUTH_REQUIRED=true``): whoever can read the settings and reach the key store is
trusted as an admin here. The secret is printed once, alone on stdout (so that
``KEY=$(kg create-api-key ...)`` captures it); everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from app.domain.auth import ApiKey, Principal, Role
from app.domain.errors import BadInputError


def _operator() -> Principal:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        user = "unknown"
    return Principal(subject=f"cli:{user}", roles=frozenset({Role.ADMIN}), kind="local")


async def _with_keys(action: str, args: argparse.Namespace) -> int:
    # imported here, so that `kg --help` and the other commands stay quick to start
    from app.config import load_settings
    from app.container import make_api_key_store
    from app.observability.logging import configure_logging
    from app.security.api_keys import ApiKeys

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_json)  # to stderr: stdout is the secret
    store = make_api_key_store(settings)
    await store.start()
    try:
        keys = ApiKeys(store)
        if action == "create":
            role = Role.parse(args.role)
            if role is None:
                raise BadInputError(f"unknown role {args.role!r}: reader, writer or admin")
            key, secret = await keys.create(args.name, role, _operator())
            print(f"created API key {key.id} ({key.name}, {key.role.value})", file=sys.stderr)
            print("the secret follows, shown this once: store it now", file=sys.stderr)
            print(secret)
        elif action == "revoke":
            key = await keys.revoke(args.id, _operator())
            print(f"revoked API key {key.id} ({key.name}) at {key.revoked_at}", file=sys.stderr)
        else:
            for key in await keys.list(include_revoked=args.all):
                print(_line(key))
    finally:
        await store.close()
    return 0


def _line(key: ApiKey) -> str:
    state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}"
    created = f"{key.created_at:%Y-%m-%dT%H:%M:%SZ}"
    return f"{key.id}\t{key.role.value}\t{state}\t{created}\t{key.created_by}\t{key.name}"


def run_api_keys(action: str, args: argparse.Namespace) -> int:
    return asyncio.run(_with_keys(action, args))


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The three commands, on the ``kg`` parser."""
    create = sub.add_parser("create-api-key", help="create an API key; prints its secret once")
    create.add_argument("--name", required=True, help="what the key is for (1-100 characters)")
    create.add_argument(
        "--role", required=True, choices=[r.value for r in Role], help="what the key may do"
    )
    create.set_defaults(func=lambda a: run_api_keys("create", a))

    revoke = sub.add_parser("revoke-api-key", help="revoke an API key for good")
    revoke.add_argument("id", help="the key's id (16 hex characters)")
    revoke.set_defaults(func=lambda a: run_api_keys("revoke", a))

    listing = sub.add_parser("list-api-keys", help="list API keys (never their secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=lambda a: run_api_keys("list", a))
