"""Voice mode of ``yinling run``: audio in → two-stage listener → assistant → synthesised speech out.

The same :func:`drive` loop serves the microphone (live) and a WAV recording (``--input``). It reads
audio chunk by chunk and reacts to the listener's events; speaking happens on the speaker's own
thread, so the loop keeps listening while the assistant talks:

- ``Emergency`` (heard in any state, no wake word): playback stops, the help path starts;
- ``WakeWord``: playback stops, 「我在，您说」, one request is recognised freely;
- ``Request``: the text goes to the assistant;
- ``SpeechStarted``: with ``barge_in = "speech"``, the elder talking stops playback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from assistant.config import Config
from assistant.errors import ModelError, YinlingError
from voices.asr import SpeechModel, StreamingRecognizer
from voices.audio import AudioSink, AudioSource, NullSink, WavFileSink, WavFileSource, open_microphone, open_speaker
from voices.listen import (Emergency, KeywordSpotter, Request, RequestTimeout, SpeechStarted, TwoStageListener,
                           WakeWord, bundled_decoys)
from voices.model import check, configured_path
from voices.speaker import Speaker, TextSpeaker, VoiceSpeaker
from voices.tts import EspeakSynthesizer

if TYPE_CHECKING:
    from assistant.app import RunOptions
    from assistant.loop import Assistant

logger = logging.getLogger(__name__)

Builder = Callable[..., "Assistant"]


def build_listener(cfg: Config, model: SpeechModel) -> TwoStageListener:
    """The always-on spotter (wake word + emergency phrases + decoys) and the free recogniser for requests.

    Emergency phrases the model cannot spell are skipped with a warning; a wake word it cannot
    spell is a configuration error (the assistant could never be woken). Decoys are ``[speech] decoys``,
    or the bundled Mandarin list when that is empty; those the model cannot spell are dropped quietly
    (a list meant for many models), and so are those inside a keyword, which would compete with it.
    """
    emergencies = []
    for phrase in cfg.speech.emergency_phrases:
        if model.tokenize(phrase) is None:
            logger.warning("emergency phrase %s is not in the model's vocabulary; it is not spotted", phrase)
        else:
            emergencies.append(phrase)
    if model.tokenize(cfg.speech.wake_word) is None:
        raise ModelError(f"唤醒词不在模型词表里 / the wake word {cfg.speech.wake_word!r} is not in the "
                         "speech model's vocabulary: choose another [speech] wake_word")
    keywords = [cfg.speech.wake_word, *emergencies]
    wanted = cfg.speech.decoys or bundled_decoys()
    decoys = [d for d in wanted if not any(d in k for k in keywords) and model.tokenize(d) is not None]
    logger.debug("%d of %d decoy phrases dropped (not in the model's vocabulary, or inside a keyword)",
                 len(wanted) - len(decoys), len(wanted))
    spotter = KeywordSpotter(model, [cfg.speech.wake_word], emergencies, decoys=decoys)
    return TwoStageListener(spotter, StreamingRecognizer(model), request_timeout=cfg.speech.request_timeout)


def drive(assistant: Assistant, listener: TwoStageListener, source: AudioSource, speaker: Speaker, *,
          barge_in: str = "keywords") -> None:
    """Feed audio to the listener until the source ends, acting on every event."""
    while (chunk := source.read()) is not None:
        for event in listener.feed(chunk):
            react(assistant, speaker, event, barge_in)
        assistant.tick()
    final = listener.free.flush() if listener.state.value == "listening" else None
    if final is not None and final.text:
        assistant.hear(final.text)
    speaker.wait(timeout=120)


def react(assistant: Assistant, speaker: Speaker, event: object, barge_in: str) -> None:
    """What one listener event does."""
    if isinstance(event, Emergency):
        logger.warning("emergency phrase heard")
        assistant.emergency(event.phrase)
    elif isinstance(event, WakeWord):
        speaker.stop()
        assistant.say_prompt("wake_ack")
    elif isinstance(event, Request):
        logger.info("request heard (%d characters)", len(event.text))
        assistant.hear(event.text)
    elif isinstance(event, SpeechStarted):
        if barge_in == "speech":
            speaker.stop()
    elif isinstance(event, RequestTimeout):
        logger.info("no request within %.1f s of the wake word", event.waited)


def _speaker(cfg: Config, sink: AudioSink, echo: TextIO | None) -> VoiceSpeaker:
    synthesizer = EspeakSynthesizer(cfg.speech.tts_voice, cfg.speech.tts_rate, cfg.speech.tts_volume)
    return VoiceSpeaker(synthesizer, sink, echo=TextSpeaker(echo) if echo is not None else None)


def load_model(cfg: Config, state_dir: Path) -> SpeechModel:
    """The configured Vosk model; ModelError with the fix when it is missing or broken."""
    path = configured_path(cfg, state_dir)
    check(path, load=False)  # a missing or incomplete model gets the bilingual sentence with the fix
    return SpeechModel.load(path)


def run_file(cfg: Config, state_dir: Path, options: RunOptions, out: TextIO, build: Builder) -> int:
    """``--input FILE.wav``: the real loop on a recording; replies echoed as ``说：`` lines."""
    model = load_model(cfg, state_dir)
    listener = build_listener(cfg, model)
    sink: AudioSink = WavFileSink(options.output_wav) if options.output_wav else NullSink()
    speaker = _speaker(cfg, sink, out)
    assistant = build(cfg, state_dir, speaker, out=out, events=options.events)
    started = time.perf_counter()
    try:
        with WavFileSource(options.input_wav) as source:
            drive(assistant, listener, source, speaker, barge_in=cfg.speech.barge_in)
    finally:
        assistant.close()
        speaker.close()
        sink.close()
    logger.info("processed %s in %.2f s", options.input_wav, time.perf_counter() - started)
    return 0


def run_live(cfg: Config, state_dir: Path, options: RunOptions, out: TextIO, build: Builder) -> int:
    """Microphone and loudspeaker; raises one YinlingError naming every missing part (model, microphone,
    loudspeaker) so the caller can say it in one line and fall back to text mode."""
    problems: list[str] = []
    opened: list[Any] = []
    for part in (lambda: check(configured_path(cfg, state_dir), load=False),
                 lambda: open_microphone(cfg.speech.input_device or None),
                 lambda: open_speaker(cfg.speech.output_device or None)):
        try:
            opened.append(part())
        except YinlingError as exc:
            problems.append(str(exc).rstrip(".。"))
    if problems:
        for thing in opened:
            if hasattr(thing, "close"):
                thing.close()
        raise YinlingError("；".join(problems))
    _, microphone, sink = opened
    model = SpeechModel.load(configured_path(cfg, state_dir))
    listener = build_listener(cfg, model)
    speaker = _speaker(cfg, sink, None)
    assistant = build(cfg, state_dir, speaker, out=out, events=options.events)
    assistant.say_prompt("greeting")
    try:
        drive(assistant, listener, microphone, speaker, barge_in=cfg.speech.barge_in)
    finally:
        assistant.close()
        speaker.close()
        microphone.close()
        sink.close()
    return 0
