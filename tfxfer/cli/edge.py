"""The command line's edge deployment: LiteRT flags of the exporting commands (`--format litert`, `--quantize`...)
and `tfxfer distill`, kept apart from the SavedModel commands."""

from tfxfer.cli.commands import UsageError, _say


def litert_flags(parser):
    """The flags of LiteRT exports (`tfxfer.serving.litert.export_litert`)."""
    from tfxfer.cli.parser import library_defaults, whole

    defaults = library_defaults("serving/litert.py", "export_litert")
    parser.add_argument("--format", choices=["savedmodel", "litert", "tflite"], default="savedmodel",
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
    """The LiteRT arguments of `tfxfer.export` that `--format` and its flags give; refuses them with a SavedModel."""
    given = {"quantize": args.quantize, "input_type": args.input_type, "output_type": args.output_type,
             "calibration_size": args.calibration_size, "select_tf_ops": args.select_tf_ops or None}
    given = {name: value for name, value in given.items() if value is not None}
    if args.format == "savedmodel":
        if given:
            flags = " and ".join(f"--{name.replace('_', '-')}" for name in given)
            raise UsageError(f"{flags} apply to LiteRT exports: pass --format litert with them, or leave them out")
        return {}
    if args.models_config:
        raise UsageError("--models-config lists SavedModels for TF Serving, which does not serve .tflite files: "
                         "leave it out with --format litert")
    return {"format": "litert", **given}


def said_verification(args, path):
    """Prints what the verification of a LiteRT export found."""
    if args.format == "savedmodel":
        return
    from tfxfer.serving.litert_client import LiteRTModel

    litert = LiteRTModel(path).metadata["litert"]
    check = litert["verification"]
    found = check.get("skipped") or (f"on {check['examples']} examples of the {check['source']}: largest score "
                                     f"difference from the SavedModel {check['max_score_difference']:.2g}, top-1 "
                                     f"agreement {check['top1_agreement']}")
    _say(args, f"{path}/model.tflite: {litert['size_bytes'] / 1e6:.2f} MB, {litert['quantize']}; verified {found}")
