"""``finmon config show``: the effective settings, secrets masked; ``finmon config acls``: the Kafka ACLs they need."""

from __future__ import annotations

import argparse

from monitor.errors import UsageError
from monitor.settings import Settings, env_file, render


def show(args: argparse.Namespace, settings: Settings) -> int:
    print(render(settings))
    return 0


def env(args: argparse.Namespace, settings: Settings) -> int:
    values = {}
    for item in args.set or []:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("FINMON_"):
            raise UsageError(f"--set {item}: give FINMON_SECTION__FIELD=VALUE")
        values[name] = value
    print(env_file(values), end="")
    return 0


def acls(args: argparse.Namespace, settings: Settings) -> int:
    from streams.cluster.acls import ingest_grants, kafka_acls_commands, required_grants

    needs = ingest_grants if args.ingest else required_grants
    grants = needs(settings.topics, settings.stream, create_topics=not args.no_create)
    who = "finmon ingest" if args.ingest else "finmon"
    print(f"# Kafka ACLs for {who} (topics and application id from the current settings).")
    print("# BOOTSTRAP: the cluster; ADMIN_CONFIG: client properties of a principal allowed to alter ACLs.")
    print("\n".join(kafka_acls_commands(grants, args.principal)))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("config", help="inspect the effective settings")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    actions.add_parser("show", help="print the effective settings (secrets masked)").set_defaults(handler=show)
    example = actions.add_parser("env", help="print every setting as an env file, with descriptions and defaults")
    example.add_argument("--set", action="append", metavar="NAME=VALUE", help="a value of this deployment")
    example.set_defaults(handler=env)
    acl = actions.add_parser("acls", help="print the kafka-acls.sh commands that grant finmon what it needs")
    acl.add_argument("--principal", default="User:finmon", help="the principal finmon runs as (User:NAME)")
    acl.add_argument("--no-create", action="store_true", help="an operator creates the pipeline's topics")
    acl.add_argument(
        "--ingest", action="store_true", help="the ACLs of finmon ingest (run it as a principal of its own)"
    )
    acl.set_defaults(handler=acls)


REGISTER = [register]
