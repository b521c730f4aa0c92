"""FFmpeg at the edge: probe a file (ffprobe) and decode sampled frames + mono audio.

``probe`` returns a ``ProbeInfo`` or raises ``MediaError`` with a failure reason code.
``decode_clip`` runs one ffmpeg process per video that selects only the sampled frames
before scaling, so the cost stays close to a plain decode of the file. Every ffmpeg and ffprobe
child is started through ``pipeline.core.lifetime``, so it dies with the stage even on SIGKILL.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np

from pipeline.core import lifetime


class MediaError(RuntimeError):
    """A file that cannot be used; ``reason`` is a code from ``pipeline.core.failures.REASONS``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ProbeInfo:
    container: str
    duration_s: float
    fps: float
    n_frames: int
    width: int  # coded size, before rotation
    height: int
    rotation: int  # degrees from the display matrix, in [0, 360)
    sar: float  # sample (pixel) aspect ratio
    video_stream: int  # absolute stream index
    video_codec: str
    audio_stream: int | None
    audio_codec: str | None
    audio_channels: int | None
    audio_rate: int | None

    @property
    def has_audio(self) -> bool:
        return self.audio_stream is not None

    @property
    def display_size(self) -> tuple[int, int]:
        w = round(self.width * self.sar)
        return (self.height, w) if self.rotation in (90, 270) else (w, self.height)


def _ratio(text: str | None) -> float:
    try:
        value = float(Fraction(text.replace(":", "/"))) if text else 0.0  # "64:51" or "30000/1001"
    except (ValueError, ZeroDivisionError):
        return 0.0
    return value if np.isfinite(value) else 0.0


def _float(text: object) -> float:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(round(_float(side["rotation"]))) % 360
    return int(round(_float(stream.get("tags", {}).get("rotate", 0)))) % 360


def _last_line(err: bytes | str | None) -> str:
    text = err.decode("utf-8", "replace") if isinstance(err, bytes) else (err or "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return _POINTER.sub("]", _LEVEL.sub("", lines[-1], count=1)) if lines else "no message from ffmpeg"


def scan_packets(path: str, stream: int) -> tuple[int, float]:
    """Count a stream's packets and measure its span by demuxing only (no decode)."""
    cmd = [
        "ffprobe",
        "-v",
        "error",
        "-select_streams",
        str(stream),
        "-show_entries",
        "packet=pts_time,duration_time",
        "-of",
        "csv=p=0",
        path,
    ]
    out = lifetime.run(cmd, text=True)
    starts, ends = [], []
    for line in out.stdout.splitlines():
        pts, _, dur = line.partition(",")
        if pts and pts != "N/A":
            starts.append(_float(pts))
            ends.append(_float(pts) + _float(dur))
    if not starts:
        return 0, 0.0
    return len(starts), max(ends) - min(starts)


def probe(path: str | Path) -> ProbeInfo:
    path = str(path)
    try:
        size = os.stat(path).st_size
    except OSError as err:  # os.path.exists would call a symlink loop or a closed folder "no such file"
        if err.errno == errno.ELOOP:
            raise MediaError("symlink_loop", f"symlink loop: {path}") from err
        if err.errno in (errno.EACCES, errno.EPERM):
            raise MediaError("permission_denied", f"permission denied: {path} ({err.strerror})") from err
        if err.errno not in (errno.ENOENT, errno.ENOTDIR):
            raise MediaError("unreadable", f"cannot read {path}: {err.strerror or err}") from err
        if os.path.islink(path):
            raise MediaError("missing_file", f"dangling symlink: {path} -> {os.readlink(path)}") from err
        raise MediaError("missing_file", f"no such file: {path}") from err
    if size == 0:
        raise MediaError("empty_file", f"zero-byte file: {path}")
    if not os.access(path, os.R_OK):  # ffprobe would only say "Permission denied" as "unreadable"
        raise MediaError("permission_denied", f"permission denied: {path} (no read permission)")
    # what ffmpeg.probe runs, started through lifetime (ffmpeg-python's Popen takes no preexec_fn)
    done = lifetime.run(["ffprobe", "-show_format", "-show_streams", "-of", "json", path])
    if done.returncode != 0:
        raise MediaError("unreadable", f"ffprobe failed: {_last_line(done.stderr)}")
    info = json.loads(done.stdout.decode("utf-8"))
    streams = info.get("streams", [])
    video = [s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not video:
        kinds = sorted({s.get("codec_type", "?") for s in streams}) or ["none"]
        raise MediaError("no_video_stream", f"no video stream (streams: {', '.join(kinds)})")
    v, a = video[0], (audio[0] if audio else None)
    fmt = info.get("format", {})
    n_frames = int(_float(v.get("nb_frames")))
    duration = _float(v.get("duration")) or _float(fmt.get("duration"))
    if n_frames <= 0 or duration <= 0:  # WebM and some AVIs carry neither: count packets
        counted, span = scan_packets(path, int(v["index"]))
        n_frames = n_frames if n_frames > 0 else counted
        duration = duration if duration > 0 else span
    if n_frames <= 0:
        raise MediaError("no_frames", "the video stream holds no frames")
    fps = _ratio(v.get("avg_frame_rate")) or _ratio(v.get("r_frame_rate"))
    if fps <= 0 or fps > 1000:
        fps = n_frames / duration if duration > 0 else 0.0
    sar = _ratio(v.get("sample_aspect_ratio")) or 1.0
    return ProbeInfo(
        container=str(fmt.get("format_name", "")),
        duration_s=duration,
        fps=fps,
        n_frames=n_frames,
        width=int(v.get("width", 0)),
        height=int(v.get("height", 0)),
        rotation=_rotation(v),
        sar=sar,
        video_stream=int(v["index"]),
        video_codec=str(v.get("codec_name", "")),
        audio_stream=int(a["index"]) if a else None,
        audio_codec=str(a.get("codec_name", "")) if a else None,
        audio_channels=int(a.get("channels", 0)) if a else None,
        audio_rate=int(_float(a.get("sample_rate"))) if a else None,
    )


def sample_indices(n_frames: int, num: int, method: str) -> np.ndarray:
    """Source frame index for each of ``num`` samples; repeats indices when ``n_frames < num``.

    ``uniform``: the centre frame of ``num`` equal segments of the whole video (TSN style).
    ``consecutive``: ``num`` adjacent frames centred in the video (C3D style).
    """
    if n_frames < 1 or num < 1:
        raise ValueError("need n_frames >= 1 and num >= 1")
    if method == "uniform" or n_frames < num:
        idx = ((np.arange(num) + 0.5) * n_frames / num).astype(np.int64)
    elif method == "consecutive":
        idx = (n_frames - num) // 2 + np.arange(num)
    else:
        raise ValueError(f"unknown sampling method {method!r}; valid: uniform, consecutive")
    return np.minimum(idx, n_frames - 1)


@dataclass(frozen=True)
class Clip:
    frames: np.ndarray  # (T, S, S, 3) uint8 RGB
    indices: np.ndarray  # (T,) source frame index of each sample
    n_unique: int  # distinct source frames actually decoded
    padded: bool  # fewer source frames than T, or fewer decoded than asked
    audio: np.ndarray | None  # (N,) float32 mono, None when there is no usable audio
    note: str  # "" or why audio/frames are not as asked (damaged data included)
    decode_errors: int  # error messages ffmpeg logged while decoding: damaged data in a stream
    first_error: str  # one of them (the same every run), "" when there is none


def _video_chain(stream, uniq: np.ndarray, sar: float, size: int, select: bool):
    if select:
        stream = stream.filter("select", "+".join(f"eq(n,{i})" for i in uniq))
    if abs(sar - 1.0) > 1e-3:  # non-square pixels: make them square before cropping
        stream = stream.filter("scale", "trunc(iw*sar/2)*2", "ih").filter("setsar", "1")
    stream = stream.filter("scale", size, size, force_original_aspect_ratio="increase", flags="area")
    return stream.filter("crop", size, size)


def decode_clip(path: str, info: ProbeInfo, num: int, method: str, size: int, audio_rate: int) -> Clip:
    """Decode ``num`` sampled frames (resized, centre-cropped, rotation applied) and mono audio."""
    idx = sample_indices(info.n_frames, num, method)
    uniq = np.unique(idx)
    # A consecutive window is contiguous: seek to it instead of decoding the whole file.
    seek = method == "consecutive" and uniq[0] > 0 and info.fps > 0
    raw, audio, note, errors = _decode(path, info, uniq, size, audio_rate, seek)
    if errors:
        # A seek can land between keyframes (MPEG-TS has no index): the decoder then starts on a frame
        # it cannot decode ("first frame is no keyframe") and the window's first frames are garbage.
        # Decoding from the start tells such errors from damage in the file, and gets the right frames.
        # Damaged data is decoded again on one thread: with frame threads, how the decoder conceals it,
        # and how many errors it logs, differ from run to run (issue 26: 44 or 45 errors, other pixels).
        raw, audio, note, errors = _decode(path, info, uniq, size, audio_rate, seek=False, threads=1)
    n_errors, first_error = decoder_errors(errors)
    if n_errors:
        damaged = f"decode_errors: ffmpeg reported {n_errors} decoder errors (damaged data), e.g.: {first_error}"
        note = f"{note}; {damaged}" if note else damaged
    got = np.frombuffer(raw, dtype=np.uint8)
    frame_bytes = size * size * 3
    k = got.size // frame_bytes
    if k == 0:
        raise MediaError("decode_error", "ffmpeg returned no frames for the sampled indices")
    got = got[: k * frame_bytes].reshape(k, size, size, 3)  # (K, H, W, C)
    pos = np.minimum(np.searchsorted(uniq, idx), k - 1)  # missing tail frames repeat the last decoded
    return Clip(
        frames=got[pos],  # (T, H, W, C)
        indices=idx,
        n_unique=min(k, len(uniq)),
        padded=bool(info.n_frames < num or k < len(uniq)),
        audio=audio,
        note=note,
        decode_errors=n_errors,
        first_error=first_error,
    )


def _decode(
    path: str, info: ProbeInfo, uniq: np.ndarray, size: int, audio_rate: int, seek: bool, threads: int = 0
) -> tuple[bytes, np.ndarray | None, str, bytes]:
    """One ffmpeg run: (raw frames, mono audio or None, note, ffmpeg's error log); ``threads`` 0: ffmpeg's
    choice, 1: every decoder on one thread (deterministic on damaged data)."""
    opts = {"threads": threads} if threads else {}
    v_in = ffmpeg.input(path, ss=f"{uniq[0] / info.fps:.6f}", **opts) if seek else ffmpeg.input(path, **opts)
    chain = _video_chain(v_in[str(info.video_stream)], uniq, info.sar, size, select=not seek)
    video_out = {"format": "rawvideo", "pix_fmt": "rgb24", "fps_mode": "passthrough", "vframes": len(uniq)}
    # The input's time base: in a coarser one, the frames of a variable frame rate video can share a dts,
    # and the rawvideo muxer logs an error for each (frames unchanged), which would read as damage.
    video_out["enc_time_base"] = -1
    with tempfile.TemporaryDirectory(prefix="decode-") as tmp:
        wav = os.path.join(tmp, "audio.f32")
        outputs = [ffmpeg.output(chain, "pipe:", **video_out)]
        if info.has_audio:
            a_in = ffmpeg.input(path, **opts) if seek else v_in
            outputs.append(ffmpeg.output(a_in[str(info.audio_stream)], wav, ac=1, ar=audio_rate, f="f32le"))
        note = ""
        try:
            raw, errors = _run(outputs)
        except MediaError:
            if len(outputs) == 1:
                raise
            raw, errors = _run(outputs[:1])  # audio streams some decoders choke on must not cost the frames
            note = "audio_error: audio stream failed to decode; treated as no audio"
        audio = np.fromfile(wav, dtype="<f4") if os.path.exists(wav) and not note else None
    if audio is not None and audio.size == 0:
        audio, note = None, "audio_empty: audio stream decoded to no samples"
    return raw, audio, note, errors


def _run(outputs: list) -> tuple[bytes, bytes]:
    """(stdout, stderr): errors and warnings, each tagged with its level (``[error]``, ``[warning]``).

    FFmpeg exits 0 on damaged data in the middle of a stream (``Invalid data found when processing
    input``, ``error while decoding MB``) and conceals it: stderr is the only sign, so it is kept.
    """
    spec = ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-hide_banner", "-loglevel", "repeat+level+warning")
    done = lifetime.run(spec.compile(overwrite_output=True))  # dies with the stage, even on SIGKILL
    if done.returncode != 0:
        raise MediaError("decode_error", f"ffmpeg failed: {_last_line(done.stderr)}")
    return done.stdout, done.stderr


_POINTER = re.compile(r" @ 0x[0-9a-fA-F]+\]")  # "[h264 @ 0x55d0c1e2]": differs per run, so notes would too
_LEVEL = re.compile(r"\[(panic|fatal|error|warning)\] ")
_REPEATED = re.compile(r"Last message repeated (\d+) times?")


def decoder_errors(stderr: bytes | str | None) -> tuple[int, str]:
    """(how many damage messages ffmpeg logged, one of them) from its ``-loglevel repeat+level+warning`` log.

    Every error counts. A warning counts only when it says "corrupt": a demuxer that drops a damaged
    packet (MPEG-TS: "Packet corrupt", "corrupt input packet in stream 0") warns and goes on, while
    other warnings ("Guessed Channel Layout", a deprecated pixel format) say nothing about the data.
    ``repeat`` keeps FFmpeg from folding identical messages into "Last message repeated N times", which
    it prints only when a different message follows (so a run ending on a repeat lost its count); a log
    that has such lines (without ``repeat``) counts N more times.
    """
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    count, messages, counted = 0, [], False
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if repeated := _REPEATED.search(line):
            count += int(repeated[1]) if counted else 0
            continue
        level = _LEVEL.search(line)
        message = _POINTER.sub("]", _LEVEL.sub("", line, count=1)).removeprefix("[NULL] ")  # no context name
        counted = level is None or level[1] != "warning" or "corrupt" in message.lower()
        if counted:
            count += 1
            messages.append(message)
    # the decoders of a file's streams log from their own threads, so which stream's message comes first
    # varies between runs: the one reported is the same every run, the first in sorted order of those
    # naming their decoder or demuxer ("[h264] ..."), else of all
    return count, min(messages, key=lambda m: (not m.startswith("["), m), default="")
