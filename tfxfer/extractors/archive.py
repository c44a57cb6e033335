"""Safe extraction of TF Hub's compressed format (a `.tar.gz` of a SavedModel folder)."""

import gzip
import hashlib
import lzma
import os
import posixpath
import shutil
import tarfile
import tempfile
import zlib


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")

#: Largest total size an archive may unpack to. A SavedModel of a large BERT is about 1.5 GB.
MAX_UNPACKED_BYTES = 8 * 1024**3

#: What reading a cut or damaged compressed tar raises, from tarfile and the decompressors under it.
_DAMAGED = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


def is_archive(path):
    """Whether `path` names a tar archive by its suffix."""
    return str(path).lower().endswith(ARCHIVE_SUFFIXES)


def _refuse(archive, member, why):
    return ValueError(
        f"Refusing to extract {archive}: member {member.name!r} {why}. A TF Hub archive holds only files and folders "
        "inside one SavedModel folder; rebuild it with `tar -czf model.tar.gz -C model_dir .`."
    )


def _check_member(archive, member):
    name = member.name
    if name.startswith("/") or posixpath.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise _refuse(archive, member, "has an absolute path")
    normal = posixpath.normpath(name)
    if normal == ".." or normal.startswith("../"):
        raise _refuse(archive, member, "leaves the target folder ('..' in its path)")
    if member.issym() or member.islnk():
        target = member.linkname
        if member.issym():
            target = posixpath.join(posixpath.dirname(normal), target)
        target = posixpath.normpath(target)
        if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise _refuse(archive, member, f"is a link to {member.linkname!r}, outside the target folder")
    elif not (member.isfile() or member.isdir()):
        raise _refuse(archive, member, "is a device, FIFO or other special file")


def extract_archive(archive, cache_dir=None, max_bytes=MAX_UNPACKED_BYTES):
    """Extracts a SavedModel archive into a cache folder, refusing members that would escape it.

    Every member is checked before anything is written: absolute paths, `..`, links pointing out of the folder and
    special files are refused with an error naming the member, and the total unpacked size is bounded. The folder is
    keyed by the archive's path, size and modification time, so a changed archive is extracted again, and it is
    written under a temporary name and renamed, so a reader never sees a half-extracted model.

    Args:
        archive: Path of a `.tar.gz`, `.tgz` or `.tar` file.
        cache_dir: Folder to extract into; defaults to `$TFHUB_CACHE_DIR` or the system temp folder's `tfhub_modules`.
        max_bytes: Largest total size of the extracted files.

    Returns:
        The path of the extracted SavedModel folder.

    Raises:
        ValueError: The archive is unreadable, cut short or damaged, or holds a member that is refused.
        OSError: The cache folder cannot take the extracted files (full or read-only); nothing is left there.

    Example:
        >>> import os, tarfile
        >>> os.makedirs(tmp_dir, exist_ok=True)
        >>> with tarfile.open(f"{tmp_dir}/hub.tar.gz", "w:gz") as tar:
        ...     tar.add(hub_folder, arcname=".")
        >>> path = extract_archive(f"{tmp_dir}/hub.tar.gz", cache_dir=tmp_dir)
        >>> os.path.isfile(os.path.join(path, "saved_model.pb"))
        True
    """
    archive = os.path.abspath(archive)
    stat = os.stat(archive)
    key = hashlib.sha1(f"{archive}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    if cache_dir is None:
        cache_dir = os.environ.get("TFHUB_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "tfhub_modules")
    target = os.path.join(cache_dir, f"archive_{key}")
    if os.path.isdir(target):
        return _saved_model_root(target)
    try:
        tar = tarfile.open(archive, "r:*")
    except (*_DAMAGED, OSError) as error:
        reason = " ".join(str(error).split())  # tarfile lists each method tried on a line of its own.
        raise ValueError(f"{archive} is not a readable tar archive ({reason}); pass a SavedModel folder instead.") \
            from None
    partial = f"{target}.partial.{os.getpid()}"
    with tar:
        try:
            members = tar.getmembers()
            total = 0
            for member in members:
                _check_member(archive, member)
                total += member.size
                if total > max_bytes:
                    raise _refuse(archive, member, f"takes the unpacked size past the limit of {max_bytes} bytes")
            os.makedirs(cache_dir, exist_ok=True)
            tar.extractall(partial, members=members, filter="data")
        except BaseException as error:
            shutil.rmtree(partial, ignore_errors=True)
            if isinstance(error, _DAMAGED):
                raise ValueError(f"{archive} is cut short or damaged ({type(error).__name__}: {error}); download it "
                                 "again, or pass the SavedModel folder instead.") from None
            if isinstance(error, OSError):
                raise OSError(error.errno, f"Could not extract {archive} into {cache_dir} ({error.strerror}); free "
                                           "space there or set TFHUB_CACHE_DIR to another folder.") from None
            raise
    try:
        os.replace(partial, target)
    except OSError:  # Another process finished extracting the same archive first.
        shutil.rmtree(partial, ignore_errors=True)
    return _saved_model_root(target)


def _saved_model_root(folder):
    """The folder itself, or its only subfolder when the archive wrapped the SavedModel in one."""
    entries = os.listdir(folder)
    if "saved_model.pb" not in entries and len(entries) == 1 and os.path.isdir(os.path.join(folder, entries[0])):
        return os.path.join(folder, entries[0])
    return folder
