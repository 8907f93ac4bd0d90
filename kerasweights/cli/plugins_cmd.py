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

    records = kerasweights.plugins(args.kind)
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(records)} kerasweights plugins")
    for column in ("kind", "name", "registered name", "distribution"):
        table.add_column(column)
    table.add_column("summary", overflow="fold")
    for r in records:
        table.add_row(
            r.kind, r.name, r.registered_name, r.distribution, r.summary
        )
    Console().print(table)
    return 0
