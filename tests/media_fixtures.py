"""Tiny generated media files for tests (FFmpeg lavfi sources; a few KB each)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# Beside the repository (../shared/data/videos); a checkout elsewhere (a git worktree) names the folder
# in PIPELINE_REAL_CLIPS.
REAL_CLIPS = Path(
    os.environ.get("PIPELINE_REAL_CLIPS") or Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
)


def real_clips() -> list[Path]:
    if not REAL_CLIPS.is_dir():
        return []
    return sorted(p for p in REAL_CLIPS.iterdir() if p.suffix in {".mp4", ".avi", ".webm"})


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_clip(
    path: Path,
    *,
    seconds: float = 1.0,
    size: tuple[int, int] = (64, 48),
    fps: float = 10,
    audio_rate: int | None = 16000,
    channels: int = 1,
    tone_hz: float = 440.0,
) -> Path:
    """A testsrc2 clip with an optional sine track (``channels`` copies of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["-f", "lavfi", "-i", f"testsrc2=s={size[0]}x{size[1]}:r={fps}:d={seconds}"]
    if audio_rate:
        args += [
            "-f",
            "lavfi",
            "-i",
            f"sine=f={tone_hz}:r={audio_rate}:d={seconds}",
            "-c:a",
            "aac",
            "-ac",
            str(channels),
        ]
    ffmpeg(*args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-t", str(seconds), str(path))
    return path


def make_halves(path: Path, rotate: int | None = None, sar: str | None = None) -> Path:
    """64x32 frames, left half red and right half blue; optional rotation tag or pixel aspect."""
    src = "color=red:s=64x32:r=10:d=0.5,drawbox=x=32:y=0:w=32:h=32:color=blue:t=fill"
    if sar:
        src += f",setsar={sar}"
    plain = path.with_name(path.stem + "-plain.mp4")
    ffmpeg("-f", "lavfi", "-i", src, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(plain))
    if rotate is None:
        plain.rename(path)
    else:  # FFmpeg 5.1 writes the display matrix only when remuxing with the rotate tag
        ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(path))
        plain.unlink()
    return path


def make_bad_inputs(folder: Path) -> dict[str, str | None]:
    """Every bad input the ingest contract names; maps file name -> expected failure reason (None = processed)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.mp4").write_bytes(b"")
    (folder / "text.mp4").write_text("this is not a video\n")
    good = make_clip(folder / "full.mp4", seconds=2.0)
    data = good.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])  # moov atom is at the end: lost
    good.unlink()
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", str(folder / "audio_only.mp4"))
    make_clip(folder / "no_audio.mp4", audio_rate=None)
    make_clip(folder / "one_frame.mp4", seconds=0.1, fps=10)
    make_clip(folder / "uhd.mp4", seconds=0.2, size=(3840, 2160), fps=10)
    make_clip(folder / "my clip – café.mp4", seconds=0.5)
    make_clip(folder / "ok.mp4", seconds=1.0)
    return {
        "zero": "empty_file",
        "text": "unreadable",
        "truncated": "unreadable",
        "audio_only": "no_video_stream",
        "no_audio": None,
        "one_frame": None,
        "uhd": None,
        "my clip – café": None,
        "ok": None,
    }


def clip_params() -> list:
    """pytest parameters: one per real clip, or a single skipped one saying why."""
    import pytest

    found = real_clips()
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"real clips not found at {REAL_CLIPS}"))]
    return [pytest.param(p, id=p.name) for p in found]
