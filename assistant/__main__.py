"""The ``yinling`` command line: argument parsing, configuration, logging set-up and sub-commands.

Exit codes (CONTRACTS.md §1): 0 ok; 2 bad usage or bad configuration (one sentence on stderr);
1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO, NoReturn, TextIO

from assistant import config as config_module
from assistant.config import Config
from assistant.errors import ConfigError, UsageError, YinlingError
from intents.recognize import IntentResult, Recognizer
from voices import model as model_commands

logger = logging.getLogger(__name__)

DEFAULT_HOME = Path("~/.local/share/yinling")
"""State directory (SQLite databases, logs, outbox) when ``--home`` is not given."""

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports bad usage as a UsageError instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        """Raise the problem as one sentence; :func:`main` prints it and returns exit code 2."""
        raise UsageError(f"{self.prog}: {message}; see '{self.prog} --help'.")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; global options are accepted before and after the sub-command."""
    # SUPPRESS keeps a sub-command's copy of an option from overwriting one given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", type=Path, default=argparse.SUPPRESS,
                        help="home configuration (TOML) layered over config/default.toml")
    common.add_argument("--home", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                        help=f"state directory (default {DEFAULT_HOME})")
    parser = _Parser(prog="yinling", parents=[common],
                     description="银龄 yinling — an offline voice assistant for elders living at home.")
    parser.add_argument("--version", action="version", version=f"yinling {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    parse = commands.add_parser("parse", parents=[common], help="print the intent of text as JSON",
                                description="Print {text, intent, confidence, slots} as one JSON object per utterance.")
    parse.add_argument("text", nargs="*", metavar="TEXT", help="the utterance (words are joined by spaces)")
    parse.add_argument("--batch", metavar="FILE",
                       help="read one utterance per line from FILE ('-' = stdin) and print JSON lines")
    parse.add_argument("--accent-tolerant", action="store_true",
                       help="also match by pinyin with merged sounds (overrides [intents] accent_tolerant)")
    parse.set_defaults(handler=_cmd_parse)

    run = commands.add_parser("run", parents=[common], help="run the assistant (speech loop)",
                              description="Listen, understand, act and speak.")
    run.add_argument("--text", action="store_true",
                     help="text mode: read utterances from stdin, print what would be said")
    run.add_argument("--input", metavar="FILE.wav", type=Path,
                     help="run the real speech loop on a recording (16 kHz mono WAV) instead of the microphone")
    run.add_argument("--output", metavar="FILE.wav", type=Path,
                     help="with --input: write the synthesised replies into this WAV file")
    run.add_argument("--events", action="store_true",
                     help="also print every event (order, help, device command) as a line '事件：{json}'")
    run.set_defaults(handler=_cmd_run)

    model_commands.add_commands(commands, parents=[common])
    _add_platform_commands(commands, common)

    weather = commands.add_parser("weather", parents=[common], help="store a weather forecast for the assistant",
                                  description="Store a forecast (JSON, see assistant/weather.py) that the assistant "
                                              "reads back; the community platform or the family publishes it.")
    weather.add_argument("file", metavar="FILE", help="forecast JSON file, or '-' for stdin")
    weather.set_defaults(handler=_cmd_weather)

    family = commands.add_parser("family", parents=[common], help="pair a family member's phone",
                                 description="Family access: `yinling family code` prints a fresh 6-digit pairing code.")
    family_actions = family.add_subparsers(dest="family_action", metavar="ACTION", required=True, parser_class=_Parser)
    code = family_actions.add_parser("code", parents=[common], help="print a pairing code (valid 10 minutes, single use)")
    code.set_defaults(handler=_cmd_family_code)
    listing = family_actions.add_parser("devices", parents=[common], help="list paired phones")
    listing.set_defaults(handler=_cmd_family_devices)
    revoke = family_actions.add_parser("revoke", parents=[common], help="revoke a paired phone's access")
    revoke.add_argument("device_id", metavar="DEVICE_ID", help="as listed by 'yinling family devices'")
    revoke.set_defaults(handler=_cmd_family_revoke)

    doctor = commands.add_parser("doctor", parents=[common], help="check microphone, speaker, model, voice, broker, platform",
                                 description="Check every part the assistant needs and say what to fix.")
    doctor.set_defaults(handler=_cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``yinling``; returns the exit code instead of raising."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as done:  # --help and --version exit through argparse
            return done.code if isinstance(done.code, int) else EXIT_OK
        if getattr(args, "handler", None) is None:
            raise UsageError("yinling: a command is required (parse or run); see 'yinling --help'.")
        cfg = config_module.load(getattr(args, "config", None), overrides=_overrides(args))
        logging.basicConfig(stream=sys.stderr, level=cfg.logging.level, format=LOG_FORMAT)
        state_dir = Path(getattr(args, "home", DEFAULT_HOME)).expanduser()
        logger.debug("state directory %s", state_dir)
        return int(args.handler(args, cfg, state_dir))
    except (ConfigError, UsageError) as exc:
        _say_error(exc)
        return EXIT_USAGE
    except YinlingError as exc:
        _say_error(exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly, and keep Python's final flush from failing too.
        _silence_stdout()
        return EXIT_FAILURE


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Configuration keys set by command-line flags (the highest layer)."""
    overrides: dict[str, Any] = {}
    if getattr(args, "accent_tolerant", False):
        overrides["intents.accent_tolerant"] = True
    return overrides


def _cmd_parse(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling parse TEXT`` / ``yinling parse --batch FILE``: one JSON object per utterance."""
    if args.batch is not None and args.text:
        raise UsageError("yinling parse: give either TEXT or --batch FILE, not both.")
    if args.batch is None and not args.text:
        raise UsageError("yinling parse: give the TEXT to parse or --batch FILE; see 'yinling parse --help'.")
    out = _utf8_stdout()
    recognizer = Recognizer.load(accent_tolerant=cfg.intents.accent_tolerant,
                                 min_confidence=cfg.intents.min_confidence)
    if args.batch is None:
        _emit(out, recognizer.parse(_from_argv(" ".join(args.text))))
        return EXIT_OK
    if args.batch == "-":
        stdin: BinaryIO | TextIO = getattr(sys.stdin, "buffer", sys.stdin)
        for text in _utterances(stdin):
            _emit(out, recognizer.parse(text))
        return EXIT_OK
    try:
        handle = open(args.batch, "rb")
    except OSError as exc:
        raise UsageError(f"yinling parse: cannot read batch file {args.batch} ({exc.strerror}).") from None
    with handle:
        for text in _utterances(handle):
            _emit(out, recognizer.parse(text))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling run``: the assistant (voice, file or text mode; see :mod:`assistant.app`)."""
    from assistant import app  # keeps `yinling parse` start-up free of the assistant's imports

    if args.text and args.input is not None:
        raise UsageError("yinling run: give either --text or --input FILE.wav, not both.")
    if args.output is not None and args.input is None:
        raise UsageError("yinling run: --output only goes with --input FILE.wav.")
    _utf8_stdout()
    options = app.RunOptions(text=args.text, input_wav=args.input, output_wav=args.output, events=args.events)
    return app.run(cfg, state_dir, options)


def _add_platform_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``yinling platform serve|add-home|add-staff`` (the reference community platform)."""
    from assistant import platform_cli

    platform_cli.add_commands(commands, parents=[common])


def _cmd_weather(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling weather FILE``: validate and store a forecast in the state directory."""
    from assistant.weather import WeatherCache

    try:
        payload = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"yinling weather: cannot read {args.file} ({exc.strerror}).") from None
    forecast = WeatherCache(state_dir / "weather.json").store(payload)
    print(f"天气已更新 / forecast stored: {len(forecast.days)} days, updated {forecast.updated_at.isoformat()}")
    return EXIT_OK


def _cmd_family_code(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling family code --home DIR``: the code is the only line on stdout."""
    from assistant.pairing import new_code

    print(new_code(state_dir))
    return EXIT_OK


def _cmd_family_devices(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling family devices``: one line per paired phone (id, name, paired, revoked)."""
    import datetime as dt

    from assistant.pairing import Pairing

    pairing = Pairing.in_dir(state_dir)
    try:
        for device in pairing.devices():
            paired = dt.datetime.fromtimestamp(device.paired_at).isoformat(timespec="minutes")
            print(f"{device.id}\t{device.name}\t{paired}\t{'revoked' if device.revoked else 'active'}")
    finally:
        pairing.close()
    return EXIT_OK


def _cmd_family_revoke(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling family revoke DEVICE_ID``: the phone's token stops working at once."""
    from assistant.pairing import Pairing

    pairing = Pairing.in_dir(state_dir)
    try:
        if not pairing.revoke(args.device_id):
            raise UsageError(f"yinling family revoke: no active paired phone {args.device_id!r}; "
                             "see 'yinling family devices'.")
    finally:
        pairing.close()
    print(f"已取消绑定 / revoked {args.device_id}")
    return EXIT_OK


def _cmd_doctor(args: argparse.Namespace, cfg: Config, state_dir: Path) -> int:
    """``yinling doctor``: one line per part, exit 1 if something is broken."""
    from assistant import doctor

    return doctor.run(cfg, state_dir, _utf8_stdout())


def _utterances(stream: BinaryIO | TextIO) -> Iterator[str]:
    """Yield the non-blank lines of ``stream`` stripped; undecodable bytes become U+FFFD with a warning."""
    for number, raw in enumerate(stream, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                logger.warning("batch line %d is not valid UTF-8; undecodable bytes replaced", number)
                line = raw.decode("utf-8", errors="replace")
        else:
            line = raw
        text = line.lstrip("\ufeff").strip() if number == 1 else line.strip()
        if text:
            yield text


def _emit(out: TextIO, result: IntentResult) -> None:
    """Write one result as a JSON line (CONTRACTS.md §1) and flush, so pipes see it at once."""
    out.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    out.flush()


def _from_argv(text: str) -> str:
    """Undo Python's surrogate escapes for argv bytes that are not UTF-8, so they can be printed."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _utf8_stdout() -> TextIO:
    """stdout, switched to UTF-8 if the locale chose another encoding (JSON lines are always UTF-8)."""
    out = sys.stdout
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if encoding != "utf8" and hasattr(out, "reconfigure"):
        out.reconfigure(encoding="utf-8")
    return out


def _say_error(exc: YinlingError) -> None:
    """Print an error as the single line the contract promises."""
    message = " ".join(str(exc).split())
    print(message if message.startswith("yinling") else f"yinling: {message}", file=sys.stderr)


def _silence_stdout() -> None:
    """Point stdout at /dev/null after a broken pipe (see the Python docs on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        logger.debug("stdout has no file descriptor to redirect")


def _version() -> str:
    """The installed package version, or "unknown" when running from an uninstalled tree."""
    try:
        return metadata.version("yinling")
    except metadata.PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
