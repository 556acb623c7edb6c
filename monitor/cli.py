"""The ``finmon`` command: one entry point, one small handler per subcommand."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from models.errors import ModelError
from monitor.errors import MonitorError
from monitor.settings import Settings, load_settings
from streams.errors import StreamError

log = logging.getLogger("finmon")
Handler = Callable[[argparse.Namespace, Settings], int]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def existing_file(value: str) -> Path:
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: is a folder, give a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return path


def existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: no such folder")
    return path


def output_file(value: str) -> Path:
    """A file to write: its folder must exist, and it must not be a folder itself."""
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: is a folder, give a file name")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: folder {path.parent} does not exist")
    return path


def _number(value: str, kind: type[int] | type[float]) -> float:
    try:
        return kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not {'an integer' if kind is int else 'a number'}") from None


def positive_number(value: str) -> float:
    number = _number(value, float)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{value} must be above 0")
    return number


def positive_int(value: str) -> int:
    number = int(_number(value, int))
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def non_negative_int(value: str) -> int:
    number = int(_number(value, int))
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 or more")
    return number


def fraction(value: str) -> float:
    number = _number(value, float)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1")
    return number


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("finmon")
    except PackageNotFoundError:
        return "unknown (not installed)"


def unknown_global_flags(parser: Parser, argv: Sequence[str]) -> list[str]:
    """Flags before the subcommand that the finmon command itself does not know."""
    known = {o for action in parser._actions for o in action.option_strings}
    unknown = []
    for token in argv:
        if not token.startswith("-"):
            break
        if token.split("=", 1)[0] not in known:
            unknown.append(token)
    return unknown


def build_parser() -> Parser:
    from monitor import commands

    parser = Parser(prog="finmon", description="Streaming monitor of financial news sentiment.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.add_argument("--version", action="version", version=f"finmon {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for register in commands.REGISTRY:
        register(sub)
    return parser


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("root", "onnxruntime", "aiokafka", "kafka", "urllib3"):
        logging.getLogger(noisy if noisy != "root" else None).setLevel(
            logging.WARNING if not verbose else logging.DEBUG
        )
    # kafka-python logs a failed bootstrap itself; finmon reports it in one line of its own
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    logging.getLogger("finmon").setLevel(logging.DEBUG if verbose else logging.INFO)
    for ours in ("models", "streams", "alerts", "monitor"):
        logging.getLogger(ours).setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    unknown = unknown_global_flags(parser, argv)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    handler: Handler = args.handler
    try:
        return handler(args, load_settings())
    except (MonitorError, ModelError, StreamError) as exc:
        print(f"finmon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
