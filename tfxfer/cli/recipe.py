"""The training recipe on the command line: the flags of `tfxfer train` for rates per block, schedules, label
smoothing, precision and TTA, and the `tfxfer lr-find` command. Like the parser, importing it loads no TensorFlow."""

from tfxfer.cli.commands import UsageError, _check_data_path, _load_data, _load_extractor, _result, _say


def recipe_flags(parser):
    """The training recipe of `tfxfer train`: rates per block, schedules, label smoothing, precision, TTA."""
    from tfxfer.cli.flags import decay, fraction, library_defaults, positive
    model = library_defaults("training/model.py", "TransferModel")
    rates = parser.add_mutually_exclusive_group()  # two ways to give blocks their own rates
    rates.add_argument("--layer-decay", type=decay, help="phases that train blocks: each block below the top at "
                                                        "this factor of the rate above it (timm), e.g. 0.75")
    rates.add_argument("--block-rates", type=positive, nargs=2, metavar=("LOW", "HIGH"),
                       help="phases that train blocks: rates spread from LOW (lowest trainable block) to HIGH "
                            "(the head) (fastai's slice)")
    parser.add_argument("--schedule", choices=["constant", "cosine", "one-cycle"], default=model["schedule"],
                        help="how the rate moves within each phase (default: %(default)s)")
    parser.add_argument("--label-smoothing", type=fraction, default=model["label_smoothing"],
                        help="classes: the share of each label spread over the others (default: %(default)s)")
    parser.add_argument("--precision", choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"],
                        default=model["precision"], help="dtype policy; auto: mixed on GPUs and TPUs, float32 on "
                                                         "CPUs (default: %(default)s)")
    parser.add_argument("--tta", action="store_true", help="images: evaluate and export the mean over each image and "
                                                           "its mirror image (test-time augmentation)")


def lr_find_flags(parser):
    """The flags of `tfxfer lr-find` beside the data and extractor flags."""
    from tfxfer.cli.flags import figure_file, library_defaults, positive, whole
    model = library_defaults("training/model.py", "TransferModel")
    finder = library_defaults("training/lr_finder.py", "ramp")
    parser.add_argument("--regime", choices=["feature-extraction", "mid-layer", "fine-tune"], default=model["regime"],
                        help="the regime whose first phase the finder runs (default: %(default)s)")
    parser.add_argument("--freeze", type=whole(0), help="mid-layer: blocks kept frozen (default: half)")
    parser.add_argument("--steps", type=whole(10), default=finder["steps"], help="(default: %(default)s)")
    parser.add_argument("--start", type=positive, default=finder["start"], help="first rate (default: %(default)s)")
    parser.add_argument("--end", type=positive, default=finder["end"], help="last rate (default: %(default)s)")
    parser.add_argument("--plot", metavar="PNG", type=figure_file,
                        help="draw the loss against the rate into this new file (.png, .svg, .pdf...)")
    parser.add_argument("--no-cache", action="store_true", help="run end to end even where activations could be "
                                                                "cached")


def head_from_flags(args):
    """The `Head` of the head flags (`--hidden-units`, `--dropout`, `--l2`, `--batch-norm`); without
    `--hidden-units`, the library's default layers; with 0 or no sizes, none."""
    import tfxfer

    units = args.hidden_units
    if units is not None and 0 in units:
        if len(units) > 1:
            raise UsageError(f"--hidden-units {' '.join(map(str, units))}: 0 means no hidden layer; pass sizes "
                             "(--hidden-units 256 64), or 0 alone for none")
        units = []
    return tfxfer.Head(dropout=args.dropout, l2=args.l2, batch_norm=args.batch_norm,
                       **({} if units is None else {"hidden_units": tuple(units)}))


def recipe_arguments(args):
    """The `TransferModel` arguments of the recipe flags (`--layer-decay`, `--schedule`...)."""
    rates = None if args.block_rates is None else tuple(args.block_rates)
    return {"layer_decay": args.layer_decay, "block_rates": rates, "schedule": args.schedule,
            "label_smoothing": args.label_smoothing, "precision": args.precision}


def check_tta(args, extractor, data):
    """Refuses `--tta` where it can do nothing: text, or neither a validation split to evaluate nor an export."""
    if not args.tta:
        return
    if extractor.input_kind != "image":
        raise UsageError(f"--tta averages each image with its mirror image; {args.extractor} takes text: leave --tta "
                         "out")
    if not data.sizes.get("validation") and args.export is None:
        raise UsageError("--tta evaluates the validation split and exports the flip-averaged model; with no "
                         "validation split and no --export it does nothing: pass --export NAME, or leave --tta out")


def centred_space(args, space, extractor, data):
    """`tfxfer tune --centre-rates`: `space` with the head's rate centred on the learning-rate finder's valley. A
    search that `--dir` already holds keeps the range its first run found, so a resume neither waits for the finder
    again nor differs from the first run by the finder's noise."""
    import dataclasses
    import os

    import tfxfer
    from tfxfer.search.results import search_record

    directory, project = os.path.split(os.path.normpath(args.dir))
    recorded = {} if args.overwrite else search_record(directory or ".", project).get("space", {})
    if recorded and tuple(recorded["learning_rate"]) != tfxfer.SearchSpace().learning_rate:
        space = dataclasses.replace(space, learning_rate=tuple(recorded["learning_rate"]))
        _say(args, f"resuming: the head's rate searched from {space.learning_rate[0]:g} to {space.learning_rate[1]:g}, "
                   "as the learning-rate finder chose in the search's first run")
        return space
    args.stage = "finding a learning rate"
    finding = tfxfer.TransferModel(extractor, cache=not args.no_cache, seed=args.seed, verbose=0)
    space = space.centred_on(finding.find_learning_rate(data).valley)
    _say(args, f"learning-rate finder: the head's rate searched from {space.learning_rate[0]:g} to "
               f"{space.learning_rate[1]:g}")
    return space


def lr_find(args):
    """`tfxfer lr-find`: the learning-rate finder on the regime's first phase; prints both suggestions."""
    import pandas as pd

    import tfxfer

    if args.start >= args.end:
        raise UsageError(f"--start {args.start} must be below --end {args.end}")
    from tfxfer.training.phases import DEFAULT_WARMUP

    if args.freeze is not None and DEFAULT_WARMUP[args.regime]:  # it was ignored, silently (a tester's find)
        raise UsageError(f"--freeze does nothing here: with --regime {args.regime} the finder ramps the head's "
                         "warm-up, every block frozen; pass --regime mid-layer --freeze K to ramp the blocks after K "
                         "too")
    _check_data_path(args)
    head = head_from_flags(args)
    extractor = _load_extractor(args, args.extractor)
    data = _load_data(args, extractor)
    args.stage = "finding a learning rate"
    model = tfxfer.TransferModel(extractor, regime=args.regime, freeze_blocks=args.freeze, head=head,
                                 cache=not args.no_cache, seed=args.seed, verbose=0)
    finding = model.find_learning_rate(data, steps=args.steps, start=args.start, end=args.end)
    row = {"valley": float(f"{finding.valley:.3g}"), "steepest": float(f"{finding.steepest:.3g}"),
           "steps": len(finding.rates), "lowest_loss": round(float(finding.smoothed.min()), 4)}
    args.stage = "writing its results"  # "nothing was written" would no longer be true
    if args.plot:
        finding.plot(args.plot)
        row["plot"] = args.plot
    _say(args, "valley: the steadier suggestion (fastai's default); steepest: where the loss falls fastest. Train "
               "the head at about either with --learning-rate.")
    _result(args, pd.DataFrame([row]))
