"""Where a command writes, checked before any work (which a refused output would lose): folders that are files or
inside the data folder, export names and versions, report folders."""

import os

from tfxfer.cli import terminal
from tfxfer.cli.commands import UsageError


def check_output_folder(args, flag, folder, given=None):
    """Refuses an output folder that is a file, or inside the data folder (whose next read would take its files as
    examples, and whose classes a search's --overwrite would delete)."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{flag} {given or folder}: {folder} is a file; it must be a folder (or not exist yet): pass "
                         f"another {flag}")
    data = os.path.realpath(args.data)
    if os.path.isdir(data) and (os.path.realpath(folder) + os.sep).startswith(data + os.sep):
        raise UsageError(f"{flag} {folder} is inside the data folder {args.data}: its files would be read as examples "
                         f"next time; pass a {flag} outside it")


def check_export_path(args, flag, name):
    """Before any training, which a refused export would lose: the export's name, its folder and versions."""
    from tfxfer.serving.versioning import check_format, check_name

    check_output_folder(args, "--root", args.root)
    check_output_folder(args, flag, os.path.join(args.root, name), given=name)
    try:
        check_name(name)
        check_format(os.path.join(args.root, name), args.format)
    except ValueError as error:
        raise UsageError(f"{flag} {name}: {error}") from None


def check_export_flags(args):
    if args.models_config and args.export is None:
        raise UsageError("--models-config writes the models.config of an export: pass --export NAME with it")
    if isinstance(args.models_config, str):  # BASE_PATH
        from tfxfer.serving.versioning import check_base_path
        try:
            check_base_path(args.models_config)
        except ValueError as error:
            raise UsageError(terminal.cli_words(str(error)).rstrip(".")) from None
    if args.export is not None:  # before the training, which would be lost to a refused export
        check_export_path(args, "--export", args.export)
    if getattr(args, "report", None):
        from tfxfer.reports.folders import check_report_folder
        try:  # before the training: nothing a user had is replaced
            check_report_folder(args.report)
        except FileExistsError as error:
            raise UsageError(f"--report {error}") from None
