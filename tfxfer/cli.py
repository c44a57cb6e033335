"""The `tfxfer` command line: a thin layer over the public API, with no logic of its own."""

import argparse
import sys

EPILOG = """examples:
  tfxfer demo
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


def _demo(args):
    from tfxfer.demo import run_demo

    run_demo(per_class=args.per_class, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, seed=args.seed,
             export_root=None if args.no_export else args.root, verbose=True)


def _defaults(function):
    """A function's keyword defaults: the library's defaults are the flags' defaults."""
    import inspect

    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


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

    from tfxfer.demo import run_demo

    demo_defaults = _defaults(run_demo)
    demo = commands.add_parser(
        "demo", help="transfer learning end to end, offline: pretrain on digits 0-4, transfer to 5-9",
        description="Pretrains a small CNN on scikit-learn's digits 0-4, saves it in TF Hub format, loads it back, "
                    "transfers it to digits 5-9 with a few labels per class in every regime, prints a table and "
                    "exports the best model.")
    demo.add_argument("--per-class", type=int, default=demo_defaults["per_class"],
                      help="labelled target examples per class (default: %(default)s)")
    demo.add_argument("--pretrain-epochs", type=int, default=demo_defaults["pretrain_epochs"],
                      help="epochs of pretraining (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=demo_defaults["epochs"],
                      help="epochs on the target task (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=demo_defaults["seed"], help="seed (default: %(default)s)")
    demo.add_argument("--root", default=demo_defaults["export_root"],
                      help="export root (default: %(default)s)")
    demo.add_argument("--no-export", action="store_true", help="do not export the best model")
    demo.set_defaults(run=_demo)
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
