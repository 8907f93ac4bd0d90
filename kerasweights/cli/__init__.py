"""The ``kerasweights`` command.

Each subcommand lives in its own module ``kerasweights.cli.<name>_cmd``,
which defines ``add_parser(subparsers)``, optionally ``check(args)``, and
``run(args)`` (returns an exit code). Exit codes follow the contract in the
design: 0 success, 2 bad arguments or bad input (one line naming the value
and what was expected), 1 a failure of the job itself.

Start-up cost: TensorFlow takes seconds to import. Nothing in this package
imports it at module level, in ``add_parser`` or in ``check`` (which
checks the arguments and reads ``--data`` files with NumPy alone); only
``run`` does. So ``--help``, ``--version`` and argument errors answer
without TensorFlow once the ``kerasweights`` package itself is imported
without its start-up (Keras import, plugin discovery): a launcher may put
the package's module in ``sys.modules`` unexecuted
(``importlib.util.module_from_spec``) before importing this one, and
`main` runs the package's start-up just before a command's ``run``. With
a plain ``import kerasweights`` (the console script today), the start-up
has already run and nothing changes. See benchmarks/import_time.py.
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
        sub.set_defaults(_check=getattr(module, "check", None), _run=module.run)
    return parser


def _package():
    """The ``kerasweights`` package with its start-up run.

    A launcher may have imported the package without running its
    ``__init__`` (so that ``--help`` needs no TensorFlow); run it now,
    once, into the same module object. Returns the package.
    """
    package = sys.modules.get("kerasweights")
    if package is None:
        import kerasweights as package
    if "__version__" not in vars(package):
        package.__spec__.loader.exec_module(package)
    return package


def _version():
    """The version, without starting the package when it is deferred."""
    package = sys.modules.get("kerasweights")
    version = vars(package).get("__version__") if package else None
    if version is None:
        import importlib.metadata

        version = importlib.metadata.version("kerasweights")
    return version


def choice_error(flag, value, choices):
    """The error for a flag whose value is not among ``choices``, naming
    them and the closest one."""
    import difflib

    from kerasweights.errors import InvalidArgumentError

    close = difflib.get_close_matches(value, choices, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return InvalidArgumentError(
        f"{flag} must be one of {', '.join(choices)}. Received: "
        f"{flag} {value!r}{hint}"
    )


def _one_line(exc):
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


def main(argv=None):
    """Run the command line; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra:
            # argparse reports these from the top-level parser; name the
            # subcommand whose flags the user was typing.
            prog = parser.prog
            if getattr(args, "command", None):
                prog = f"{prog} {args.command}"
            raise UsageError(
                f"{prog}: unrecognized arguments: {' '.join(extra)} "
                f"(see {prog} --help)"
            )
        if args.version:
            print(f"kerasweights {_version()}")
            return EXIT_OK
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args._check is not None:
            args._check(args)
        _package()
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
