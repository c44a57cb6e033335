"""The `tfxfer` argument parser, built without importing TensorFlow, so `--help` and `--version` answer at once.

Flags take their defaults from the library's signatures, read from its source files (`library_defaults`), so the
command line and the API never disagree. Flag values are checked as they are parsed: a bad one is a usage error
(exit 2) before anything loads.
"""

import argparse

import tfxfer
from tfxfer.cli import commands, edge, predicting, probing, recipe
from tfxfer.cli.extractor_options import settle_data
from tfxfer.cli.terminal import TUNE_FLAGS
from tfxfer.cli.flags import (address, figure_file, fraction, library_defaults, model_name, nonnegative, number,
                              positive, search_folder, seed, separator, whole)

EXAMPLES = {
    "demo": "tfxfer demo\n  tfxfer demo --per-class 10 --no-export",
    "inspect": "tfxfer inspect MobileNetV2 --weights none\n"
               "  tfxfer inspect https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5 --json\n"
               "  tfxfer inspect ./bert_encoder --preprocessor ./bert_preprocess --cache-sequences   # cut by layer",
    "train": "tfxfer train hymenoptera_data --extractor ./mobilenet_v2_feature_vector --export ants_bees\n"
             "  tfxfer train reviews.csv --extractor ./glove --text-column review --regime feature-extraction\n"
             "  tfxfer train ratings.csv --extractor ./glove --label-column stars --task regression",
    "tune": "tfxfer tune hymenoptera_data --extractor MobileNetV2 --weights mnv2.weights.h5 --trials 20 --dir runs\n"
            "  tfxfer tune hymenoptera_data --extractor ./mobilenet_v2_100_224 --extractor ./mobilenet_v1_025_224 "
            "--trials 20\n"
            "  tfxfer tune spam.csv --extractor ./glove --extractor ./minilm_encoder preprocessor=./minilm_preprocess\n"
            "  tfxfer tune ... --chief 127.0.0.1:8470       # in one process\n"
            "  tfxfer tune ... --worker 127.0.0.1:8470 --worker-id 0   # in each worker",
    "export": "tfxfer export hymenoptera_data --search runs/search --name ants_bees\n"
              "  tfxfer export hymenoptera_data --search runs/search --name ants_bees_lite --format litert "
              "--quantize int8",
    "lr-find": "tfxfer lr-find hymenoptera_data --extractor ./mobilenet_v2_100_224 --plot lr_find.png\n"
               "  tfxfer train hymenoptera_data --extractor ./mobilenet_v2_100_224 --learning-rate 3e-3  # the valley",
    "probe": "tfxfer probe hymenoptera_data --extractor ./mobilenet_v2_100_224 --extractor ./mobilenet_v1_025_224 "
             "--plot probe.png\n"
             "  tfxfer probe hymenoptera_data --extractor MobileNetV2 weights=mnv2.weights.h5 --extractor "
             "MobileNetV2 alpha=0.35 weights=mnv2_035.weights.h5",
    "predict": "tfxfer predict saved_models/ants_bees photo1.jpg photo2.png\n"
               "  tfxfer predict saved_models/spam messages.csv --text-column text --json\n"
               "  tfxfer predict saved_models/spam reviews/ note.txt    # .txt files and folders of them\n"
               "  tfxfer predict saved_models/spam --texts 'win a prize' 'see you at 5'\n"
               "  tfxfer predict saved_models/ants_bees_lite/1/model.tflite photo1.jpg   # LiteRT, in its interpreter",
}


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line and a pointer to `--help`, not the whole usage."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _command(commands_, name, help, run):
    parser = commands_.add_parser(name, help=help, description=help, epilog=f"examples:\n  {EXAMPLES[name]}",
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(run=run, parser=parser)
    parser.add_argument("--quiet", action="store_true", help="print only the result (the export's path, the table)")
    parser.add_argument("--json", action="store_true", help="print tables as JSON records")
    parser.add_argument("--debug", action="store_true", help="show TensorFlow's messages and tracebacks on errors")
    return parser


def _extractor_flags(parser, source=True, repeat=False):
    if source and repeat:
        _repeated_extractor(parser, "; repeat it to choose among several (they are probed first); the flags below "
                                    "apply to every extractor")
    elif source:
        parser.add_argument("--extractor", required=True,
                            help="TF Hub handle, SavedModel folder or .tar.gz, gs:// path, or keras.applications name")
    parser.add_argument("--weights", help="keras.applications names only: imagenet (the default), none, or a weights "
                                          "file")
    parser.add_argument("--alpha", type=positive, help="keras.applications MobileNets only: the width multiplier, "
                                                       "e.g. 0.35")
    parser.add_argument("--preprocessor", help="BERT-style TF Hub encoders: the preprocessing SavedModel; KerasHub: a "
                                               "preset to take the preprocessing from")
    parser.add_argument("--output-key", help="SavedModels that return several outputs: the one to use")
    parser.add_argument("--pooling", choices=["avg", "max", "token", "gap", "none"],
                        help="KerasHub image backbones: the pooling on the output (default: the one the preset's "
                             "image classifier uses)")
    parser.add_argument("--sequence-length", type=whole(1),
                        help="KerasHub text backbones: tokens per text (default: the preset's)")
    parser.add_argument("--image-size", nargs=2, type=whole(1), metavar=("HEIGHT", "WIDTH"),
                        help="image extractors: the size they take, for a SavedModel that does not state it "
                             "(default: its own)")
    parser.add_argument("--value-range", nargs=2, type=number, metavar=("LOW", "HIGH"),
                        help="image extractors: the pixel range they take, e.g. -1 1 (default: TF Hub's 0 1 for "
                             "SavedModels; keras.applications and KerasHub presets know their own)")
    parser.add_argument("--cache-sequences", action="store_true",
                        help="BERT-style TF Hub encoders: also cache between transformer layers (the sequence and "
                             "its mask: about 197 KB per text at 128 tokens)")


def _repeated_extractor(parser, more):
    """`--extractor SOURCE [KEY=VALUE ...]`, once per extractor; the data may stand after it (`settle_data`)."""
    parser.add_argument("--extractor", nargs="+", action="append", required=True, metavar=("SOURCE", "KEY=VALUE"),
                        help="TF Hub handle, SavedModel folder or .tar.gz, gs:// path, or keras.applications name, "
                             "with load_extractor options after it (weights=FILE, alpha=0.35, preprocessor=DIR, "
                             "image_size=96x96, output_key, pooling, sequence_length, granularity, "
                             f"cache_sequences=true for a BERT-style encoder's layers){more}")
    parser.set_defaults(settle=settle_data)


def _data_flags(parser, augment=True, repeated_extractor=False):
    images, text = library_defaults("data/images.py", "load_images"), library_defaults("data/text.py", "load_text")
    # After --extractor SOURCE KEY=VALUE, argparse takes the data for an option: `settle_data` requires it instead.
    parser.add_argument("data", nargs="?" if repeated_extractor else None,
                        help="a folder (one subfolder per class, or train/ and val/), or a CSV/TSV file"
                             + (" (required; before the flags or after an --extractor's options)" if
                                repeated_extractor else ""))
    parser.add_argument("--label-column", nargs="+", default=[images["label_column"]],
                        help="label column, or several (0/1 per class, or regression targets) (default: label)")
    parser.add_argument("--text-column", nargs="+", default=[text["text_column"]],
                        help="text column, or several to join (default: %(default)s)")
    parser.add_argument("--path-column", default=images["path_column"],
                        help="CSV of images: the column of image paths (default: %(default)s)")
    parser.add_argument("--split-column", help="CSV: a column saying train, val or test for each row")
    parser.add_argument("--column-names", nargs="+", metavar="NAME", help="CSV/TSV without a header row: its columns")
    parser.add_argument("--sep", type=separator, help="CSV/TSV field separator: a character, or tab (default: tab for "
                                                      ".tsv, comma for .csv)")
    parser.add_argument("--encoding", default=images["encoding"], help="CSV/TSV and .txt encoding, e.g. latin-1 or "
                                                                       "cp1252 for files from Excel (default: "
                                                                       "%(default)s)")
    parser.add_argument("--task", choices=["multiclass", "multilabel", "regression"],
                        help="what the labels are (default: inferred; whole-number targets such as ratings need "
                             "--task regression or --task multiclass)")
    parser.add_argument("--class-names", nargs="+", metavar="NAME", help="the classes, in output order")
    parser.add_argument("--label-delimiter", default=images["label_delimiter"],
                        help="multi-label: separator of several labels in one cell (default: %(default)s)")
    parser.add_argument("--validation-split", type=fraction, default=images["validation_split"],
                        help="fraction held out when the data has no val/ split (default: %(default)s)")
    parser.add_argument("--test-split", type=fraction, default=images["test_split"],
                        help="fraction held out for a test split when the data has none (default: %(default)s)")
    parser.add_argument("--batch-size", type=whole(1), default=images["batch_size"], help="(default: %(default)s)")
    if augment:  # not for the probe, which scores the frozen features of the images as they are
        parser.add_argument("--augment", action="store_true", help="random flips, rotations, zooms (disables caching)")
    parser.add_argument("--on-bad", choices=["error", "skip"], default=images["on_bad"],
                        help="bad files or rows: stop with an error, or skip and list them (default: %(default)s)")
    parser.add_argument("--seed", type=seed, default=images["seed"], help="(default: %(default)s)")


def _export_flags(parser, name_flag="--export"):
    defaults = library_defaults("serving/savedmodel.py", "export")
    if name_flag == "--export":
        parser.add_argument(name_flag, type=model_name, help="export the model under this name")
    else:
        parser.add_argument(name_flag, type=model_name, required=True, help="the export's model name")
    parser.add_argument("--root", default=defaults["root"], help="export root (default: %(default)s)")
    parser.add_argument("--models-config", nargs="?", const=True, default=False, metavar="BASE_PATH",
                        help="write <root>/models.config for TF Serving; BASE_PATH: where the server sees --root "
                             "(e.g. /models in a container started with -v $PWD/saved_models:/models; default: "
                             "--root's absolute path here)")
    edge.litert_flags(parser)


def _head_flags(parser):
    """The head's flags (`train`, `lr-find`); `tfxfer.cli.recipe.head_from_flags` builds the `Head`."""
    head = library_defaults("training/heads.py", "Head")
    parser.add_argument("--hidden-units", type=whole(0), nargs="*",
                        help="sizes of hidden layers of the head; 0 or the flag alone for none (default: one of 128 "
                             "for text extractors, none for images)")
    parser.add_argument("--dropout", type=fraction, default=head["dropout"], help="(default: %(default)s)")
    parser.add_argument("--l2", type=nonnegative, default=head["l2"], help="(default: %(default)s)")
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=head["batch_norm"],
                        help="normalise the head's input with BatchNormalization (default: auto, on for text "
                             "extractors)")


def _train_flags(parser):
    model = library_defaults("training/model.py", "TransferModel")
    parser.add_argument("--regime", choices=["feature-extraction", "mid-layer", "fine-tune"], default=model["regime"],
                        help="(default: %(default)s)")
    parser.add_argument("--freeze", type=whole(0), default=model["freeze_blocks"],
                        help="mid-layer and fine-tune: blocks kept frozen (mid-layer: default half; fine-tune: 0)")
    _head_flags(parser)
    parser.add_argument("--learning-rate", type=positive, default=model["learning_rate"],
                        help="(default: %(default)s)")
    parser.add_argument("--fine-tune-learning-rate", type=positive, default=model["fine_tune_learning_rate"],
                        help="(default: %(default)s)")
    parser.add_argument("--warmup-epochs", type=whole(0), default=model["warmup_epochs"],
                        help="head epochs before blocks unfreeze (default: 5 for fine-tune, none for mid-layer)")
    parser.add_argument("--epochs", type=whole(1), default=model["epochs"],
                        help="most epochs after the head warm-up, which --warmup-epochs adds (default: %(default)s)")
    parser.add_argument("--patience", type=whole(0), default=model["patience"], help="(default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="train end to end even where activations could be "
                                                                "cached")
    parser.add_argument("--report", metavar="DIR", help="write report.md with training curves and a confusion matrix")


def _tune_flags(parser):
    search = library_defaults("search/search.py", "TransferSearch")
    parser.add_argument("--trials", type=whole(1),
                        help=f"trials to run (default: {search['max_trials']}); hyperband sets its own from --epochs")
    parser.add_argument("--tuner", choices=["random", "bayesian", "hyperband"], default=search["tuner"],
                        help="(default: %(default)s)")
    parser.add_argument("--dir", type=search_folder, default=f"{search['directory']}/{search['project_name']}",
                        help="the search's folder (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="start afresh, deleting the earlier trials in --dir")
    parser.add_argument("--freeze-choices", type=whole(0), nargs="+", help="frozen-block counts to try (default: all; "
                                                                           "with several --extractor, the probe's)")
    parser.add_argument("--probe-score", choices=["linear", "knn", "logme"], default=search["probe_score"],
                        help="several --extractor: the probe score that ranks them (default: %(default)s)")
    parser.add_argument("--probe-margin", type=nonnegative, default=search["probe_margin"],
                        help="several --extractor: how far below the best probe score an extractor is still tried "
                             "(default: %(default)s)")
    parser.add_argument("--epochs", type=whole(1), default=search["epochs"],
                        help="most epochs of a trial after its head warm-up (default: %(default)s)")
    warmup = library_defaults("search/space.py", "SearchSpace")["warmup_epochs"]
    parser.add_argument("--warmup-epochs", type=whole(0), nargs="+",
                        help="head warm-up epochs before trials that train blocks unfreeze them: one count, or "
                             f"choices to search (default: {warmup})")
    parser.add_argument("--patience", type=whole(0), default=search["patience"], help="(default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="train every trial end to end")
    parser.add_argument("--batch-norm", action=argparse.BooleanOptionalAction,
                        help="heads normalise their input with BatchNormalization (default: auto, on for text "
                             "extractors)")
    parser.add_argument("--centre-rates", action="store_true", help="run the learning-rate finder first and search "
                                                                    "the head's rate from its valley / 10 to x 10")
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--chief", metavar="HOST:PORT", type=address, help="run the search's oracle here")
    role.add_argument("--worker", metavar="HOST:PORT", type=address, help="run trials for the chief at HOST:PORT")
    parser.add_argument("--worker-id", type=whole(0), default=0, help="this worker's number (default: %(default)s)")
    parser.add_argument("--worker-timeout", type=positive, default=search["worker_timeout"],
                        help="chief: seconds without a report before a worker's trial goes to another "
                             "(default: %(default)s)")


def build_parser():
    """The argument parser of `tfxfer` and its subcommands.

    Example:
        >>> build_parser().parse_args(["train", "photos", "--extractor", "MobileNetV2"]).validation_split
        0.2
    """
    parser = _Parser(
        prog="tfxfer", description="Transfer learning for TensorFlow and Keras 3.",
        epilog="examples:\n  " + "\n  ".join(e.split("\n")[0] for e in EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tfxfer {tfxfer.__version__}")
    commands_ = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    demo = _command(commands_, "demo", "transfer learning end to end, offline: pretrain a CNN on digits 0-4, save it "
                                       "in TF Hub format, transfer it to digits 5-9 in every regime, export the best",
                    commands.demo)
    defaults = library_defaults("demo.py", "run_demo")
    demo.add_argument("--per-class", type=whole(1), default=defaults["per_class"],
                      help="labelled target examples per class (default: %(default)s)")
    demo.add_argument("--pretrain-epochs", type=whole(1), default=defaults["pretrain_epochs"],
                      help="(default: %(default)s)")
    demo.add_argument("--epochs", type=whole(1), default=defaults["epochs"], help="(default: %(default)s)")
    demo.add_argument("--seed", type=seed, default=defaults["seed"], help="(default: %(default)s)")
    demo.add_argument("--root", default=defaults["export_root"], help="export root (default: %(default)s)")
    demo.add_argument("--no-export", action="store_true", help="do not export the best model")

    inspect = _command(commands_, "inspect", "show an extractor's blocks", commands.inspect)
    inspect.add_argument("source", help="TF Hub handle, SavedModel folder or .tar.gz, gs:// path, application name")
    _extractor_flags(inspect, source=False)
    inspect.add_argument("--granularity", choices=["stage", "cut"], default="stage",
                         help="Keras models: blocks per named stage or per true cut (default: %(default)s)")

    train = _command(commands_, "train", "train a model in one regime, and export it", commands.train)
    _data_flags(train)
    _extractor_flags(train)
    _train_flags(train)
    recipe.recipe_flags(train)
    _export_flags(train)

    lr_find = _command(commands_, "lr-find", "the learning-rate finder: a few hundred steps at growing rates, and two "
                                             "suggestions (valley, steepest descent)", recipe.lr_find)
    _data_flags(lr_find)
    _extractor_flags(lr_find)
    recipe.lr_find_flags(lr_find)
    _head_flags(lr_find)

    tune = _command(commands_, "tune", "search freeze depth, learning rates and head with Keras Tuner (resumes when "
                                       "--dir exists)", commands.tune)
    _data_flags(tune, repeated_extractor=True)
    _extractor_flags(tune, repeat=True)
    _tune_flags(tune)
    _export_flags(tune)
    tune.set_defaults(flags=TUNE_FLAGS)

    export = _command(commands_, "export", "retrain a search's best trial and export it (--format litert: .tflite)",
                      commands.export)
    _data_flags(export)
    export.add_argument("--search", required=True, type=search_folder, help="the --dir of a `tfxfer tune` run")
    export.add_argument("--extractor", help="the search's extractor at another path (its weights must be the "
                                            "search's; default: the one the search recorded)")
    _export_flags(export, name_flag="--name")

    probe = _command(commands_, "probe", "score every block boundary of one or more extractors on frozen features "
                                         "(linear probe, k-NN, LogME): which extractor, and how deep", probing.probe)
    _data_flags(probe, augment=False, repeated_extractor=True)
    _repeated_extractor(probe, "; repeat it for each extractor")
    probe.add_argument("--rank-by", choices=["linear", "knn", "logme"], default="linear",
                       help="the score the table is sorted by (default: %(default)s)")
    probe.add_argument("--plot", metavar="PNG", type=figure_file,
                       help="draw the scores against block depth into this new file (.png, .svg, .pdf...)")

    edge.distill_flags(commands_, _command, _data_flags, _extractor_flags, _export_flags)

    predict = _command(commands_, "predict", "run an export on image files, texts, .txt files or a CSV of texts",
                       predicting.predict)
    predict.add_argument("export", help="<root>/<name> (its highest version), <root>/<name>/<version>, or a LiteRT "
                                        "export's model.tflite")
    predict.add_argument("inputs", nargs="+", help="image files or folders; or texts, .txt files, folders of .txt "
                                                   "files, or one CSV/TSV file")
    predict.add_argument("--texts", action="store_true", help="text models: read every input as a text, even one "
                                                              "that names a file")
    predict.add_argument("--column-names", nargs="+", metavar="NAME", help="CSV/TSV (or .txt table) without a "
                                                                            "header row: its columns")
    predict.add_argument("--text-column", action="append", help="the CSV's text column (default: the one the model "
                                                                 "was trained on, or the file's only column); once "
                                                                 "per column for a model trained on joined texts")
    predict.add_argument("--on-bad", choices=["error", "skip"], default="error",
                         help="files that do not decode, empty texts: stop, or skip and list them (default: "
                              "%(default)s)")
    predict.add_argument("--sep", type=separator, help="the CSV/TSV's field separator (default: from its suffix)")
    predict.add_argument("--encoding", default="utf-8", help="the encoding of .txt and CSV/TSV files, e.g. cp1252 for "
                                                             "files from Excel (default: %(default)s)")
    return parser
