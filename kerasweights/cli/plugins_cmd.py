"""``kerasweights plugins``: list the installed plugins."""

import json

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "plugins",
        help="list the installed plugins",
        description=(
            "List every plugin found through the entry-point group "
            "`kerasweights.plugins`, built-in or installed with pip."
        ),
    )
    parser.add_argument(
        "--kind",
        metavar="K",
        help="only plugins of this kind (initializer, recurrent, callback, "
        "regularizer, ...)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list instead"
    )
    return parser


def run(args):
    import kerasweights

    records = kerasweights.plugins()
    if args.kind is not None:
        from kerasweights.cli import choice_error
        from kerasweights.registry import KNOWN_KINDS

        kinds = sorted(set(KNOWN_KINDS) | {r.kind for r in records})
        if args.kind not in kinds:
            raise choice_error("--kind", args.kind, kinds)
        records = [r for r in records if r.kind == args.kind]
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        # Piped output is read whole: never cut a name to fit 80 columns.
        console = Console(width=200)
    table = Table(title=f"{len(records)} kerasweights plugins")
    for column in ("kind", "name", "registered name", "distribution"):
        table.add_column(column, no_wrap=True)
    table.add_column("summary", overflow="fold", min_width=20)
    for r in records:
        table.add_row(
            r.kind, r.name, r.registered_name, r.distribution, r.summary
        )
    console.print(table)
    return 0
