"""The `tfxfer` command line: a thin layer over the public API, with no logic of its own."""

import argparse
import sys

EPILOG = """examples:
  tfxfer inspect MobileNetV2 --weights none
  tfxfer inspect https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5
  tfxfer inspect ./my_saved_model --json
"""


def _inspect(args):
    import tfxfer

    weights = None if args.weights == "none" else args.weights
    extractor = tfxfer.load_extractor(args.source, weights=weights, preprocessor=args.preprocessor,
                                      granularity=args.granularity)
    table = extractor.describe()
    if args.json:
        print(table.reset_index().to_json(orient="records"))
    else:
        print(f"{extractor.source}: {extractor.input_kind} extractor, {extractor.n_blocks} blocks"
              + (f", input {extractor.image_size} in {extractor.value_range}" if extractor.image_size else ""))
        print(table.to_string())


def build_parser():
    """The argument parser of `tfxfer` and its subcommands."""
    parser = argparse.ArgumentParser(prog="tfxfer", description="Transfer learning for TensorFlow and Keras 3.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="show an extractor's blocks", epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    inspect.add_argument("source", help="TF Hub handle, SavedModel folder or .tar.gz, gs:// path, or application name")
    inspect.add_argument("--weights", default="imagenet",
                         help="for keras.applications: imagenet, none, or a weights file (default: imagenet)")
    inspect.add_argument("--preprocessor", help="for BERT-style encoders: the preprocessing SavedModel")
    inspect.add_argument("--granularity", choices=["stage", "cut"], default="stage",
                         help="for Keras models: blocks per named stage or per true cut (default: stage)")
    inspect.add_argument("--json", action="store_true", help="print the table as JSON records")
    inspect.set_defaults(run=_inspect)
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code (0 ok, 1 failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except Exception as error:  # One line for users; the traceback with --debug.
        if args.debug:
            raise
        print(f"tfxfer {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
