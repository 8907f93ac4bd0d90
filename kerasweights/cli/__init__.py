"""The ``kerasweights`` command.

Each subcommand lives in its own module ``kerasweights.cli.<name>_cmd``,
which defines ``add_parser(subparsers)`` (cheap: no TensorFlow import) and
``run(args)`` (returns an exit code). Exit codes follow the contract in the
design: 0 success, 2 bad arguments or bad input (one line naming the value
and what was expected), 1 a failure of the job itself.
"""

import argparse
import importlib
import sys

__all__ = ["main", "COMMANDS", "UsageError", "EXIT_OK", "EXIT_FAILURE"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# Order here is the order in `kerasweights --help`.
COMMANDS = (
    "plugins",
    "tune",
    "export",
    "verify",
    "compress",
    "fairness",
    "health",
)


class UsageError(Exception):
    """A bad argument found after parsing; reported in one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit 2."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message}")


def build_parser():
    """The top-level parser with every subcommand attached."""
    parser = _Parser(
        prog="kerasweights",
        description=(
            "Initializers, gated recurrent layers, gradient-health callbacks "
            "and fairness penalties for Keras 3, as plugins."
        ),
    )
    parser.add_argument(
        "--version", action="store_true", help="print the version and exit"
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    for name in COMMANDS:
        module = importlib.import_module(f"kerasweights.cli.{name}_cmd")
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def main(argv=None):
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            from kerasweights import __version__

            print(f"kerasweights {__version__}")
            return EXIT_OK
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return int(args._run(args) or EXIT_OK)
    except UsageError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from kerasweights.errors import KerasWeightsError

        if isinstance(exc, KerasWeightsError):
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            if isinstance(exc, (ValueError, TypeError, FileExistsError)):
                return EXIT_USAGE
            return EXIT_FAILURE
        if isinstance(exc, OSError) and exc.filename is not None:
            # A path the user named cannot be read or written (a missing
            # folder, permissions, a file where a folder is needed).
            reason = exc.strerror or type(exc).__name__
            print(f"error: {reason}: {exc.filename!r}", file=sys.stderr)
            return EXIT_USAGE
        raise


def entry_point():
    """Console-script entry: exit with `main`'s code."""
    sys.exit(main())
