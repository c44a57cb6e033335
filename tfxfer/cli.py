"""The `tfxfer` command line: a thin layer over the public API, with no logic of its own.

Flags take their defaults from the library's signatures, so the command line and the API never disagree. Errors are
one line on stderr with exit code 1 (2 for usage errors); `--debug` shows the traceback.
"""

import argparse
import inspect
import json
import os
import sys

EXAMPLES = {
    "demo": "tfxfer demo\n  tfxfer demo --per-class 10 --no-export",
    "inspect": "tfxfer inspect MobileNetV2 --weights none\n"
               "  tfxfer inspect https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5 --json",
    "train": "tfxfer train hymenoptera_data --extractor ./mobilenet_v2_feature_vector --export ants_bees\n"
             "  tfxfer train reviews.csv --extractor ./glove --text-column review --regime feature-extraction",
    "tune": "tfxfer tune hymenoptera_data --extractor MobileNetV2 --weights mnv2.weights.h5 --trials 20 --dir runs\n"
            "  tfxfer tune ... --chief 127.0.0.1:8470       # in one process\n"
            "  tfxfer tune ... --worker 127.0.0.1:8470 --worker-id 0   # in each worker",
    "export": "tfxfer export hymenoptera_data --search runs/search --name ants_bees",
    "predict": "tfxfer predict saved_models/ants_bees photo1.jpg photo2.png\n"
               "  tfxfer predict saved_models/spam messages.csv --text-column text --json",
}


def _defaults(function):
    """A function's keyword defaults: the library's defaults are the flags' defaults."""
    return {name: p.default for name, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _print_table(table, args):
    if args.json:
        print(table.to_json(orient="records", default_handler=str))
    elif not args.quiet:
        print(table.to_string(index=False))


def _extractor_options(args):
    weights = None if args.weights == "none" else args.weights
    return {"weights": weights, "preprocessor": args.preprocessor}


def _load_data(args, extractor):
    import tfxfer

    common = {"validation_split": args.validation_split, "seed": args.seed, "batch_size": args.batch_size,
              "on_bad": args.on_bad, "label_column": args.label_column}
    if extractor.input_kind == "text":
        data = tfxfer.load_text(args.data, text_column=args.text_column, **common)
    else:
        data = tfxfer.load_images(args.data, extractor=extractor, augment=args.augment, **common)
    if not args.quiet and not args.json:
        print(data.summary())
    return data


def _inspect(args):
    import tfxfer

    extractor = tfxfer.load_extractor(args.source, granularity=args.granularity, **_extractor_options(args))
    table = extractor.describe().reset_index()
    if not args.json and not args.quiet:
        print(f"{extractor.source}: {extractor.input_kind} extractor, {extractor.n_blocks} blocks"
              + (f", input {extractor.image_size} in {extractor.value_range}" if extractor.image_size else ""))
    _print_table(table, args)


def _head(args):
    import tfxfer

    return tfxfer.Head(hidden_units=tuple(args.hidden_units), dropout=args.dropout, l2=args.l2)


def _train(args):
    import pandas as pd

    import tfxfer

    extractor = tfxfer.load_extractor(args.extractor, **_extractor_options(args))
    data = _load_data(args, extractor)
    model = tfxfer.TransferModel(
        extractor, regime=args.regime, freeze_blocks=args.freeze, head=_head(args), learning_rate=args.learning_rate,
        fine_tune_learning_rate=args.fine_tune_learning_rate, warmup_epochs=args.warmup_epochs, epochs=args.epochs,
        patience=args.patience, cache=not args.no_cache, seed=args.seed,
        verbose=0 if (args.quiet or args.json) else "auto",
    ).fit(data)
    row = {"regime": args.regime, "frozen_blocks": model.frozen_blocks_, "trainable_params": model.trainable_params_,
           "epochs": len(model.history_["loss"]), "seconds": round(model.fit_seconds_, 1)}
    row.update({k: round(v[-1], 4) for k, v in model.history_.items() if k.startswith("val_")})
    if args.export:
        row["export"] = str(tfxfer.export(model, args.export, root=args.root, data_summary=data,
                                          models_config=args.models_config))
    if args.report:
        row["report"] = str(tfxfer.write_report(model, data, args.report, export_path=row.get("export")))
    _print_table(pd.DataFrame([row]), args)


def _space(args):
    from tfxfer.search import SearchSpace

    options = {}
    if args.freeze_choices:
        options["frozen_blocks"] = args.freeze_choices
    return SearchSpace(**options)


def _distribution(args):
    """Keras Tuner's chief/worker mode is driven by three environment variables; the flags set them."""
    address = args.chief or args.worker
    if address:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise SystemExit(f"tfxfer tune: error: expected HOST:PORT, got {address!r}")
        os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"] = host, port
        os.environ["KERASTUNER_TUNER_ID"] = "chief" if args.chief else f"tuner{args.worker_id}"


def _tune(args):
    import tfxfer

    _distribution(args)
    extractor = tfxfer.load_extractor(args.extractor, **_extractor_options(args))
    data = _load_data(args, extractor)
    directory, project = os.path.split(os.path.normpath(args.dir))
    search = tfxfer.TransferSearch(extractor, space=_space(args), tuner=args.tuner, max_trials=args.trials,
                                   epochs=args.epochs, patience=args.patience, directory=directory or ".",
                                   project_name=project, overwrite=args.overwrite, seed=args.seed,
                                   cache=not args.no_cache, worker_timeout=args.worker_timeout,
                                   verbose=0 if (args.quiet or args.json) else 1)
    table = search.search(data)
    _print_table(table, args)
    if args.export and os.environ.get("KERASTUNER_TUNER_ID", "chief").startswith("chief"):
        fitted = search.best_model(data)
        path = tfxfer.export(fitted, args.export, root=args.root, data_summary=data, models_config=args.models_config)
        if not args.quiet:
            print(f"best trial retrained and exported to {path}", file=sys.stderr if args.json else sys.stdout)


def _export(args):
    import tfxfer

    settings_path = os.path.join(args.search, "tfxfer_search.json")
    if not os.path.isfile(settings_path):
        raise FileNotFoundError(f"{args.search} is not a tfxfer search folder (no tfxfer_search.json); pass the "
                                "--dir of a `tfxfer tune` run.")
    with open(settings_path) as file:
        settings = json.load(file)
    extractor = tfxfer.load_extractor(settings["extractor"], **_extractor_options(args))
    data = _load_data(args, extractor)
    directory, project = os.path.split(os.path.normpath(args.search))
    search = tfxfer.TransferSearch(extractor, tuner=settings["tuner"], directory=directory or ".",
                                   project_name=project, verbose=0)
    fitted = search.best_model(data)
    path = tfxfer.export(fitted, args.name, root=args.root, data_summary=data, models_config=args.models_config)
    print(path)


def _predict(args):
    import tfxfer

    exported = tfxfer.load_exported(args.export)
    inputs = args.inputs[0] if len(args.inputs) == 1 and args.inputs[0].lower().endswith((".csv", ".tsv")) \
        else args.inputs
    _print_table(exported.predict(inputs, text_column=args.text_column), args)


def _demo(args):
    from tfxfer.demo import run_demo

    run_demo(per_class=args.per_class, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs, seed=args.seed,
             export_root=None if args.no_export else args.root, verbose=not args.quiet)


def _command(commands, name, help, run):
    parser = commands.add_parser(name, help=help, description=help, epilog=f"examples:\n  {EXAMPLES[name]}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run)
    parser.add_argument("--quiet", action="store_true", help="print only the result")
    parser.add_argument("--json", action="store_true", help="print tables as JSON records")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser


def _extractor_flags(parser, source=True):
    if source:
        parser.add_argument("--extractor", required=True,
                            help="TF Hub handle, SavedModel folder or .tar.gz, gs:// path, or keras.applications name")
    parser.add_argument("--weights", default="imagenet",
                        help="keras.applications weights: imagenet, none, or a weights file (default: %(default)s)")
    parser.add_argument("--preprocessor", help="BERT-style encoders: the preprocessing SavedModel")


def _data_flags(parser):
    import tfxfer

    images, text = _defaults(tfxfer.load_images), _defaults(tfxfer.load_text)
    parser.add_argument("data", help="a folder (one subfolder per class, or train/ and val/), or a CSV/TSV file")
    parser.add_argument("--label-column", default=images["label_column"], help="label column (default: %(default)s)")
    parser.add_argument("--text-column", default=text["text_column"], help="text column (default: %(default)s)")
    parser.add_argument("--validation-split", type=float, default=images["validation_split"],
                        help="fraction held out when the data has no val/ split (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=images["batch_size"], help="(default: %(default)s)")
    parser.add_argument("--augment", action="store_true", help="random flips, rotations, zooms (disables caching)")
    parser.add_argument("--on-bad", choices=["error", "skip"], default=images["on_bad"],
                        help="bad files or rows: stop with an error, or skip and count them (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=images["seed"], help="(default: %(default)s)")


def _export_flags(parser, name_flag="--export"):
    import tfxfer

    defaults = _defaults(tfxfer.export)
    parser.add_argument(name_flag, help="export the model under this name" if name_flag == "--export" else
                        "the export's model name", required=name_flag != "--export")
    parser.add_argument("--root", default=defaults["root"], help="export root (default: %(default)s)")
    parser.add_argument("--models-config", action="store_true", help="write <root>/models.config for TF Serving")


def build_parser():
    """The argument parser of `tfxfer` and its subcommands."""
    import tfxfer
    from tfxfer.demo import run_demo

    parser = argparse.ArgumentParser(
        prog="tfxfer", description="Transfer learning for TensorFlow and Keras 3.",
        epilog="examples:\n  " + "\n  ".join(e.split("\n")[0] for e in EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(commands, "demo", "transfer learning end to end, offline: pretrain a CNN on digits 0-4, save it "
                                      "in TF Hub format, transfer it to digits 5-9 in every regime, export the best",
                    _demo)
    defaults = _defaults(run_demo)
    demo.add_argument("--per-class", type=int, default=defaults["per_class"],
                      help="labelled target examples per class (default: %(default)s)")
    demo.add_argument("--pretrain-epochs", type=int, default=defaults["pretrain_epochs"], help="(default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=defaults["epochs"], help="(default: %(default)s)")
    demo.add_argument("--seed", type=int, default=defaults["seed"], help="(default: %(default)s)")
    demo.add_argument("--root", default=defaults["export_root"], help="export root (default: %(default)s)")
    demo.add_argument("--no-export", action="store_true", help="do not export the best model")

    inspect_ = _command(commands, "inspect", "show an extractor's blocks", _inspect)
    inspect_.add_argument("source", help="TF Hub handle, SavedModel folder or .tar.gz, gs:// path, application name")
    _extractor_flags(inspect_, source=False)
    inspect_.add_argument("--granularity", choices=["stage", "cut"], default="stage",
                          help="Keras models: blocks per named stage or per true cut (default: %(default)s)")

    model = _defaults(tfxfer.TransferModel)
    head = _defaults(tfxfer.Head)
    train = _command(commands, "train", "train a model in one regime, and export it", _train)
    _data_flags(train)
    _extractor_flags(train)
    train.add_argument("--regime", choices=list(tfxfer.REGIMES), default=model["regime"], help="(default: %(default)s)")
    train.add_argument("--freeze", type=int, default=model["freeze_blocks"],
                       help="blocks kept frozen (mid-layer: default half; fine-tune: default 0)")
    train.add_argument("--hidden-units", type=int, nargs="*", default=list(head["hidden_units"]),
                       help="sizes of hidden layers of the head (default: none)")
    train.add_argument("--dropout", type=float, default=head["dropout"], help="(default: %(default)s)")
    train.add_argument("--l2", type=float, default=head["l2"], help="(default: %(default)s)")
    train.add_argument("--learning-rate", type=float, default=model["learning_rate"], help="(default: %(default)s)")
    train.add_argument("--fine-tune-learning-rate", type=float, default=model["fine_tune_learning_rate"],
                       help="(default: %(default)s)")
    train.add_argument("--warmup-epochs", type=int, default=model["warmup_epochs"], help="(default: %(default)s)")
    train.add_argument("--epochs", type=int, default=model["epochs"], help="(default: %(default)s)")
    train.add_argument("--patience", type=int, default=model["patience"], help="(default: %(default)s)")
    train.add_argument("--no-cache", action="store_true", help="train end to end even where activations could be "
                                                               "cached")
    train.add_argument("--report", metavar="DIR", help="write report.md with training curves and a confusion matrix")
    _export_flags(train)

    search = _defaults(tfxfer.TransferSearch)
    tune = _command(commands, "tune", "search freeze depth, learning rates and head with Keras Tuner (resumes when "
                                      "--dir exists)", _tune)
    _data_flags(tune)
    _extractor_flags(tune)
    tune.add_argument("--trials", type=int, default=search["max_trials"], help="trials to run (default: %(default)s)")
    tune.add_argument("--tuner", choices=["random", "bayesian", "hyperband"], default=search["tuner"],
                      help="(default: %(default)s)")
    tune.add_argument("--dir", default=os.path.join(search["directory"], search["project_name"]),
                      help="the search's folder (default: %(default)s)")
    tune.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    tune.add_argument("--freeze-choices", type=int, nargs="+", help="frozen-block counts to try (default: all)")
    tune.add_argument("--epochs", type=int, default=search["epochs"], help="(default: %(default)s)")
    tune.add_argument("--patience", type=int, default=search["patience"], help="(default: %(default)s)")
    tune.add_argument("--no-cache", action="store_true", help="train every trial end to end")
    role = tune.add_mutually_exclusive_group()
    role.add_argument("--chief", metavar="HOST:PORT", help="run the search's oracle here for workers to join")
    role.add_argument("--worker", metavar="HOST:PORT", help="run trials for the chief at HOST:PORT")
    tune.add_argument("--worker-id", type=int, default=0, help="this worker's number (default: %(default)s)")
    tune.add_argument("--worker-timeout", type=float, default=search["worker_timeout"],
                      help="chief: seconds without a report before a worker's trial goes to another "
                           "(default: %(default)s)")
    _export_flags(tune)

    export = _command(commands, "export", "retrain a search's best trial and export it for TF Serving", _export)
    _data_flags(export)
    _extractor_flags(export, source=False)
    export.add_argument("--search", required=True, help="the --dir of a `tfxfer tune` run")
    _export_flags(export, name_flag="--name")

    predict = _command(commands, "predict", "run an export on image files, texts or a CSV of texts", _predict)
    predict.add_argument("export", help="<root>/<name> (its highest version) or <root>/<name>/<version>")
    predict.add_argument("inputs", nargs="+", help="image files or folders, texts, or one CSV/TSV file")
    predict.add_argument("--text-column", help="the CSV's text column (default: text)")
    return parser


def main(argv=None):
    """Runs the command line; returns the exit code (0 ok, 1 failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except Exception as error:  # One line for people; the traceback with --debug.
        if args.debug:
            raise
        print(f"tfxfer {args.command}: error: {error}".splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
