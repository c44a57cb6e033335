"""The command line's edge deployment: LiteRT flags of the exporting commands (`--format litert`, `--quantize`...)
and `tfxfer distill`, kept apart from the SavedModel commands."""

import sys

from tfxfer.cli import terminal
from tfxfer.cli.commands import UsageError, _say
from tfxfer.cli.flags import library_defaults

#: `--root` unless given: the library's `export(root=...)` default.
DEFAULT_ROOT = library_defaults("serving/savedmodel.py", "export")["root"]


def litert_flags(parser):
    """The flags of LiteRT exports (`tfxfer.serving.litert.export_litert`)."""
    from tfxfer.cli.flags import whole

    defaults = library_defaults("serving/litert.py", "export_litert")
    parser.add_argument("--format", choices=["savedmodel", "litert"], default="savedmodel",
                        type=lambda value: "litert" if value == "tflite" else value,  # one name for both after here
                        help="savedmodel for TF Serving, or litert (also tflite): a verified .tflite file for phones "
                             "and boards (default: %(default)s)")
    parser.add_argument("--quantize", choices=["none", "float16", "dynamic", "int8"],
                        help=f"litert: weights and activations (int8: calibrated on training examples) (default: "
                             f"{defaults['quantize']})")
    parser.add_argument("--input-type", choices=["float32", "uint8"],
                        help=f"litert image models: the pixels' type (default: {defaults['input_type']})")
    parser.add_argument("--output-type", choices=["float32", "uint8"],
                        help=f"litert with --quantize int8: the scores' type (default: {defaults['output_type']})")
    parser.add_argument("--calibration-size", type=whole(1),
                        help="litert int8: training examples to calibrate on (default: "
                             f"{defaults['calibration_size']})")
    parser.add_argument("--select-tf-ops", action="store_true",
                        help="litert: let TensorFlow ops that LiteRT lacks (string ops of text models) into the file; "
                             "the app then needs LiteRT's Flex delegate")


def export_options(args):
    """The LiteRT arguments of `tfxfer.export` that `--format` and its flags give, checked before anything trains;
    refuses them with a SavedModel, and export flags where nothing is exported (no `--export`)."""
    given = {"quantize": args.quantize, "input_type": args.input_type, "output_type": args.output_type,
             "calibration_size": args.calibration_size, "select_tf_ops": args.select_tf_ops or None}
    given = {name: value for name, value in given.items() if value is not None}
    flags = [f"--{name.replace('_', '-')}" for name in given]
    unused = ["--format litert"] * (args.format == "litert") + flags + ["--root"] * (args.root != DEFAULT_ROOT)
    if getattr(args, "export", True) is None and unused:  # `tfxfer export` always exports (--name)
        them = "it" if len(unused) == 1 else "them"
        raise UsageError(f"{terminal.these_apply(unused)} to an export: pass --export NAME, or leave {them} out")
    if args.format == "savedmodel":
        if given:
            them = "it" if len(flags) == 1 else "them"
            raise UsageError(f"{terminal.these_apply(flags)} to LiteRT exports: pass --format litert with {them}, "
                             f"or leave {them} out")
        return {}
    if args.models_config:
        raise UsageError("--models-config lists SavedModels for TF Serving, which does not serve .tflite files: "
                         "leave it out with --format litert")
    if getattr(args, "tta", False):  # refused by the export after training, in the library's words
        raise UsageError("--tta applies to SavedModel exports; leave it out with --format litert (a phone can flip "
                         "and average itself)")
    if args.calibration_size is not None and args.quantize != "int8":  # it was ignored, silently (a tester's find)
        raise UsageError("--calibration-size applies to --quantize int8, which calibrates on examples; leave it out "
                         + (f"with --quantize {args.quantize}" if args.quantize else "without --quantize int8"))
    from tfxfer.serving.litert_options import check_options

    try:
        check_options(given.get("quantize", "none"), given.get("input_type", "float32"),
                      given.get("output_type", "float32"), given.get("calibration_size", 1), 1)
    except ValueError as error:
        raise UsageError(terminal.cli_words(str(error)).rstrip(".")) from None
    return {"format": "litert", **given}


def check_litert_conversion(args, extractors, exporting=True):
    """Refuses `--format litert` before training where LiteRT cannot convert a text extractor's ops (the export
    would fail only after training)."""
    if exporting and args.format == "litert":
        from tfxfer.serving.litert import check_convertible, check_text_options

        for extractor in extractors:
            try:
                check_text_options(extractor.input_kind, args.quantize or "none", args.input_type or "float32")
            except ValueError as error:  # a usage error: exit 2, before anything trains
                raise UsageError(f"{terminal.cli_words(str(error)).rstrip('.')} ({extractor.source})") from None
            check_convertible(extractor, select_tf_ops=args.select_tf_ops)


def said_verification(args, path):
    """Prints what the verification of a LiteRT export found."""
    if args.format == "savedmodel":
        return
    from tfxfer.serving.litert_client import LiteRTModel, verification_summary

    litert = LiteRTModel(path).metadata["litert"]
    line = f"{path}/model.tflite: {litert['size_bytes'] / 1e6:.2f} MB, {litert['quantize']}; " \
           f"{verification_summary(litert)}"
    if litert["verification"].get("skipped"):  # a warning, which --quiet and --json do not hide
        print(line, file=sys.stderr)
    else:
        _say(args, line)


def distill_flags(commands_, command, data_flags, extractor_flags, export_flags):
    """`tfxfer distill`: its parser, with the data, extractor and export flags of the other commands."""
    from tfxfer.cli.flags import library_defaults, positive, whole
    from tfxfer.cli.parser import EXAMPLES

    EXAMPLES["distill"] = ("tfxfer distill hymenoptera_data --teacher saved_models/ants_bees --extractor "
                           "./mobilenet_v1_025_224 --export ants_bees_small --format litert --quantize int8")
    defaults = library_defaults("training/distillation.py", "distill")
    parser = command(commands_, "distill", "train a small student extractor on a tuned teacher's soft predictions "
                                           "(frozen student, cached features), and export it", distill)
    data_flags(parser)
    extractor_flags(parser)
    parser.add_argument("--teacher", required=True, help="the teacher: a tfxfer SavedModel export of an image model "
                                                         "(<root>/<name> or a version folder)")
    parser.add_argument("--temperature", type=positive, default=defaults["temperature"],
                        help="softens the teacher's and student's scores (default: %(default)s)")
    parser.add_argument("--teacher-weight", type=_weight, default=defaults["alpha"],
                        help="alpha: weight of the teacher's soft term, 0 (labels only) to 1 (default: %(default)s)")
    parser.add_argument("--unlabeled", metavar="FOLDER", help="a folder of unlabelled images the teacher labels")
    parser.add_argument("--epochs", type=whole(1), default=defaults["epochs"], help="(default: %(default)s)")
    parser.add_argument("--learning-rate", type=positive, default=defaults["learning_rate"],
                        help="(default: %(default)s)")
    export_flags(parser)
    return parser


def _weight(text):
    from tfxfer.cli.flags import number

    value = number(text)
    if not 0 <= value <= 1:
        import argparse

        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text}")
    return value


def distill(args):
    """`tfxfer distill`: the student distilled from an exported teacher, evaluated, and exported if asked."""
    import os

    import pandas as pd

    import tfxfer
    from tfxfer.cli.commands import _check_data_path, _load_data, _load_extractor, _result
    from tfxfer.cli.outputs import check_export_flags

    check_export_flags(args)
    options = export_options(args)
    _check_data_path(args)
    if args.unlabeled and not os.path.isdir(args.unlabeled):
        raise UsageError(f"--unlabeled {args.unlabeled} is not a folder: pass a folder of images")
    teacher = os.path.realpath(args.teacher)
    teacher = os.path.dirname(teacher) if os.path.isfile(teacher) else teacher  # its saved_model.pb: its version
    if args.export is not None and os.path.realpath(os.path.join(args.root, args.export)) in (
            teacher, os.path.dirname(teacher)):
        raise UsageError(f"--export {args.export} --root {args.root} is the teacher's model folder (--teacher "
                         f"{args.teacher}): the student would be served as a new version of the teacher; pass "
                         "another --export name")
    _check_image_teacher(args)
    extractor = _load_extractor(args, args.extractor)
    check_litert_conversion(args, [extractor], exporting=args.export is not None)
    data = _load_data(args, extractor)
    args.stage = "training"
    student = tfxfer.distill(args.teacher, extractor, data, temperature=args.temperature, alpha=args.teacher_weight,
                             unlabeled=args.unlabeled, epochs=args.epochs, learning_rate=args.learning_rate,
                             seed=args.seed, on_bad=args.on_bad)
    terminal.print_skipped(student.distillation_["unlabeled_skipped"], what="unlabelled image(s)")
    row = {"temperature": args.temperature, "teacher_weight": args.teacher_weight,
           "unlabeled_images": student.distillation_["unlabeled_images"],
           "unlabeled_skipped": len(student.distillation_["unlabeled_skipped"]),
           "epochs": len(student.history_["loss"]),
           "seconds": round(student.fit_seconds_, 1)}
    if data.validation is not None:
        row["val_accuracy"] = round(student.evaluate(data.validation)["accuracy"], 4)
    if args.export is not None:
        args.stage = "exporting"
        row["export"] = str(tfxfer.export(student, args.export, root=args.root, data_summary=data,
                                          models_config=args.models_config, **options))
        said_verification(args, row["export"])
    _result(args, pd.DataFrame([row]))


def _check_image_teacher(args):
    """Refuses, before the student loads, a teacher exported from a text model (distill teaches image students), or
    as a LiteRT file (the teacher runs as a SavedModel)."""
    from tfxfer.serving.formats import check_not_litert, recorded_input_kind

    try:
        check_not_litert(args.teacher, "teacher")
    except ValueError as error:
        raise UsageError(terminal.cli_words(str(error)).rstrip(".")) from None
    kind = recorded_input_kind(args.teacher)  # None where it is no tfxfer export: distill names what it is
    if kind not in (None, "image"):
        raise UsageError(f"--teacher {args.teacher} is the export of a {kind} model; tfxfer distill teaches image "
                         "students: pass the export of an image model")
