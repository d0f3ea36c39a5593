"""A run or sweep folder's files, read and written as untrusted input.

Folders travel: a colleague's sweep, a cluster's scratch, a paper's archive.
So every file dlrun reads from one comes through here: a regular file only (a
FIFO or a device could block or never end), inside its folder even through a
link (a link to ~/.ssh is not the folder's), at most a size cap, and parsed so
that no content can hang dlrun, exhaust its memory or raise a traceback: JSON
and YAML of plain values only, no YAML aliases (a "billion laughs" file is a
few lines of them), nesting at most MAX_DEPTH deep, a checkpoint a zip whose
entries are stored and fit in the file. Whatever fails is one line naming the
file (UnusableFile, exit 2).

Writing never follows a link inside a folder: directories are made or checked
by `make_dir`, files are opened without following a link (`open_log`), and
atomic writes rename a file created here over the name, which replaces a link
rather than writing through it.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import IO, Any

from dlrun.errors import UnusableFile, WriteError

KIB, MIB = 1 << 10, 1 << 20
TEXT_CAP = 8 * MIB  # config.yaml, summary.json, a sweep's records: dlrun writes a few KiB
TABLE_CAP = 256 * MIB  # metrics.csv, layers.csv: a million epochs' rows
ARRAY_CAP = 256 * MIB  # predictions.npz once unpacked
CHECKPOINT_CAP = 64 << 30  # last.pt, best.pt: torch.load holds all of it in memory
MAX_DEPTH = 64  # nesting of JSON and YAML; dlrun's own files nest 4 deep

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _size(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n / KIB:.0f} KiB"


def inside(path: Path, root: Path) -> bool:
    """Whether `path`, every link followed, stays inside `root` (itself resolved)."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def open_regular(path: Path, cap: int, root: Path | None = None) -> IO[bytes]:
    """`path` opened for reading once it is known to be a regular file of at most `cap` bytes.

    `root`: the folder the file belongs to; a link that leads out of it is
    refused. (None: a file the user named themselves, which may be anywhere.) FileNotFoundError passes through, so
    callers can tell a missing file from an unusable one.
    """
    path = Path(path)
    if root is not None and not inside(path, root):
        if not os.path.lexists(path):
            raise FileNotFoundError(errno.ENOENT, "No such file", str(path))
        raise UnusableFile(path, "is a link to outside its folder; dlrun does not follow it")
    try:
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as e:
        raise UnusableFile(path, f"cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a file")
            raise UnusableFile(path, f"is {kind}, not a regular file; dlrun reads only files")
        if info.st_size > cap:
            raise UnusableFile(
                path, f"is {_size(info.st_size)}, more than dlrun reads ({_size(cap)})"
            )
        if _O_NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: Path, cap: int, root: Path | None = None) -> bytes:
    with open_regular(path, cap, root) as f:
        data = f.read(cap + 1)  # the file may have grown since fstat
    if len(data) > cap:
        raise UnusableFile(path, f"is more than dlrun reads ({_size(cap)})")
    return data


def read_text(path: Path, cap: int = TEXT_CAP, root: Path | None = None) -> str:
    data = read_bytes(path, cap, root)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UnusableFile(path, "is not UTF-8 text") from None


def read_json(path: Path, cap: int = TEXT_CAP, root: Path | None = None) -> Any:
    """A JSON file of plain values (objects, arrays, strings, numbers, true/false/null)."""
    text = read_text(path, cap, root)
    try:
        value = json.loads(text)
    except RecursionError:
        raise UnusableFile(path, f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError, and an integer of more than 4300 digits
        where = f" (line {e.lineno})" if hasattr(e, "lineno") else ""
        raise UnusableFile(path, f"is not valid JSON{where}") from None
    _check_plain(value, path)
    return value


def read_yaml(path: Path, cap: int = TEXT_CAP, root: Path | None = None) -> Any:
    """A YAML file of plain values: safe tags only, no anchors or aliases, bounded nesting."""
    import yaml

    text = read_text(path, cap, root)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        depth = 0
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise UnusableFile(path, "uses YAML anchors or aliases; dlrun writes none")
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise UnusableFile(path, f"nests deeper than {MAX_DEPTH} levels")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
        value = yaml.load(text, Loader=loader)
    except UnusableFile:
        raise
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UnusableFile(path, f"is not valid YAML{where}") from None
    _check_plain(value, path)
    return value


def _check_plain(value: Any, path: Path, depth: int = 0) -> None:
    """Dicts with string keys, lists, strings, numbers, booleans and null; nothing else."""
    if depth > MAX_DEPTH:
        raise UnusableFile(path, f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnusableFile(path, f"has a key that is not text ({key!r:.40})")
            _check_plain(item, path, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_plain(item, path, depth + 1)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise UnusableFile(path, f"holds a {type(value).__name__}, not a plain value")


def open_checkpoint(path: Path, cap: int, root: Path | None = None) -> IO[bytes]:
    """A checkpoint file opened for torch.load: regular, and a zip whose entries fit in it.

    torch.save writes an uncompressed zip; a compressed entry or entries larger
    than the file (a zip bomb) cannot be one.
    """
    f = open_regular(path, cap, root)
    try:
        size = os.fstat(f.fileno()).st_size
        with zipfile.ZipFile(f) as archive:
            entries = archive.infolist()
        if any(e.compress_type != zipfile.ZIP_STORED for e in entries) or (
            sum(e.file_size for e in entries) > size
        ):
            raise UnusableFile(path, "is not a checkpoint torch.save wrote (compressed entries)")
        f.seek(0)
        return f
    except UnusableFile:
        f.close()
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        f.close()
        raise UnusableFile(path, "is not a readable checkpoint (not a torch zip file)") from None
    except BaseException:
        f.close()
        raise


def check_archive(path: Path, cap: int = ARRAY_CAP, root: Path | None = None) -> None:
    """An .npz whose members, unpacked, stay under `cap` (a zip bomb is refused)."""
    with open_regular(path, cap, root) as f:
        try:
            with zipfile.ZipFile(f) as archive:
                total = sum(e.file_size for e in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            raise UnusableFile(path, "is not a readable .npz archive") from None
    if total > cap:
        raise UnusableFile(path, f"unpacks to {_size(total)}, more than dlrun reads")


# --- writing -------------------------------------------------------------------------


def _link_refused(path: Path) -> WriteError:
    why = "is a symbolic link; dlrun never writes through a link inside a run folder"
    return WriteError(path, OSError(errno.ELOOP, why))


def make_dir(path: Path) -> Path:
    """Make a folder inside a run or sweep folder, or check the one there: never a link."""
    path = Path(path)
    if path.is_symlink():
        raise _link_refused(path)
    try:
        path.mkdir(exist_ok=True)
    except FileExistsError:
        raise WriteError(path, OSError(errno.ENOTDIR, "exists and is not a folder")) from None
    except OSError as e:
        raise WriteError(path, e) from None
    return path


def create_new(path: Path) -> None:
    """Create `path` empty, as a new regular file: an old file, or a link, of that name is removed."""
    try:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)  # a link itself, never what it points at
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o644)
    except OSError as e:
        raise WriteError(path, e) from None
    os.close(fd)


def open_log(path: Path, append: bool = True, encoding: str | None = "utf-8") -> IO[str]:
    """A text file opened for writing in a run folder: a regular file, never through a link."""
    flags = os.O_WRONLY | os.O_CREAT | _O_NOFOLLOW | _O_NONBLOCK
    flags |= os.O_APPEND if append else os.O_TRUNC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _link_refused(Path(path)) from None
        raise WriteError(path, e) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise WriteError(path, OSError(errno.EINVAL, "is not a regular file"))
    if _O_NONBLOCK:
        os.set_blocking(fd, True)
    return os.fdopen(fd, "a" if append else "w", newline="", encoding=encoding)


def check_writable(folder: Path, names: tuple[str, ...], folders: tuple[str, ...] = ()) -> None:
    """Before writing into `folder`: each of these names in it, if there, is a regular file
    (a folder for those in `folders`), never a link or a special file.

    For a folder dlrun did not just make (a resume, a report's folder): one line,
    exit 2, before anything is written.
    """
    for name in names:
        path = Path(folder) / name
        if path.is_symlink():
            raise UnusableFile(
                path, "is a symbolic link; dlrun never writes through a link inside a folder"
            )
        if name in folders and path.exists() and not path.is_dir():
            raise UnusableFile(path, "is not a folder")
        if name not in folders and path.exists() and not path.is_file():
            raise UnusableFile(path, "is not a regular file")
