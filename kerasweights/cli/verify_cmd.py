"""``kerasweights verify DIR``: recheck an export's weight checksums."""

import json

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "verify",
        help="recheck the weight checksums of a kerasweights export",
        description=(
            "Recompute the SHA-256 of every variable stored in the "
            "SavedModel in DIR, and of every file of the export, and compare "
            "them with what `kerasweights export` recorded. Exit 0 when all "
            "match, 1 naming each changed variable or file, 2 when DIR is "
            "not a kerasweights export."
        ),
    )
    parser.add_argument("directory", metavar="DIR", help="an export folder")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON report on stdout"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing on success"
    )
    return parser


def run(args):
    import sys

    from kerasweights.export.integrity import _few
    from kerasweights.export.integrity import verify_export

    report = verify_export(args.directory)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif report.ok and not args.quiet:
        print(
            f"OK {report.directory}: {report.variables_checked} stored "
            f"variables and {report.files_checked} files match their "
            f"recorded SHA-256 (weights {report.overall[:16]})"
        )
    if report.ok:
        return 0
    parts = []
    if report.changed_variables:
        parts.append("changed variables " + _few(report.changed_variables))
    parts.extend(report.problems)
    print(
        f"error: the export {report.directory} does not match its recorded "
        "checksums: " + "; ".join(parts),
        file=sys.stderr,
    )
    return 1
