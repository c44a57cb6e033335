"""`--extractor SOURCE KEY=VALUE ...` (`tfxfer probe`, `tfxfer tune`): each extractor with its own `load_extractor`
options, and the data wherever it stands among them; read without TensorFlow."""

import argparse
import os

from tfxfer.cli.commands import UsageError
from tfxfer.cli.flags import positive, whole
from tfxfer.cli.terminal import FLAGS


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


#: The flags' own check of a whole number from 1 (`alpha=` is checked by `positive`, as `--alpha` is).
_WHOLE = whole(1)


#: The `load_extractor` options that `--extractor SOURCE KEY=VALUE` takes, and their types.
OPTIONS = {"weights": str, "alpha": positive, "preprocessor": str, "output_key": str, "granularity": str,
           "pooling": str, "sequence_length": _WHOLE, "image_size": _image_size, "cache_sequences": _yes_or_no}


def _is_option(item):
    key, equals, _ = item.partition("=")
    return bool(equals) and key in OPTIONS


def settle_data(args, unknown=()):
    """Gives `args.data` the data that argparse took for an extractor option: `--extractor SOURCE` takes every word
    after it, so `tfxfer probe --extractor A photos` left the data out ("the following arguments are required").
    The one word after a source that is neither KEY=VALUE nor given the data before it is the data; others are
    refused, naming them.

    Example:
        >>> import argparse
        >>> args = argparse.Namespace(data=None, extractor=[["MobileNetV2", "alpha=0.35", "photos"]])
        >>> settle_data(args)
        >>> args.data, args.extractor
        ('photos', [['MobileNetV2', 'alpha=0.35']])
    """
    if any(not spec[0] for spec in args.extractor):  # --extractor= or --extractor ''
        args.parser.error("--extractor needs a SOURCE: a TF Hub handle, a SavedModel folder or a keras.applications "
                          "name")
    after_a_flag = [word for word in [args.data, *unknown] if word is not None and _is_option(word)
                    and not os.path.exists(word)]
    if after_a_flag:  # taken for the data, or unrecognized
        args.parser.error(f"{after_a_flag[0]!r} is an extractor option: give it right after its --extractor SOURCE, "
                          "before any other flag")
    strays = [(spec, position) for spec in args.extractor for position, item in enumerate(spec) if position
              and not _is_option(item) and ("=" not in item or os.path.exists(item))]  # a=b is a KEY=VALUE typo
    if args.data is None and len(strays) == 1:
        spec, position = strays.pop()
        args.data = spec.pop(position)
    if strays:
        words = " and ".join(repr(spec[position]) for spec, position in strays)
        data = f"the data is {args.data!r}" if args.data is not None else "the data is one word"
        args.parser.error(f"--extractor takes one SOURCE, then KEY=VALUE options; {words} "
                          f"{'is' if len(strays) == 1 else 'are'} neither ({data}): repeat --extractor before each "
                          "extractor")
    if args.data is None:
        args.parser.error("the following arguments are required: data")


def extractor_specs(specs):
    """`(source, options)` from `--extractor SOURCE KEY=VALUE ...`: numbers as numbers, `weights=none` as None
    (random weights; `pooling=none` is KerasHub's "no pooling", not its default).

    Example:
        >>> extractor_specs([["MobileNetV2", "alpha=0.35", "weights=none"], ["./glove"]])
        [('MobileNetV2', {'alpha': 0.35, 'weights': None}), ('./glove', {})]
    """
    extractors = []
    for source, *pairs in specs:
        options = {}
        for pair in pairs:
            key, equals, value = pair.partition("=")
            if not equals or key not in OPTIONS:
                raise UsageError(f"--extractor {source}: {pair!r} is not KEY=VALUE with KEY one of "
                                 f"{', '.join(OPTIONS)}")
            if key in options:  # the last one won, silently (a tester's find)
                raise UsageError(f"--extractor {source}: {key}= is given twice; give it once")
            try:
                options[key] = None if (key, value.lower()) == ("weights", "none") else OPTIONS[key](value)
            except (ValueError, argparse.ArgumentTypeError):
                kind = {positive: "a number above 0", _WHOLE: "a whole number from 1", _yes_or_no: "true or false",
                        _image_size: "HEIGHTxWIDTH or one side, e.g. 96x96"}[OPTIONS[key]]
                raise UsageError(f"--extractor {source}: {pair!r}: {key} must be {kind}") from None
        extractors.append((source, options))
    return extractors


def load_each(args, options, load):
    """The extractors of `tfxfer tune`, each loaded by `load(args, source, its options)`; where one refuses an option
    that a flag gave every extractor, the refusal says how to give it to one (following its advice, "leave
    --preprocessor out", broke the encoder that needed it: a tester's find)."""
    flagged = [name for name in OPTIONS if getattr(args, name, None) not in (None, False)]  # tune's flags of them
    loaded = []
    for (source, *_), own in zip(args.extractor, options):
        try:
            loaded.append(load(args, source, own))
        except ValueError as error:
            refused = [FLAGS[name] for name in flagged if f"{name}=" in str(error)]  # not "does not exist"
            if len(args.extractor) < 2 or not refused:
                raise
            verb = "applies" if len(refused) == 1 else "apply"
            raise ValueError(f"{str(error).rstrip('.')} ({' and '.join(refused)} {verb} to every --extractor; give an "
                             "option to one alone as KEY=VALUE after it).") from error
    return loaded


def flag_for_option(args, unknown):
    """Where a command whose extractor options are flags (`train`, `lr-find`...) was given one as KEY=VALUE, names the
    flag (it said "unrecognized arguments: image_size=64": a tester's find)."""
    given = next((word for word in unknown if _is_option(word)), None)
    if given is not None and not getattr(args, "settle", None):
        flag = FLAGS.get(given.partition("=")[0], f"--{given.partition('=')[0].replace('_', '-')}")
        has = f"as flags ({flag})" if f"{flag} " in args.parser.format_usage() else f"as flags, and no {flag}"
        args.parser.error(f"{given!r}: tfxfer {args.command} takes extractor options {has}; KEY=VALUE after "
                          "--extractor is for tune and probe")
