"""``finmon config show``: the effective settings, secrets masked."""

from __future__ import annotations

import argparse

from monitor.settings import Settings, render


def show(args: argparse.Namespace, settings: Settings) -> int:
    print(render(settings))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("config", help="inspect the effective settings")
    actions = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    actions.add_parser("show", help="print the effective settings (secrets masked)").set_defaults(handler=show)


REGISTER = [register]
