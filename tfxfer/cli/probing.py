"""`tfxfer probe`: every block boundary of each extractor scored on frozen features."""

from tfxfer.cli.commands import _check_data_path, _load_data, _result, _say
from tfxfer.cli.extractor_options import OPTIONS, extractor_specs


def probe(args):
    """`tfxfer probe`: every block boundary of each extractor scored on frozen features."""
    from tfxfer.cli.terminal import FLAGS

    specs = extractor_specs(args.extractor)
    # Extractor options are KEY=VALUE after --extractor here: a message's weights='w.h5' stays as it is.
    args.flags = {name: flag for name, flag in FLAGS.items() if name not in OPTIONS}
    _check_data_path(args)  # before TensorFlow loads
    import tfxfer
    from tfxfer.search.hypermodel import extractor_key
    from tfxfer.search.probing import check_named_once, load_source

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
