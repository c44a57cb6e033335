"""The `tfxfer` command line: a thin layer over the public API (`commands`), a parser that answers `--help` without
importing TensorFlow (`parser`), what it does for the terminal (`terminal`) and on Ctrl-C (`interrupts`).

Errors are one line on stderr, in the words of the flags, with exit code 1 (2 for usage errors, 130 for Ctrl-C);
`--debug` shows TensorFlow's own messages and the traceback. With `--json` or `--quiet`, stdout holds the result
alone: what libraries print on the way (Keras Tuner's trial tables) goes to stderr.
"""

import contextlib
import os
import sys
import warnings

from tfxfer.cli import interrupts, terminal
from tfxfer.cli.commands import UsageError
from tfxfer.cli.extractor_options import flag_for_option
from tfxfer.cli.parser import build_parser


def main(argv=None):
    """Runs the command line; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted, 141 when stdout's
    reader has gone).

    Example:
        >>> main(["--version"])  # doctest: +SKIP
        tfxfer 0.1.0
    """
    own_process = argv is None
    argv = sys.argv[1:] if own_process else list(argv)
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    # --extractor=SOURCE took no KEY=VALUE after it (argparse gives the = form its one value)
    argv = [part for word in argv for part in (word.split("=", 1) if word.startswith("--extractor=") else [word])]
    args, unknown = parser.parse_known_args(argv)
    if getattr(args, "settle", None):  # `--extractor SOURCE KEY=VALUE ...` took the data that followed it
        args.settle(args, unknown)
    flag_for_option(args, unknown)
    if unknown:  # named by the command they were given to, whose --help lists what it takes
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.stage, args.out, args.argv = "loading", sys.stdout, argv  # argv: which flags were given, defaults or not
    if own_process:
        interrupts.end_on_interrupt(lambda: terminal.interrupted(args.command, args.stage))
    try:
        with terminal.quiet_stderr(enabled=not args.debug), warnings.catch_warnings():
            warnings.showwarning = terminal.warning_line(args.command, args.debug)
            results_only = contextlib.redirect_stdout(sys.stderr) if (args.json or args.quiet) else \
                contextlib.nullcontext()
            with results_only:
                code = _run(args)
    except BrokenPipeError:  # stdout's reader has gone (`| head`): nothing more to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        line = terminal.reader_gone(args.command, args.stage)
        if line:  # work was cut short, not only its output
            print(line, file=sys.stderr)
        return 141
    except KeyboardInterrupt:
        print(terminal.interrupted(args.command, args.stage), file=sys.stderr)
        if own_process:
            # TensorFlow's threads (tf.data's prefetching, the op pool) may still be inside an op that Ctrl-C cut
            # short; Python's teardown under them crashed the process now and then (exit -11 instead of 130).
            # Nothing is left to save, so the process ends here, without the teardown.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        return 130
    if own_process:
        interrupts.end_quietly_on_interrupt(code)
    return code


def _run(args):
    try:
        args.run(args)
    except UsageError as error:
        print(f"tfxfer {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise
    except Exception as error:  # One line for people; the traceback with --debug.
        if terminal.was_interrupted(error):
            raise KeyboardInterrupt from None
        if args.debug:
            raise
        words = terminal.cli_words(terminal.one_line(error), getattr(args, "flags", terminal.FLAGS))
        print(f"tfxfer {args.command}: error: {words}", file=sys.stderr)
        return 1
    return 0
