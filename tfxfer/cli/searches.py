"""A search folder that `tfxfer export` reads: its extractors loaded as the search recorded them, or from where the
user says one is now, and its data read with the flags `tfxfer tune` recorded, with what went wrong said in the
command line's words."""

import json
import os

from tfxfer.cli.commands import UsageError, _say
from tfxfer.cli.flags import was_given
from tfxfer.cli.terminal import FLAGS, cli_words
from tfxfer.search import SEARCH_FILE

#: The data flags of `tfxfer tune`, recorded beside its search (`RECORD`) so that `tfxfer export` reads the data as
#: the search did without the user giving them again.
DATA_FLAGS = ("label_column", "text_column", "path_column", "split_column", "column_names", "sep", "encoding", "task",
              "class_names", "label_delimiter", "validation_split", "test_split", "batch_size", "augment", "on_bad",
              "seed")
RECORD = "tfxfer_data_flags.json"


def record_data_flags(args, before=False):
    """Writes the data flags of `tfxfer tune` into its search folder (`--dir`), on the chief: for a new search, or a
    search recorded without them; a resumed search keeps those it started with. With `--overwrite`, which empties
    the folder when the search begins, only after the search (not `before`)."""
    from tfxfer.search.results import write_json

    path = os.path.join(args.dir, RECORD)
    if not os.environ.get("KERASTUNER_TUNER_ID", "chief").startswith("chief"):
        return  # the chief records it
    if args.overwrite and before:
        return  # the folder is about to be emptied: `recording_data_flags` writes them once the trials begin
    if args.overwrite or not os.path.exists(path) or not os.path.exists(os.path.join(args.dir, SEARCH_FILE)):
        write_json(path, {name: getattr(args, name) for name in DATA_FLAGS})  # (the last: none began with them)


def recording_data_flags(args):
    """A Keras callback that records the data flags as each trial begins to train: with `--overwrite`, which empties
    the folder as the search begins, a search stopped before its end keeps them too."""
    import keras

    class Record(keras.callbacks.Callback):
        written = False  # once: the first trial's first phase begins after the folder was emptied

        def on_train_begin(self, logs=None):
            if not Record.written:
                record_data_flags(args)
                Record.written = True

    return Record()


def take_recorded_data_flags(args, resuming=False):
    """Gives the data flags that `tfxfer export` (or, `resuming`, `tfxfer tune` resuming a search) was not given the
    values its search recorded, and says which; refuses a `--search` that is no search folder."""
    folder = args.dir if resuming else args.search
    if not resuming:

        if not os.path.isfile(os.path.join(folder, SEARCH_FILE)):
            held = "does not exist" if not os.path.exists(folder) else f"is not a search folder (no {SEARCH_FILE})"
            raise UsageError(f"--search {folder} {held}: pass the --dir of a `tfxfer tune` run")
    path = os.path.join(folder, RECORD)
    if not os.path.isfile(path) or (resuming and (args.overwrite or not os.path.isfile(os.path.join(folder,
                                                                                                   SEARCH_FILE)))):
        # a search run from Python, or before 2026-12-07; one --overwrite starts afresh; or one that never began
        # (stopped or failed before its record: a later search took its flags up, a tester's find)
        return
    with open(path) as file:
        recorded = json.load(file)
    taken = []
    for name, value in recorded.items():
        flag = FLAGS.get(name, f"--{name.replace('_', '-')}")
        if name in DATA_FLAGS and not was_given(args, flag) and getattr(args, name) != value:
            setattr(args, name, value)
            taken.append(cli_words(f"{name}={value!r}"))  # as it would be typed: --sep tab, --text-column 'a b'

    if taken:
        _say(args, f"Reading the data as the search did: {', '.join(taken)}")


def check_one_extractor(args):
    """Refuses `--extractor` for a search across several extractors (it said "extractor= replaces the one of a
    single-extractor search", in Python's words: a tester's find)."""
    from tfxfer.search.results import search_record

    if args.extractor and isinstance(search_record(*os.path.split(os.path.normpath(args.search))).get("extractor"),
                                     list):
        raise UsageError(f"--search {args.search} searched across several extractors, which export loads from where "
                         "the search found them: leave --extractor out (it says where the one extractor of a search "
                         "is now)")


def load_search_extractors(args, search):
    """Loads the extractors of `search` (from `TransferSearch.from_folder`) in place; refuses a recorded extractor
    that is no longer where the search found it, and an `--extractor` whose weights are not the search's."""
    import tfxfer
    from tfxfer.search.results import search_record

    several = search.extractors is not None
    members = search.extractors if several else [(search.extractor, search.extractor_options or {})]
    for source, _ in members:
        if not args.extractor and os.path.isabs(str(source)) and not os.path.exists(str(source)):
            advice = ("put it back there (a search across extractors takes them from where it found them)" if several
                      else "pass --extractor with where it is now")
            raise UsageError(f"--search {args.search}: its extractor {source} is not there any more (moved or "
                             f"deleted): {advice}")
    try:
        loaded = [(tfxfer.load_extractor(source, **options), options) for source, options in members]
    except (ValueError, OSError) as error:  # its own advice would name load_extractor's options, not export's flags
        if not args.extractor:
            raise
        raise UsageError(f"--extractor {args.extractor} did not load ({str(error).split('. ')[0]}); export retrains "
                         "the search's own extractor: pass where that model is now, or leave --extractor out") from None
    if args.extractor:
        extractor = loaded[0][0]
        recorded = search_record(*os.path.split(os.path.normpath(args.search))).get("extractor_weights")
        if recorded is not None and extractor.fingerprint(extractor.n_blocks) != recorded:
            raise UsageError(f"--extractor {args.extractor} is not the search's extractor (its weights differ from "
                             "those the search recorded): pass the search's extractor where it is now")
    if several:
        search.extractors = loaded
    else:
        search.extractor = loaded[0][0]
