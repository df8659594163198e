"""The Vosk speech model: install it (``yinling model install``) and validate it (``yinling model check``).

The archive's SHA-256 is computed while it is read; it is unpacked into a hidden temporary folder beside the
target and renamed into place, so a failure never leaves a half-installed model behind. An interrupted
download stays as ``.<name>.<sha>.zip.part`` and the next install resumes it. Loading is tried in a child
process, so a corrupt model that crashes Kaldi cannot take the caller down with it.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, TextIO
from urllib.parse import unquote, urlparse

import requests

from assistant.errors import ModelError, UsageError

if TYPE_CHECKING:
    from assistant.config import Config

logger = logging.getLogger(__name__)

MODEL_NAME = "vosk-model-small-cn-0.22"
MODEL_URL = "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip"
MODEL_SHA256 = "3af8b0e7e0f835ae9d414ce5df580237a3cfb08d586c9fbbb0f7ff29ad5b14ba"

Progress = Callable[[int, int | None], None]
"""Progress callback: (bytes done, bytes in total or None when the size is unknown)."""
Kind = Literal["dynamic-graph", "static-graph"]
"""Decoding graph of a model: HCLr.fst + Gr.fst (dynamic, the small models) or HCLG.fst (static)."""

_CHUNK = 64 * 1024
_LOAD_SCRIPT = "import sys, vosk; vosk.SetLogLevel(-1); vosk.Model(sys.argv[1])"
_FIX = "请运行 yinling model install 重新安装 / {what}: run `yinling model install` to reinstall."
_RETRY = "run the command again (it resumes), or pass a downloaded file with --from."


@dataclass(frozen=True)
class ModelInfo:
    """A model folder that passed :func:`check`."""

    path: Path
    """the model folder"""
    kind: Kind
    """"dynamic-graph" (graph/HCLr.fst + graph/Gr.fst) or "static-graph" (graph/HCLG.fst)"""
    size_bytes: int
    """total size of the model's files (bytes)"""
    files: tuple[str, ...]
    """the model's files relative to ``path``, POSIX style, sorted"""


def configured_path(cfg: Config, state_dir: Path) -> Path:
    """The model folder to use: ``[speech] model_dir`` when set, else ``<home>/models/MODEL_NAME``."""
    return cfg.speech.model_path if cfg.speech.model_dir else state_dir / "models" / MODEL_NAME


def install(source: str | None, models_dir: Path, *, sha256: str = MODEL_SHA256, progress: Progress | None = None,
            force: bool = False, name: str = MODEL_NAME, timeout: float = 30.0) -> Path:
    """Install the model archive ``source`` as ``models_dir/name`` and return that folder.

    ``source`` is None (the official :data:`MODEL_URL`), an http(s) URL (streamed download, resumed when a
    partial file is left from before) or a local zip file (a path or ``file://`` URL). The archive must have
    the SHA-256 ``sha256``. A model already there that passes :func:`check` is kept unless ``force``.
    ``timeout`` bounds connecting and each network read (seconds). Raises ModelError (one sentence, the fix).
    """
    expected = _sha_or_none(sha256)
    if expected is None:
        raise ModelError(f"校验码格式不对 / {sha256!r} is not a SHA-256: give 64 hexadecimal digits.")
    target = models_dir / name
    if target.exists() and not force:
        try:
            check(target)
        except ModelError as exc:
            logger.warning("the model at %s is not usable, reinstalling it: %s", target, exc)
        else:
            logger.info("speech model already installed at %s; --force reinstalls it", target)
            return target
    source = MODEL_URL if source is None else source
    url = urlparse(source)
    remote = url.scheme in ("http", "https")
    archive = (models_dir / f".{name}.{expected[:12]}.zip.part" if remote
               else Path(unquote(url.path) if url.scheme == "file" else source).expanduser())
    if not remote and not archive.is_file():
        what = "is a folder, not the .zip archive" if archive.is_dir() else "does not exist"
        raise ModelError(f"没有找到模型压缩包 / {archive} {what}: pass the downloaded .zip file with --from.")
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
        digest = _download(source, archive, progress, timeout) if remote else _hash(archive, hashlib.sha256(), progress)
    except OSError as exc:
        raise ModelError(f"无法读写模型文件 / cannot use {exc.filename or models_dir} ({exc.strerror}): check the "
                         "free disk space and the permissions, or choose another --home.") from None
    try:
        if digest != expected:
            raise _mismatch(digest, expected)
        _unpack(archive, target)
    finally:
        if remote:  # only an interrupted download is kept, to be resumed
            archive.unlink(missing_ok=True)
    logger.info("speech model installed at %s", target)
    return target


def check(path: Path, *, timeout: float = 120.0, load: bool = True) -> ModelInfo:
    """Validate the model folder ``path``: its layout first, then that Vosk loads it in a child process.

    ``timeout`` bounds the load (seconds); ``load=False`` checks the layout only (fast, used at start-up
    just before the real load). Raises ModelError naming the problem and the fix.
    """
    if not path.exists():
        raise ModelError(f"没有找到语音模型 / no speech model at {path}: run `yinling model install`.")
    if not path.is_dir():
        raise ModelError(f"语音模型路径不是文件夹 / {path} is not a folder: point [speech] model_dir at the "
                         "unpacked model, or run `yinling model install`.")
    kind, problem = _structure(path)
    if kind is None:
        raise ModelError("语音模型不完整，" + _FIX.format(what=f"the speech model at {path} is incomplete ({problem})"))
    reason = _load_problem(path, timeout) if load else None
    if reason:
        raise ModelError("语音模型无法加载，" + _FIX.format(what=f"Vosk cannot load the model at {path} ({reason})"))
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return ModelInfo(path=path, kind=kind, size_bytes=sum(p.stat().st_size for p in files),
                     files=tuple(p.relative_to(path).as_posix() for p in files))


def _load_problem(path: Path, timeout: float) -> str | None:
    """Load the model with Vosk in a child process; None when that worked, else why it did not."""
    try:
        done = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, str(path)], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"loading took longer than {timeout:g} s"
    if done.returncode < 0:
        return f"Kaldi crashed: {signal.strsignal(-done.returncode) or -done.returncode}"
    if done.returncode > 0:
        logger.debug("loading %s failed: %s", path, done.stderr.decode("utf-8", "replace"))
        return _last_error(done.stderr.decode("utf-8", "replace"))
    return None


def _sha_or_none(text: str) -> str | None:
    """``text`` as a lower-case SHA-256 hex digest, or None when it is not one."""
    digest = text.strip().lower()
    return digest if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else None


def _nonempty(path: Path) -> bool:
    """True when ``path`` is a file with at least one byte."""
    return path.is_file() and path.stat().st_size > 0


def _structure(root: Path) -> tuple[Kind | None, str]:
    """The graph kind of a complete model layout, or None and what is missing ("am/final.mdl is missing")."""
    for required in ("am/final.mdl", "conf/model.conf", "conf/mfcc.conf"):  # Vosk 0.3.45 needs all three
        if not _nonempty(root / required):
            return None, f"{required} is {'empty' if (root / required).exists() else 'missing'}"
    hclr, gr, hclg = (_nonempty(root / "graph" / file) for file in ("HCLr.fst", "Gr.fst", "HCLG.fst"))
    if hclg:  # Vosk uses HCLG.fst when it is there
        return "static-graph", ""
    if hclr and gr:
        return "dynamic-graph", ""
    if hclr or gr:
        missing, present = ("Gr", "HCLr") if hclr else ("HCLr", "Gr")
        return None, f"graph/{missing}.fst is missing or empty (graph/{present}.fst is there)"
    return None, "graph/HCLG.fst, or graph/HCLr.fst with graph/Gr.fst, is missing"


def _last_error(stderr: str) -> str:
    """The most telling line of the child's stderr: Kaldi's last ERROR, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    line = ([line for line in lines if line.startswith("ERROR")] or lines or ["no message"])[-1]
    if line.startswith("ERROR (") and ") " in line:  # drop Kaldi's "(VoskAPI:Func():file.cc:123)" prefix
        line = line.split(") ", 1)[1]
    return line.split(". ", 1)[0][:200]


def _mismatch(actual: str, expected: str) -> ModelError:
    """The error for an archive whose SHA-256 is not the expected one."""
    return ModelError(f"模型文件校验失败 / the model archive is corrupt or not the official one (sha256 {actual[:12]}… "
                      f"≠ expected {expected[:12]}…): download it again or pass the right file with --from.")


def _hash(path: Path, digest: hashlib._Hash, progress: Progress | None) -> str:
    """Feed the file at ``path`` into ``digest`` (reporting progress) and return the hex digest so far."""
    done, total = 0, path.stat().st_size
    with path.open("rb") as handle:
        while chunk := handle.read(16 * _CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def _download(url: str, part: Path, progress: Progress | None, timeout: float) -> str:
    """Stream ``url`` into ``part``, resuming with an HTTP Range request when it holds bytes; return the SHA-256."""
    fail = f"下载模型失败 / could not download the model from {url}"
    try:
        for _attempt in range(2):  # a second request only after a partial file the server cannot resume was dropped
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-"} if have else {}
            with requests.get(url, stream=True, timeout=timeout, headers=headers) as response:
                status = response.status_code
                resumed = status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
                if have and status in (206, 416) and not resumed:
                    logger.info("dropping the partial download %s: the server cannot resume it", part)
                    part.unlink()
                    continue
                if status not in (200, 206):
                    raise ModelError(f"{fail} (the server answered {status} {response.reason}): check the "
                                     "address, or pass a downloaded file with --from.")
                have = have if resumed else 0
                length = response.headers.get("Content-Length", "")
                total = have + int(length) if length.isdigit() else None
                digest, done = hashlib.sha256(), have
                if have:
                    logger.info("resuming the download of %s at byte %d", url, have)
                    _hash(part, digest, None)
                with part.open("ab" if have else "wb") as out:
                    for chunk in response.iter_content(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            if total is not None and done != total:
                raise ModelError(f"{fail} (the connection dropped after {done} of {total} bytes): {_RETRY}")
            return digest.hexdigest()
    except requests.Timeout:
        raise ModelError(f"{fail} (no answer within {timeout:g} s): {_RETRY}") from None
    except requests.RequestException as exc:
        logger.debug("download of %s failed: %s", url, exc)
        raise ModelError(f"{fail} (the connection failed or dropped): {_RETRY}") from None
    raise ModelError(f"{fail} (the server cannot resume the partial download): {_RETRY}")


def _member_parts(info: zipfile.ZipInfo, archive: Path) -> tuple[str, ...]:
    """The path components of an archive member; absolute or ``..`` members (zip slip) are refused."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or name[1:2] == ":" or ".." in parts:
        raise ModelError(f"模型压缩包不安全 / the archive {archive.name} has an unsafe member {info.filename!r} "
                         "(absolute or '..' path): refusing to unpack it; download the official archive again.")
    return parts


def _unpack(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into a temporary folder beside ``target``, check it and rename it into place."""
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [(info, parts) for info in zipped.infolist() if (parts := _member_parts(info, archive))]
            if not members:
                raise ModelError(f"模型压缩包是空的 / the archive {archive.name} is empty: download it again.")
            tops = {parts[0] for _info, parts in members}
            # The official archive holds one top folder; an archive of the model's own files works too.
            strip = len(tops) == 1 and all(len(parts) > 1 or info.is_dir() for info, parts in members)
            work = Path(tempfile.mkdtemp(prefix=f".{target.name}.unpack-", dir=target.parent))
            try:
                for info, parts in members:
                    dest = work.joinpath(*parts)
                    (dest if info.is_dir() else dest.parent).mkdir(parents=True, exist_ok=True)
                    if not info.is_dir():
                        with zipped.open(info) as src, dest.open("wb") as out:
                            shutil.copyfileobj(src, out, _CHUNK)
                root = work / tops.pop() if strip else work
                kind, problem = _structure(root)
                if kind is None:
                    raise ModelError(f"压缩包里没有完整的语音模型 / the archive {archive.name} holds no complete "
                                     f"Vosk model ({problem}): download the official archive again.")
                root.chmod(0o755)  # mkdtemp made it private; the model is no secret
                _replace(root, target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise ModelError(f"模型压缩包已损坏 / the archive {archive.name} is damaged ({exc}): download it again "
                         "or pass the right file with --from.") from None
    except OSError as exc:
        raise ModelError(f"无法解压模型 / cannot unpack the model into {target.parent} ({exc.strerror}): check "
                         "the free disk space and the permissions.") from None


def _replace(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an old ``target`` is moved aside first and deleted only afterwards."""
    if not (target.exists() or target.is_symlink()):
        new.rename(target)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    try:
        target.rename(trash / "model")
        try:
            new.rename(target)
        except OSError:
            (trash / "model").rename(target)
            raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


class ProgressBar:
    """A text progress bar to pass as ``progress``: one line redrawn with ``\\r`` on a terminal, else a plain
    line every 10 % (every 5 MB when the size is unknown). The line ends at 100 % or on :meth:`close`."""

    def __init__(self, stream: TextIO, label: str = "下载中 downloading", width: int = 20) -> None:
        """Draw on ``stream``; ``label`` starts the line, ``width`` is the bar's length (characters)."""
        self._stream, self._label, self._width = stream, label, width
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._shown, self._open = "", False  # _open: a redrawn line is on screen without its newline
        self._step: int | None = None

    def __call__(self, done: int, total: int | None) -> None:
        """Show that ``done`` of ``total`` bytes are through (``total`` None: unknown)."""
        if total:
            fraction = min(done / total, 1.0)
            filled = int(self._width * fraction)
            line = (f"{self._label} {int(fraction * 100):3d}% [{'#' * filled}{'.' * (self._width - filled)}] "
                    f"{done / 1e6:5.1f}/{total / 1e6:.1f} MB")
            step = int(fraction * 10)
        else:
            line, step = f"{self._label} {done / 1e6:.1f} MB", int(done / 5e6)
        if self._tty and line != self._shown:
            self._stream.write("\r" + line.ljust(len(self._shown)))
            self._stream.flush()
            self._shown, self._open = line, True
            if total and done >= total:  # complete: end the line before anyone else writes
                self.close()
        elif not self._tty and step != self._step:
            self._stream.write(line + "\n")
            self._stream.flush()
        self._step = step

    def close(self) -> None:
        """End an unfinished bar's line on a terminal, so the next text starts on a new line."""
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
                 parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """Add ``model install`` and ``model check`` to the ``yinling`` sub-commands.

    ``parents`` give options every sub-command accepts (the global ``--config``/``--home``). Each command sets
    ``args.handler``, called as ``handler(args, cfg, state_dir) -> exit code``.
    """
    model = subparsers.add_parser("model", parents=list(parents), help="install or check the Vosk speech model",
                                  description="Install or check the Vosk speech model.")
    actions = model.add_subparsers(dest="model_action", metavar="ACTION", required=True)
    put = actions.add_parser("install", parents=list(parents), help="download or unpack the speech model",
                             description=f"Download {MODEL_NAME} (or unpack the file given with --from), verify "
                                         "its SHA-256 and install it as [speech] model_dir (default <home>/models).")
    put.add_argument("--from", dest="source", metavar="FILE_OR_URL",
                     help=f"a downloaded zip file or another URL (default {MODEL_URL})")
    put.add_argument("--sha256", metavar="HEX", help="expected SHA-256 of the archive (default: the official one)")
    put.add_argument("--force", action="store_true", help="reinstall even when a good model is there")
    put.set_defaults(handler=_cmd_install)
    look = actions.add_parser("check", parents=list(parents), help="check that a model folder works",
                              description="Check a model folder's files and that Vosk loads it.")
    look.add_argument("path", nargs="?", type=Path, metavar="PATH",
                      help=f"model folder (default [speech] model_dir, else <home>/models/{MODEL_NAME})")
    look.set_defaults(handler=_cmd_check)


def _cmd_install(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling model install [--from FILE_OR_URL] [--sha256 HEX] [--force]``."""
    sha = _sha_or_none(args.sha256 or MODEL_SHA256)
    if sha is None:
        raise UsageError(f"yinling model install: --sha256 {args.sha256!r} is not 64 hexadecimal digits.")
    target = configured_path(cfg, state_dir)
    remote = args.source is None or urlparse(args.source).scheme in ("http", "https")
    bar = ProgressBar(sys.stderr, "下载中 downloading" if remote else "校验中 verifying")
    try:
        path = install(args.source, target.parent, sha256=sha, progress=bar, force=args.force, name=target.name)
    finally:
        bar.close()
    print(f"语音模型已安装 / speech model installed at {path}")
    return 0


def _cmd_check(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling model check [PATH]``."""
    info = check(args.path.expanduser() if args.path else configured_path(cfg, state_dir))
    print(f"语音模型可用 / speech model OK at {info.path}: {info.kind}, {len(info.files)} files, "
          f"{info.size_bytes / 1e6:.1f} MB")
    return 0
