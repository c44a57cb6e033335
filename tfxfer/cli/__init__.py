"""The `tfxfer` command line: a thin layer over the public API (`commands`), a parser that answers `--help` without
importing TensorFlow (`parser`), and what it does for the terminal (`terminal`).

Errors are one line on stderr, in the words of the flags, with exit code 1 (2 for usage errors, 130 for Ctrl-C);
`--debug` shows TensorFlow's own messages and the traceback.
"""

import sys

from tfxfer.cli import terminal
from tfxfer.cli.commands import UsageError
from tfxfer.cli.parser import build_parser


def main(argv=None):
    """Runs the command line; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted).

    Example:
        >>> main(["--version"])  # doctest: +SKIP
        tfxfer 0.1.0
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    with terminal.quiet_stderr(enabled="--debug" not in argv):
        parser = build_parser()
        args = parser.parse_args(argv)
        args.stage = "loading"
        try:
            args.run(args)
        except KeyboardInterrupt:
            print(terminal.interrupted(args.command, args.stage), file=sys.stderr)
            return 130
        except UsageError as error:
            print(f"tfxfer {args.command}: error: {error}", file=sys.stderr)
            return 2
        except Exception as error:  # One line for people; the traceback with --debug.
            if args.debug:
                raise
            message = terminal.cli_words(str(error).strip()).splitlines()[0] if str(error).strip() else \
                type(error).__name__
            print(f"tfxfer {args.command}: error: {message}", file=sys.stderr)
            return 1
    return 0
