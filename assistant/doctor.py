"""``yinling doctor``: check every part the assistant needs and say, in plain words, what to fix.

Checks: microphone, loudspeaker, speech model, espeak-ng voice, MQTT broker and community platform.
Each prints one line: ``✓`` works, ``✗`` broken (with the fix), ``–`` not configured (optional).
The exit code is 0 when nothing is broken, 1 otherwise.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from assistant.config import Config
from assistant.errors import YinlingError

logger = logging.getLogger(__name__)

OK, BROKEN, SKIPPED = "✓", "✗", "–"
NETWORK_TIMEOUT = 3.0  # seconds for the broker and platform checks


@dataclass(frozen=True)
class Finding:
    """The outcome of one check."""

    mark: str
    part: str
    detail: str

    def line(self) -> str:
        """One printable line."""
        return f"{self.mark} {self.part}: {self.detail}"


def _check_device(open_device: Callable[[str | None], Any], device: str, part: str, fix: str, works: str) -> Finding:
    """Open and close one audio device; the finding says what to fix when it does not open."""
    try:
        opened = open_device(device or None)
    except YinlingError as exc:
        return Finding(BROKEN, part, f"{exc} → {fix}")
    opened.close()
    return Finding(OK, part, works)


def check_microphone(cfg: Config, state_dir: Path) -> Finding:
    """A microphone that opens at 16 kHz."""
    from voices.audio import open_microphone

    return _check_device(open_microphone, cfg.speech.input_device, "麦克风 microphone",
                         "插上USB麦克风，或在 [speech] input_device 里写对设备名", "可以录音 / can record")


def check_speaker(cfg: Config, state_dir: Path) -> Finding:
    """A loudspeaker that opens."""
    from voices.audio import open_speaker

    return _check_device(open_speaker, cfg.speech.output_device, "扬声器 loudspeaker",
                         "接好音箱，或在 [speech] output_device 里写对设备名", "可以放音 / can play")


def check_model(cfg: Config, state_dir: Path) -> Finding:
    """The Vosk model is complete and loads."""
    from voices.model import check, configured_path

    part = "语音模型 speech model"
    try:
        info = check(configured_path(cfg, state_dir))
    except YinlingError as exc:
        return Finding(BROKEN, part, str(exc))
    return Finding(OK, part, f"{info.path} ({info.size_bytes / 1e6:.0f} MB)")


def check_voice(cfg: Config, state_dir: Path) -> Finding:
    """espeak-ng speaks Chinese with the configured voice."""
    from voices.tts import EspeakSynthesizer

    part = "语音合成 speech synthesis"
    try:
        audio = EspeakSynthesizer(cfg.speech.tts_voice, cfg.speech.tts_rate, cfg.speech.tts_volume).synthesize("你好")
    except YinlingError as exc:
        return Finding(BROKEN, part, f"{exc} → apt-get install espeak-ng")
    if not audio.pcm:
        return Finding(BROKEN, part, "合成结果是空的 / synthesis produced no audio → apt-get install --reinstall espeak-ng")
    return Finding(OK, part, f"espeak-ng {cfg.speech.tts_voice}")


def check_broker(cfg: Config, state_dir: Path) -> Finding:
    """The MQTT broker accepts a TCP connection."""
    part = "MQTT 代理 broker"
    if not cfg.mqtt.host:
        return Finding(SKIPPED, part, "未配置 / not configured ([mqtt] host)")
    try:
        socket.create_connection((cfg.mqtt.host, cfg.mqtt.port), timeout=NETWORK_TIMEOUT).close()
    except OSError as exc:
        return Finding(BROKEN, part, f"连不上 {cfg.mqtt.host}:{cfg.mqtt.port} ({exc.strerror or exc}) "
                                     "→ 检查网关是否开机、[mqtt] host/port 是否正确")
    return Finding(OK, part, f"{cfg.mqtt.host}:{cfg.mqtt.port}")


def check_platform(cfg: Config, state_dir: Path) -> Finding:
    """The community platform answers its OpenAPI document."""
    import requests

    part = "社区平台 community platform"
    if not cfg.platform.url:
        return Finding(SKIPPED, part, "未配置，订单会先存在本机 / not configured, orders wait in the outbox")
    url = cfg.platform.url.rstrip("/") + "/openapi.json"
    try:
        response = requests.get(url, timeout=NETWORK_TIMEOUT)
    except requests.RequestException as exc:
        return Finding(BROKEN, part, f"连不上 {cfg.platform.url} ({type(exc).__name__}) → 检查网络和 [platform] url")
    if response.status_code != 200:
        return Finding(BROKEN, part, f"{url} 返回 {response.status_code} → 检查 [platform] url")
    return Finding(OK, part, cfg.platform.url)


CHECKS: tuple[Callable[[Config, Path], Finding], ...] = (
    check_microphone, check_speaker, check_model, check_voice, check_broker, check_platform)


def run(cfg: Config, state_dir: Path, out: TextIO) -> int:
    """Run every check, print one line each, return 0 when nothing is broken."""
    broken = 0
    for check in CHECKS:
        finding = check(cfg, state_dir)
        broken += finding.mark == BROKEN
        out.write(finding.line() + "\n")
        out.flush()
    out.write("一切正常 / all good\n" if not broken else f"有 {broken} 项需要处理 / {broken} to fix\n")
    return 0 if not broken else 1
