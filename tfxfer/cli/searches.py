"""A search folder that `tfxfer export` reads: its extractors loaded as the search recorded them, or from where the
user says one is now, with what went wrong said in the command line's words."""

import os

from tfxfer.cli.commands import UsageError


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
