"""The default voicemail greeting, generated at build time with espeak-ng (never committed).

`ensure_default_greeting(path)` writes an 8 kHz mono 16-bit WAV of the default text
followed by a short beep when the file is absent: espeak-ng speaks into a temporary
WAV (22.05 kHz), sox converts it to 8 kHz when installed (else our own resampler), and
the result is moved into place atomically. `scripts/install-peers.sh` installs
espeak-ng and sox; `make greeting` (a prerequisite of `make run` and `make test`) runs
`python -m onenumber.media.greeting data/greeting-default.wav`.

Build-time tooling: runs subprocesses, depends on media.wav only.
"""

from __future__ import annotations

import array
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .wav import RATE, load_greeting, write_wav

DEFAULT_PATH = Path("data/greeting-default.wav")
DEFAULT_TEXT = (
    "The person you are calling is not available. "
    "Please leave a message after the tone, and press the hash key when you are done."
)


class GreetingError(RuntimeError):
    pass


def beep(seconds: float = 0.4, freq: float = 1000.0, level: int = 9000) -> bytes:
    count = int(seconds * RATE)
    samples = array.array("h", (int(level * math.sin(2 * math.pi * freq * i / RATE)) for i in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def speak(text: str, *, voice: str = "en", speed: int = 150, timeout: float = 60.0) -> bytes:
    """`text` spoken by espeak-ng, as 8 kHz mono 16-bit LE PCM."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise GreetingError("espeak-ng is not installed (scripts/install-peers.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="onenumber-greeting-") as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run([espeak, "-v", voice, "-s", str(speed), "-w", str(raw), text],
                       check=True, timeout=timeout, capture_output=True)
        sox = shutil.which("sox")
        if sox is not None:
            narrow = Path(tmp) / "8k.wav"
            subprocess.run([sox, str(raw), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                            str(narrow)], check=True, timeout=timeout, capture_output=True)
            return load_greeting(narrow)
        return load_greeting(raw)


def generate_greeting(path: str | os.PathLike[str], text: str = DEFAULT_TEXT) -> Path:
    """Write `text` spoken, half a second of pause and a beep to `path` (atomically)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    pcm = speak(text) + b"\x00\x00" * (RATE // 2) + beep()
    tmp = target.with_name(target.name + ".tmp")
    write_wav(tmp, pcm)
    os.replace(tmp, target)
    return target


def ensure_default_greeting(path: str | os.PathLike[str] = DEFAULT_PATH) -> Path:
    target = Path(path)
    if not target.exists():
        generate_greeting(target)
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    try:
        ensure_default_greeting(path)
    except (GreetingError, subprocess.SubprocessError, OSError) as exc:
        print(f"warning: no default greeting generated ({exc})", file=sys.stderr)
        return 0  # not fatal: the voicemail service falls back to the beep alone
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
