"""What Ctrl-C does to a `tfxfer` command: it unwinds what is under way, and ends the process for certain, with one
line that says what was interrupted and exit code 130; after a command has given its result, it ends it at once."""

import os
import signal
import sys
import threading


def end_on_interrupt(line, grace=15.0):
    """Makes Ctrl-C end this process for certain, with `line()` on stderr and exit code 130.

    The first Ctrl-C raises `KeyboardInterrupt` as usual, so that what is under way unwinds and cleans up. Python
    ignores an interrupt that lands in a finalizer (such as a TensorFlow function's `__del__`), and the command went
    on, to the end: such an interrupt is delivered again. If the process is still running `grace` seconds later, or
    at a second Ctrl-C, it ends at once.

    Args:
        line: A function returning the line to print (the stage the command is at when the process ends).
        grace: Seconds the command gets to unwind.
    """
    def end():
        print(line(), file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)

    def handle(signum, frame):
        if getattr(handle, "timer", None) is not None:
            end()
        handle.timer = threading.Timer(grace, end)
        handle.timer.daemon = True
        handle.timer.start()
        raise KeyboardInterrupt

    def unraisable(report):  # "Exception ignored in ...": a Ctrl-C that landed in a finalizer is delivered again
        if not issubclass(report.exc_type, KeyboardInterrupt):
            sys.__unraisablehook__(report)
        else:  # a search went on after it, and ended with exit 0 (a tester's find)
            signal.setitimer(signal.ITIMER_REAL, 0.05)  # not here: an exception raised in the hook is ignored too

    def again(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGALRM, again)
    sys.unraisablehook = unraisable


def end_quietly_on_interrupt(code):
    """Once a command has given its result: a Ctrl-C during Python's teardown (seconds, with TensorFlow loaded) ends
    the process at once with the command's exit `code`, not with a traceback and 130 for work that was done."""
    def handle(signum, frame):
        sys.stdout.flush()
        os._exit(code)

    signal.setitimer(signal.ITIMER_REAL, 0)  # a Ctrl-C lost in a finalizer as the command ended: it ended anyway
    signal.signal(signal.SIGINT, handle)
