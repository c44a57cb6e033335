"""`tfxfer predict`: an export run on files, texts or a CSV, as a client runs it."""

from tfxfer.cli import terminal
from tfxfer.cli.commands import UsageError, _one_or_list, _result
from tfxfer.cli.flags import was_given


def _check_inputs(args, input_kind):
    """Refuses text flags and tables for an image model; `input_kind` None (not known yet) checks nothing."""
    from tfxfer.data.tables import table_files

    if input_kind != "image":
        return
    text_only = [flag for flag, given in (("--texts", args.texts), ("--text-column", args.text_column),
                                          ("--sep", args.sep), ("--column-names", args.column_names),
                                          ("--encoding", was_given(args, "--encoding"))) if given]
    if text_only:
        raise UsageError(f"{terminal.these_apply(text_only)} to text models; {args.export} takes images: leave "
                         f"{'it' if len(text_only) == 1 else 'them'} out")
    tables = table_files(args.inputs)
    if tables:  # the library's advice is a pandas column
        raise UsageError(f"{tables[0]} is a table; {args.export} takes image files: pass the images or their folder")


def predict(args):
    """`tfxfer predict`: loads the export, runs it, prints a row per example (and the inputs it left out)."""
    from tfxfer.serving.formats import recorded_input_kind
    from tfxfer.serving.versioning import check_exists

    check_exists(args.export)
    _check_inputs(args, recorded_input_kind(args.export))  # from its metadata: before TensorFlow loads
    import tfxfer

    args.stage = "loading"
    exported = tfxfer.load_exported(args.export)
    _check_inputs(args, exported.input_kind)
    args.stage = "predicting"
    table = exported.predict(args.inputs, text_column=args.text_column and _one_or_list(args.text_column),
                             on_bad=args.on_bad, texts=args.texts, sep=args.sep, column_names=args.column_names,
                             encoding=args.encoding)
    terminal.print_skipped(skipped := table.attrs.get("skipped", []))
    if skipped and table.empty:
        raise ValueError(f"every input was left out ({len(skipped)}, listed above): nothing was predicted")
    if "text" in table and not args.json:  # a row per text, however long; --json gives each whole
        table = table.assign(text=table["text"].map(terminal.table_cell))
    _result(args, table)
