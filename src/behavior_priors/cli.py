"""The ``behavior-priors`` command.

Sub-commands arrive with the pieces they drive (training, evaluation, transfer, plots);
this module only wires them. ``behavior-priors --help`` lists what exists today.
"""

from __future__ import annotations

import argparse
import sys

from behavior_priors import __version__


def _demo(_: argparse.Namespace) -> int:
    # The training loop is not built yet; say so rather than pretend to train.
    print(
        "behavior-priors demo: the demo trains the default agent (hierarchical prior with a\n"
        "shared low level, point mass, go to one of 3 targets) once the training system lands.\n"
        "Until then, `make test` exercises the math core (behavior_priors.ops)."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="behavior-priors",
        description="KL-regularised RL with learned, hierarchical behaviour priors.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="train the default agent on the default task")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
