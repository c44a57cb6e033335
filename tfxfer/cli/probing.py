"""`tfxfer probe`: every block boundary of each extractor scored on frozen features."""

from tfxfer.cli.commands import UsageError, _check_data_path, _load_data, _result, _say


def _image_size(text):
    """`96` or `96x128` (height x width) as `(height, width)`."""
    sides = [int(side) for side in text.lower().split("x")]
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise ValueError(text)
    return (sides[0], sides[-1])


def _yes_or_no(text):
    """`true`/`false` (or yes/no, 1/0) as a bool."""
    answers = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
    if text.lower() not in answers:
        raise ValueError(text)
    return answers[text.lower()]


#: The `load_extractor` options `tfxfer probe --extractor SOURCE KEY=VALUE` takes, and their types.
_PROBE_OPTIONS = {"weights": str, "alpha": float, "preprocessor": str, "output_key": str, "granularity": str,
                  "pooling": str, "sequence_length": int, "image_size": _image_size, "cache_sequences": _yes_or_no}


def _probe_extractors(specs):
    """`(source, options)` from `--extractor SOURCE KEY=VALUE ...`: numbers as numbers, `none` as None."""
    extractors = []
    for source, *pairs in specs:
        options = {}
        for pair in pairs:
            key, equals, value = pair.partition("=")
            if not equals or key not in _PROBE_OPTIONS:
                raise UsageError(f"--extractor {source}: {pair!r} is not KEY=VALUE with KEY one of "
                                 f"{', '.join(_PROBE_OPTIONS)}")
            if key in options:  # the last one won, silently (a tester's find)
                raise UsageError(f"--extractor {source}: {key}= is given twice; give it once")
            try:
                options[key] = None if value == "none" else _PROBE_OPTIONS[key](value)
            except ValueError:
                kind = {float: "a number", int: "a whole number", _yes_or_no: "true or false",
                        _image_size: "HEIGHTxWIDTH or one side, e.g. 96x96"}[_PROBE_OPTIONS[key]]
                raise UsageError(f"--extractor {source}: {pair!r}: {key} must be {kind}") from None
        extractors.append((source, options))
    return extractors


def probe(args):
    """`tfxfer probe`: every block boundary of each extractor scored on frozen features."""
    import tfxfer

    from tfxfer.cli.terminal import FLAGS
    from tfxfer.search.hypermodel import extractor_key
    from tfxfer.search.probing import check_named_once, load_source

    specs = _probe_extractors(args.extractor)
    # Extractor options are KEY=VALUE after --extractor here: a message's weights='w.h5' stays as it is.
    args.flags = {name: flag for name, flag in FLAGS.items() if name not in _PROBE_OPTIONS}
    _check_data_path(args)
    args.stage = "loading"
    check_named_once([extractor_key(*spec) for spec in specs])  # before anything loads
    first = load_source(*specs[0])
    data = _load_data(args, first)
    args.stage = "probing"
    table = tfxfer.probe(data, [(first, specs[0][1]), *specs[1:]], rank_by=args.rank_by)
    args.stage = "writing its results"  # "nothing was written" would no longer be true
    if args.plot:
        tfxfer.plot_probe(table, path=args.plot)
        _say(args, f"plot written to {args.plot}")
    _result(args, table.round(4))
