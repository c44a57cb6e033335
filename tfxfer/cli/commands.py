"""The commands of `tfxfer`: each a thin layer over the public API, with no logic of its own beyond the checks of
its flags and what it prints.

Each command names what it is doing in `args.stage` (loading, training, searching, exporting...), so that Ctrl-C can
say what it interrupted and what it left.
"""

import json
import os
import sys
import warnings

from tfxfer.cli import terminal


class UsageError(Exception):
    """Flags that do not fit together, found before anything was loaded (exit 2)."""


def _say(args, *lines):
    """Prints progress and summaries, which `--quiet` and `--json` leave out."""
    if not (args.quiet or args.json):
        print(*lines, sep="\n", flush=True)


def _result(args, table):
    """Prints a command's result to stdout: the table (JSON records with `--json`); also under `--quiet`."""
    if args.json:
        print(terminal.json_records(table), file=args.out)
    else:
        print(table.to_string(index=False), file=args.out)


def _extractor_options(args, source, own=None):
    """The keyword arguments of `load_extractor` that the flags give, refusing flags that do not apply to `source`;
    with `own`, the options of `--extractor SOURCE KEY=VALUE ...` (`tfxfer tune`) too, where the flags apply to every
    extractor and KEY=VALUE to the one before it."""
    from tfxfer.extractors.sources import is_application_name

    own = own or {}
    both = [key for key in own if getattr(args, key, None) not in (None, False)]
    if both:
        flag = terminal.FLAGS.get(both[0], f"--{both[0].replace('_', '-')}")
        raise UsageError(f"{flag} and --extractor {source} {both[0]}= both give {both[0]}: give it once (the flag "
                         "applies to every extractor, KEY=VALUE to the one before it)")
    given = {"preprocessor": args.preprocessor, "output_key": args.output_key, "weights": args.weights,
             "alpha": args.alpha, "pooling": args.pooling, "sequence_length": args.sequence_length,
             "image_size": args.image_size and tuple(args.image_size),
             "value_range": args.value_range and tuple(args.value_range)}
    if given["value_range"] and given["value_range"][0] >= given["value_range"][1]:
        raise UsageError(f"--value-range {' '.join(f'{v:g}' for v in args.value_range)}: LOW must be below HIGH")
    options = {name: value for name, value in given.items() if value is not None}
    application = [f"--{name}" for name in ("weights", "alpha") if name in options]
    several = isinstance(getattr(args, "extractor", None), list) and len(args.extractor) > 1  # tune's, repeated
    if application and not is_application_name(source):
        raise UsageError(f"{terminal.these_apply(application)} only to keras.applications names such as "
                         f"MobileNetV2; {source!r} is a SavedModel or handle, which brings its own weights and "
                         f"width: leave {' and '.join(application)} out"
                         + (f", or give {application[0][2:]}= after the keras.applications extractor alone "
                            f"(--extractor MobileNetV2 {application[0][2:]}=...)" if several else ""))
    if options.get("weights", "").lower() == "none":  # None, as Python spells it, was taken for a file
        options["weights"] = None  # random weights
    if args.cache_sequences:
        if (args.preprocessor or own.get("preprocessor")) is None or is_application_name(source):
            raise UsageError("--cache-sequences only applies to BERT-style TF Hub encoders loaded with --preprocessor; "
                             f"{source!r} has no transformer sequence to cache: leave --cache-sequences out"
                             + (", or give cache_sequences=true after the encoder alone (--extractor ENCODER "
                                "preprocessor=PREPROCESSOR cache_sequences=true)" if several else ""))
        options["cache_sequences"] = True
    return {**options, **own}


def _check_data_path(args):
    """What can be told of the data before TensorFlow loads (seconds): that it exists, that a file is text, and
    that a folder is given no flags that only tables have."""
    if not os.path.exists(args.data):
        raise FileNotFoundError(f"the data {args.data!r} does not exist: pass a folder of class folders, or a CSV/TSV "
                                "file")
    if os.path.isdir(args.data):
        _check_data_flags(args, "folder")
    elif os.path.isfile(args.data):  # not a pipe (`<(...)`), whose bytes a check would take from the loader
        from tfxfer.data.tables import check_text_bytes

        with open(args.data, "rb") as file:
            check_text_bytes(args.data, file.read(4096), args.encoding)


def _load_extractor(args, source, options=None):
    if options is None:
        options = _extractor_options(args, source)  # checked before the extractor (and TensorFlow) loads
    args.stage = "loading"
    import tfxfer
    from tfxfer.training.strategy import dtype_policy

    with dtype_policy(getattr(args, "precision", "float32")):  # a Keras extractor keeps the dtype it is built with
        return tfxfer.load_extractor(source, **options)


#: The data flags, their defaults, and what reads them: "table" (a CSV/TSV), "text" (texts anywhere).
_DATA_FLAGS = {"path_column": ("path", {"image table"}), "text_column": (["text"], {"text table"}),
               "label_column": (["label"], {"image table", "text table"}), "sep": (None, {"image table", "text table"}),
               "split_column": (None, {"image table", "text table"}),
               "column_names": (None, {"image table", "text table"}),
               "encoding": ("utf-8", {"image table", "text table", "text folder"}),
               "augment": (False, {"image table", "image folder"})}


def _check_data_flags(args, kind):
    """Refuses flags that the data's kind ("image folder", "text table"...; "folder" for any folder) has no use for,
    rather than ignoring them."""
    unused = [name for name, (default, readers) in _DATA_FLAGS.items()  # a command may lack one (probe: --augment)
              if getattr(args, name, None) not in (default, None)
              and not any(reader.endswith(kind) for reader in readers)]
    if unused:
        flags = " and ".join(terminal.FLAGS.get(name, f"--{name.replace('_', '-')}") for name in unused)
        article = "an" if kind[0] in "aeiou" else "a"
        raise UsageError(f"{flags} do{'es' if len(unused) == 1 else ''} nothing for {args.data!r}, {article} {kind}: "
                         f"leave {'it' if len(unused) == 1 else 'them'} out")


def _load_data(args, extractor):
    import tfxfer

    _check_data_flags(args, f"{extractor.input_kind} {'folder' if os.path.isdir(args.data) else 'table'}")
    args.stage = "loading"
    common = dict(validation_split=args.validation_split, test_split=args.test_split, seed=args.seed,
                  batch_size=args.batch_size, on_bad=args.on_bad, label_column=_one_or_list(args.label_column),
                  task=args.task, class_names=args.class_names, label_delimiter=args.label_delimiter,
                  split_column=args.split_column, sep=args.sep, column_names=args.column_names,
                  encoding=args.encoding)
    with warnings.catch_warnings():  # the skipped items are listed below, in the command line's words
        warnings.filterwarnings("ignore", message=".*left out or not read")
        if extractor.input_kind == "text":
            data = tfxfer.load_text(args.data, extractor=extractor, text_column=_one_or_list(args.text_column),
                                    **common)
        else:
            data = tfxfer.load_images(args.data, extractor=extractor, augment=getattr(args, "augment", False),
                                      path_column=args.path_column, **common)
    _say(args, data.summary())
    terminal.print_skipped(data.skipped)
    return data


def _one_or_list(values):
    return values[0] if len(values) == 1 else list(values)


def _callbacks(args):
    """One plain line per epoch when stdout is not a terminal (a pipe, a log file); Keras' progress bars otherwise."""
    if args.quiet or args.json or sys.stdout.isatty():
        return [], 0 if (args.quiet or args.json) else "auto"
    from tfxfer.training.callbacks import EpochLines

    return [EpochLines()], 0


def inspect(args):
    """`tfxfer inspect`: an extractor's blocks."""
    import tfxfer

    options = _extractor_options(args, args.source)
    args.stage = "loading"
    extractor = tfxfer.load_extractor(args.source, granularity=args.granularity, **options)
    described = extractor.describe()
    table = described.reset_index()
    facts = f", input {extractor.image_size} in {extractor.value_range}" if extractor.image_size else ""
    _say(args, f"{extractor.source}: {extractor.input_kind} extractor, {extractor.n_blocks} blocks{facts}")
    for key in ("preprocessing", "output", "cuts"):  # KerasHub: converter or tokenizer; TF Hub: where it is cut
        if key in described.attrs:
            _say(args, f"{key}: {described.attrs[key]}")
    if table.empty:
        _say(args, "It has no variables, so no blocks to freeze: use it for deep feature extraction only "
                   "(--regime feature-extraction).")
    _result(args, table)


def train(args):
    """`tfxfer train`: one regime, then the export and the report."""
    import pandas as pd

    import tfxfer

    from tfxfer.cli.edge import check_litert_conversion, export_options, said_verification
    from tfxfer.cli.outputs import check_export_flags
    from tfxfer.reports.evaluation import one_class_note
    from tfxfer.training.phases import ignored_settings

    check_export_flags(args)
    options = export_options(args)

    unused = ignored_settings(args.regime, freeze_blocks=args.freeze, warmup_epochs=args.warmup_epochs,
                              layer_decay=args.layer_decay, block_rates=args.block_rates)
    if unused:
        flag = terminal.FLAGS[unused[0]]
        raise UsageError(f"{flag} does nothing with --regime {args.regime} (every block stays frozen); pass --regime "
                         f"mid-layer or --regime fine-tune with {flag}, or leave {flag} out")
    _check_data_path(args)
    from tfxfer.cli.recipe import check_tta, head_from_flags, recipe_arguments

    head = head_from_flags(args)  # refuses a bad --hidden-units before anything loads
    extractor = _load_extractor(args, args.extractor)
    check_litert_conversion(args, [extractor], exporting=args.export is not None)
    data = _load_data(args, extractor)
    check_tta(args, extractor, data)
    callbacks, verbose = _callbacks(args)
    args.stage = "training"
    model = tfxfer.TransferModel(
        extractor, regime=args.regime, freeze_blocks=args.freeze,
        head=head,
        learning_rate=args.learning_rate, fine_tune_learning_rate=args.fine_tune_learning_rate,
        warmup_epochs=args.warmup_epochs, epochs=args.epochs, patience=args.patience, cache=not args.no_cache,
        seed=args.seed, verbose=verbose, **recipe_arguments(args),
    ).fit(data, callbacks=callbacks)
    row = {"regime": args.regime, "frozen_blocks": model.frozen_blocks_, "trainable_params": model.trainable_params_,
           "epochs": len(model.history_["loss"]), "seconds": round(model.fit_seconds_, 1)}
    # The epoch whose weights the model kept (early stopping restores an earlier one than the last)
    row.update({k: round(v[model.kept_epoch_], 4) for k, v in model.history_.items() if k.startswith("val_")})
    accuracy = model.history_.get("val_accuracy")  # spares one_class_note a pass where it is no class's share
    if note := one_class_note(model, data, accuracy=accuracy and accuracy[model.kept_epoch_]):
        warnings.warn(note, stacklevel=1)
    served = None  # the scores of the flip-averaged model that --tta exports, stored with it
    if args.tta and data.sizes.get("validation"):
        served = {f"val_{k}": v for k, v in model.evaluate(data.validation, test_time_augmentation=True).items()}
        row.update({f"{k}_tta": round(v, 4) for k, v in served.items()})
    if args.export is not None:
        args.stage = "exporting"
        row["export"] = str(tfxfer.export(model, args.export, root=args.root, data_summary=data,
                                          models_config=args.models_config, test_time_augmentation=args.tta,
                                          metrics=served,
                                          **options))
        said_verification(args, row["export"])
    if args.report:
        args.stage = "reporting"
        row["report"] = str(tfxfer.write_report(model, data, args.report, export_path=row.get("export")))
    if args.quiet and not args.json and "export" in row:
        print(row["export"], file=args.out)
    else:
        _result(args, pd.DataFrame([row]))


def tune(args):
    """`tfxfer tune`: a Keras Tuner search, resumed when `--dir` holds one; the best trial exported if asked."""
    import tfxfer

    from tfxfer.cli.edge import check_litert_conversion, export_options, said_verification
    from tfxfer.cli.extractor_options import extractor_specs, load_each
    from tfxfer.cli.flags import distribution_environment
    from tfxfer.cli.outputs import check_export_flags, check_output_folder
    from tfxfer.cli.searches import record_data_flags, recording_data_flags, take_recorded_data_flags

    check_export_flags(args)
    several = len(args.extractor) > 1
    if args.trials and args.tuner == "hyperband":  # it ran as many trials as its budget gave, silently
        raise UsageError("--trials does not apply to --tuner hyperband, whose trials follow from --epochs: leave it out")
    if several and args.freeze_choices:
        raise UsageError("--freeze-choices applies to one --extractor; with several, the probe chooses each one's "
                         "freeze depths: leave --freeze-choices out, or tune one extractor")
    specs = extractor_specs(args.extractor)
    options = [_extractor_options(args, source, own) for source, own in specs]
    # an option given as KEY=VALUE is named so in messages, not as its flag
    args.flags = {name: flag for name, flag in args.flags.items() if not any(name in own for _, own in specs)}
    formats = export_options(args)
    take_recorded_data_flags(args, resuming=True)  # "--text-column text is not a column" on a resume without them
    _check_data_path(args)
    check_output_folder(args, "--dir", args.dir)
    distribution_environment(args)
    extractors = load_each(args, options, _load_extractor)
    exporting = args.export is not None and os.environ.get("KERASTUNER_TUNER_ID", "chief").startswith("chief")
    check_litert_conversion(args, extractors, exporting=exporting)  # workers never export
    data = _load_data(args, extractors[0])
    directory, project = os.path.split(os.path.normpath(args.dir))
    space = tfxfer.SearchSpace(**({"frozen_blocks": args.freeze_choices} if args.freeze_choices else {}),
                               **({} if args.batch_norm is None else {"batch_norm": args.batch_norm}),
                               **({"warmup_epochs": _one_or_list(args.warmup_epochs)} if args.warmup_epochs else {}))
    if args.centre_rates:
        from tfxfer.cli.recipe import centred_space
        space = centred_space(args, space, extractors[0], data)
    chosen = {"extractors": list(zip(extractors, options))} if several else {"extractor": extractors[0],
                                                          "extractor_options": options[0]}
    chosen.update({"max_trials": args.trials} if args.trials else {})  # else the library's default
    search = tfxfer.TransferSearch(**chosen, space=space, tuner=args.tuner,
                                   epochs=args.epochs, patience=args.patience, directory=directory or ".",
                                   project_name=project, overwrite=args.overwrite, seed=args.seed,
                                   cache=not args.no_cache, worker_timeout=args.worker_timeout,
                                   probe_score=args.probe_score, probe_margin=args.probe_margin,
                                   verbose=0 if (args.quiet or args.json) else 1)
    args.stage = "searching"
    record_data_flags(args, before=True)  # for tfxfer export, even of a search stopped before its end
    table = search.search(data, callbacks=_callbacks(args)[0] + [recording_data_flags(args)] * args.overwrite)
    if exporting:
        args.stage = "exporting"
        fitted = search.best_model(data)
        path = tfxfer.export(fitted, args.export, root=args.root, data_summary=data, models_config=args.models_config,
                             **formats)
        said_verification(args, path)
        print(f"best trial retrained and exported to {path}", file=sys.stderr if (args.json or args.quiet) else
              sys.stdout)
        if args.quiet and not args.json:
            print(path, file=args.out)
            return
    if table.empty and not os.environ.get("KERASTUNER_TUNER_ID", "chief").startswith("chief"):  # its own folder
        return _say(args, "This worker's trials are in its chief's results (the chief's --dir), not in its own.")
    _result(args, table)


def export(args):
    """`tfxfer export`: retrains a search's best trial on the search's own extractor and settings, and exports it."""
    import tfxfer
    from tfxfer.cli.edge import check_litert_conversion, export_options, said_verification
    from tfxfer.cli.outputs import check_export_path
    from tfxfer.cli.searches import check_one_extractor, load_search_extractors, take_recorded_data_flags

    options = export_options(args)
    take_recorded_data_flags(args)
    _check_data_path(args)
    check_export_path(args, "--name", args.name)
    args.stage = "loading"
    check_one_extractor(args)
    search = tfxfer.TransferSearch.from_folder(args.search, extractor=args.extractor, verbose=0)
    load_search_extractors(args, search)  # loaded once; across extractors, the data as the first one takes it
    data = _load_data(args, search.extractor if search.extractors is None else search.extractors[0][0])
    check_litert_conversion(args, [search.extractor] if search.extractors is None else
                            [extractor for extractor, _ in search.extractors])
    args.stage = "training"
    fitted = search.best_model(data)
    args.stage = "exporting"
    path = tfxfer.export(fitted, args.name, root=args.root, data_summary=data, models_config=args.models_config,
                         **options)
    said_verification(args, path)
    print(json.dumps({"export": str(path)}) if args.json else path, file=args.out)


def demo(args):
    """`tfxfer demo`: the offline end-to-end run on scikit-learn's digits."""
    from tfxfer.demo import run_demo

    args.stage = "training"
    _, path = run_demo(per_class=args.per_class, pretrain_epochs=args.pretrain_epochs, epochs=args.epochs,
                       seed=args.seed, export_root=None if args.no_export else args.root, verbose=not args.quiet)
    if args.quiet and path is not None:
        print(path, file=args.out)
