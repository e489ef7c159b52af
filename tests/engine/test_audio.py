"""Audio decoding: every container, soundfile-equal values for lossless input, hostile input, limits."""

from __future__ import annotations

import asyncio
import io
import logging
import struct
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from asr_engine import audio as audio_module
from asr_engine.audio import (
    DecodedAudio,
    decode_audio,
    decode_audio_async,
    detect_container,
    pcm16le_to_float32,
    set_decode_threads,
)
from asr_engine.errors import (
    AudioDecodeError,
    AudioTooLongError,
    InvalidOptionsError,
    UnsupportedEncodingError,
)
from asr_engine.resample import _resample_sparse, resample
from asr_engine.types import AudioFormat

LINEAR16 = "linear16"


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def audio_dir(parity_dir: Path) -> Path:
    return parity_dir / "paraformer" / "audio"


@pytest.fixture(scope="module")
def tensors(parity_dir: Path) -> Path:
    return parity_dir / "paraformer" / "expected" / "tensors_en_16k"


@pytest.fixture(scope="module")
def speech(tensors: Path) -> np.ndarray:
    """3.78 s of real 16 kHz speech (FunASR's float32 view of en_16k.wav)."""
    return np.load(tensors / "waveform.npy")


def stereo_at(speech: np.ndarray, rate: int) -> np.ndarray:
    """(channels=2, n) float32 at ``rate``: speech left, 0.6 x speech plus a little noise right."""
    mono = resample(speech, 16000, rate)
    noise = np.random.default_rng(rate).normal(0, 0.002, mono.shape).astype(np.float32)
    return np.stack([mono, 0.6 * mono + noise]).astype(np.float32)


def wav_bytes(
    frames: np.ndarray,
    rate: int,
    *,
    bits: int = 16,
    floating: bool = False,
    extensible: bool = False,
    declared_data: int | None = None,
) -> bytes:
    """A RIFF/WAVE file of ``frames`` (n, channels) in [-1, 1], written byte by byte with numpy."""
    frames = np.ascontiguousarray(frames)
    channels = frames.shape[1]
    if floating:
        body = frames.astype("<f4" if bits == 32 else "<f8").tobytes()
    elif bits == 8:
        body = np.clip(np.round(frames * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    else:
        full = np.clip(np.round(frames * 2.0 ** (bits - 1)), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        ints = full.astype("<i4" if bits > 16 else "<i2")
        body = ints.tobytes() if bits != 24 else ints.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    tag = 3 if floating else 1
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * align, align, bits)
    if extensible:
        guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt += struct.pack("<HHI", 22, bits, 0) + guid
    size = len(body) if declared_data is None else declared_data
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"  # an odd-sized chunk to skip (padded)
    chunks += b"data" + struct.pack("<I", size) + body
    return b"RIFF" + struct.pack("<I", min(4 + len(chunks), 0xFFFFFFFF)) + b"WAVE" + chunks


def av_bytes(wave: np.ndarray, rate: int, fmt: str, codec: str, sample_fmt: str, **options: str) -> bytes:
    """Encode (channels, n) float32 with ffmpeg (through PyAV) into container ``fmt``."""
    layout = "mono" if wave.shape[0] == 1 else "stereo"
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options)
        assert isinstance(stream, av.AudioStream)
        stream.format = sample_fmt
        if sample_fmt.startswith("s16"):
            arr = np.clip(np.round(wave * 32767), -32768, 32767).astype(np.int16)
        else:
            arr = wave.astype(np.float32)
        if not sample_fmt.endswith("p"):
            arr = arr.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=sample_fmt, layout=layout)
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buf.getvalue()


def soundfile_view(data: bytes) -> np.ndarray:
    """What FunASR does with a file: soundfile float32 read, channel mean, torchaudio resample."""
    values, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return resample(values.mean(axis=1, dtype=np.float32), rate, 16000)


# ------------------------------------------------------------------------------------------ parity
def test_parity_files_match_funasr(audio_dir: Path, tensors: Path) -> None:
    cases = [
        ("en_16k.wav", "waveform", "wav", 16000, 1),
        ("en_8k.wav", "resampled_en_8k", "wav", 8000, 1),
        ("en_44k1_stereo.flac", "resampled_en_44k1_stereo", "flac", 44100, 2),
    ]
    for name, tensor, container, rate, channels in cases:
        decoded = decode_audio((audio_dir / name).read_bytes())
        expected = np.load(tensors / f"{tensor}.npy")
        assert (decoded.container, decoded.source_sample_rate_hz, decoded.source_channels) == (
            container,
            rate,
            channels,
        )
        assert decoded.samples.dtype == np.float32 and decoded.samples.shape == expected.shape
        assert decoded.duration_ms == expected.size * 1000 // 16000 == 3776
        np.testing.assert_allclose(decoded.samples, expected, rtol=0, atol=1e-5)


def test_resampler_dense_and_sparse_forms_agree(speech: np.ndarray) -> None:
    wave = torch.from_numpy(speech[:8000]).reshape(1, -1)
    for orig, new in [(44100, 16000), (8000, 16000), (22050, 16000), (16000, 48000)]:
        dense = resample(wave, orig, new)
        assert dense.shape[-1] == -(-8000 * new // orig)
        torch.testing.assert_close(_resample_sparse(wave, orig, new), dense, rtol=0, atol=1e-6)
    odd = resample(speech[:44101], 44101, 16000)  # coprime rates: the dense kernel would be 2.8 GB
    assert odd.shape == (16000,) and np.isfinite(odd).all()
    assert resample(speech, 16000, 16000) is speech


# ------------------------------------------------------------------------------------------ WAV
@pytest.mark.parametrize(
    ("bits", "floating", "extensible"),
    [
        (16, False, False),
        (8, False, False),
        (24, False, False),
        (32, False, False),
        (32, True, False),
        (64, True, False),
        (24, False, True),
        (32, True, True),
    ],
)
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_wav_variants_equal_soundfile(
    speech: np.ndarray, rate: int, bits: int, floating: bool, extensible: bool
) -> None:
    frames = stereo_at(speech[:16000], rate).T
    data = wav_bytes(frames, rate, bits=bits, floating=floating, extensible=extensible)
    decoded = decode_audio(data)
    assert (decoded.container, decoded.source_sample_rate_hz, decoded.source_channels) == ("wav", rate, 2)
    expected = soundfile_view(data)
    assert decoded.samples.shape == expected.shape == (-(-frames.shape[0] * 16000 // rate),)
    np.testing.assert_array_equal(decoded.samples, expected)
    assert decoded.samples.flags.writeable and decoded.samples.flags.c_contiguous


def test_wav_mono_and_many_channels(speech: np.ndarray) -> None:
    mono = decode_audio(wav_bytes(speech[:, None], 16000))
    np.testing.assert_array_equal(mono.samples, speech)  # 16-bit speech round-trips exactly
    six = np.stack([speech * (k + 1) / 8 for k in range(6)], axis=1)
    decoded = decode_audio(wav_bytes(six, 16000, bits=32, floating=True))
    assert decoded.source_channels == 6
    np.testing.assert_allclose(decoded.samples, six.mean(axis=1), atol=1e-7)


def test_wav_with_a_codec_for_ffmpeg(speech: np.ndarray) -> None:
    data = av_bytes(stereo_at(speech[:16000], 8000), 8000, "wav", "pcm_mulaw", "s16")
    decoded = decode_audio(data)
    assert (decoded.container, decoded.source_sample_rate_hz, decoded.source_channels) == ("wav", 8000, 2)
    np.testing.assert_allclose(decoded.samples, soundfile_view(data), atol=1e-6)


def test_truncated_wav_decodes_the_whole_frames_present(speech: np.ndarray) -> None:
    data = wav_bytes(np.stack([speech, -speech], axis=1), 16000)
    full = decode_audio(data).samples
    cut = decode_audio(data[: len(data) - 1001])  # data chunk declares more than is there, and a half frame
    kept = (len(speech) * 4 - 1001) // 4
    assert cut.samples.size == kept
    np.testing.assert_array_equal(cut.samples, full[:kept])
    header_end = len(data) - len(speech) * 4
    for size in (header_end, header_end + 3, 30, 12, 4):
        with pytest.raises(AudioDecodeError):
            decode_audio(data[:size])


def test_wav_header_claiming_2_pow_31_samples_is_cheap(speech: np.ndarray) -> None:
    data = wav_bytes(speech[:16000, None], 16000, declared_data=2**32 - 2)  # 2^31 int16 samples claimed
    tracemalloc.start()
    try:
        decoded = decode_audio(data, max_duration_ms=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decoded.duration_ms == 1000 and decoded.samples.size == 16000
    assert peak < 2_000_000  # a few copies of 1 s of audio, nothing sized by the header
    huge_rate = bytearray(data)
    huge_rate[24:28] = struct.pack("<I", 2**31)
    with pytest.raises(AudioDecodeError, match="sample rate"):
        decode_audio(bytes(huge_rate))


def test_wav_structural_errors(speech: np.ndarray) -> None:
    data = wav_bytes(speech[:1600, None], 16000)
    no_fmt = data[:12] + data[data.index(b"LIST") :]
    with pytest.raises(AudioDecodeError, match="fmt"):
        decode_audio(no_fmt)
    no_data = data[: data.index(b"data")]
    with pytest.raises(AudioDecodeError, match="no data chunk"):
        decode_audio(no_data)
    zero_channels = bytearray(data)
    zero_channels[22:24] = b"\x00\x00"
    with pytest.raises(AudioDecodeError, match="channels"):
        decode_audio(bytes(zero_channels))
    nan = wav_bytes(np.full((160, 1), np.nan, dtype=np.float32), 16000, bits=32, floating=True)
    with pytest.raises(AudioDecodeError, match="NaN"):
        decode_audio(nan)


# ------------------------------------------------------------------------------------------ PyAV
def test_flac_equals_soundfile(speech: np.ndarray) -> None:
    for rate, channels in [(22050, 1), (48000, 2)]:
        wave = stereo_at(speech[:24000], rate)[:channels]
        data = av_bytes(wave, rate, "flac", "flac", "s16")
        decoded = decode_audio(data)
        assert (decoded.container, decoded.source_sample_rate_hz, decoded.source_channels) == (
            "flac",
            rate,
            channels,
        )
        np.testing.assert_array_equal(decoded.samples, soundfile_view(data))


@pytest.mark.parametrize(
    ("container", "fmt", "codec", "sample_fmt", "rate", "options"),
    [
        ("mp3", "mp3", "libmp3lame", "fltp", 44100, {}),
        ("mp4", "ipod", "aac", "fltp", 48000, {}),
        ("ogg", "ogg", "libopus", "flt", 48000, {}),
        ("webm", "webm", "libopus", "flt", 48000, {}),
        ("ogg", "ogg", "vorbis", "fltp", 22050, {"strict": "experimental"}),
    ],
)
def test_lossy_containers(
    speech: np.ndarray,
    container: str,
    fmt: str,
    codec: str,
    sample_fmt: str,
    rate: int,
    options: dict[str, str],
) -> None:
    wave = stereo_at(speech, rate)
    decoded = decode_audio(av_bytes(wave, rate, fmt, codec, sample_fmt, **options))
    assert (decoded.container, decoded.source_sample_rate_hz, decoded.source_channels) == (container, rate, 2)
    reference = resample(wave.mean(axis=0), rate, 16000)
    assert abs(decoded.duration_ms - 3776) <= 100  # codecs round up to their frame size
    n = min(reference.size, decoded.samples.size)
    got, ref = decoded.samples[:n], reference[:n]
    # Cross-correlation through the FFT; lags of up to 0.2 s (AAC / ffmpeg-vorbis priming) are allowed.
    xc = np.fft.irfft(np.fft.rfft(got, 2 * n) * np.conj(np.fft.rfft(ref, 2 * n)), 2 * n)
    window = np.concatenate([xc[-3200:], xc[:3201]])
    corr = float(window.max()) / float(np.linalg.norm(got) * np.linalg.norm(ref))
    assert corr > 0.95


def test_corrupt_compressed_input(speech: np.ndarray) -> None:
    flac = av_bytes(stereo_at(speech[:16000], 16000), 16000, "flac", "flac", "s16")
    with pytest.raises(AudioDecodeError):
        decode_audio(flac[:60])  # header only
    with pytest.raises(AudioDecodeError):
        decode_audio(b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    with pytest.raises(AudioDecodeError):
        decode_audio(b"OggS" + bytes(500))
    rng = np.random.default_rng(7)
    mangled = bytearray(flac)
    mangled[200:] = rng.integers(0, 256, len(flac) - 200, dtype=np.uint8).tobytes()
    try:
        result = decode_audio(bytes(mangled))  # ffmpeg may salvage frames; it must not raise anything else
        assert isinstance(result, DecodedAudio)
    except AudioDecodeError:
        pass


# ------------------------------------------------------------------------------------------ hostile input
def test_empty_and_random_bytes() -> None:
    with pytest.raises(AudioDecodeError, match="empty"):
        decode_audio(b"")
    rng = np.random.default_rng(1)
    for size in (1, 3, 11, 4096):
        junk = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        junk = b"\x01" + junk[1:]
        with pytest.raises(UnsupportedEncodingError, match="unrecognised"):
            decode_audio(junk)
    for sync in (b"\xff\xfb", b"\xff\xf1", b"ID3"):
        with pytest.raises(AudioDecodeError):
            decode_audio(sync + rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())


def test_detect_container() -> None:
    assert detect_container(b"RIFF\x00\x00\x00\x00WAVEfmt ") == "wav"
    assert detect_container(b"fLaC\x00") == "flac"
    assert detect_container(b"\x1a\x45\xdf\xa3\x01") == "webm"
    assert detect_container(b"\x00\x00\x00\x18ftypisom") == "mp4"
    assert detect_container(b"\xff\xfb\x90\x00") == "mp3"
    assert detect_container(b"\xff\xf1\x50\x80") == "aac"
    assert detect_container(b"\xff\xfb\x90\x00", strong_only=True) is None
    assert detect_container(b"hello world!") is None


def test_max_duration(audio_dir: Path, speech: np.ndarray) -> None:
    wav = (audio_dir / "en_16k.wav").read_bytes()
    with pytest.raises(AudioTooLongError) as caught:
        decode_audio(wav, max_duration_ms=1000)
    assert (caught.value.duration_ms, caught.value.limit_ms) == (3776, 1000)
    assert decode_audio(wav, max_duration_ms=3776).duration_ms == 3776
    mp3 = av_bytes(stereo_at(speech, 44100), 44100, "mp3", "libmp3lame", "fltp")
    with pytest.raises(AudioTooLongError) as caught:
        decode_audio(mp3, max_duration_ms=500)  # stops decoding soon after 500 ms
    assert caught.value.limit_ms == 500 and caught.value.duration_ms > 500
    pcm = (speech * 32768).astype("<i2").tobytes()
    with pytest.raises(AudioTooLongError):
        decode_audio(
            pcm, AudioFormat(encoding=LINEAR16, sample_rate_hz=16000, channels=1), max_duration_ms=100
        )


def test_mislabelled_encoding_goes_by_the_header(audio_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    wav = (audio_dir / "en_16k.wav").read_bytes()
    flac = (audio_dir / "en_44k1_stereo.flac").read_bytes()
    with caplog.at_level(logging.INFO, logger="asr_engine.audio"):
        assert decode_audio(wav, AudioFormat(encoding="mp3")).container == "wav"
    assert "mp3" in caplog.text and "wav" in caplog.text
    assert decode_audio(flac, AudioFormat(encoding="ogg_opus")).container == "flac"
    assert decode_audio(flac, AudioFormat(encoding=LINEAR16)).container == "flac"  # rate not needed then
    with pytest.raises(InvalidOptionsError) as caught:
        decode_audio(wav, AudioFormat(encoding="speex"))
    assert caught.value.field == "encoding"
    with pytest.raises(UnsupportedEncodingError, match="flac"):
        decode_audio(b"\x01\x02" * 100, AudioFormat(encoding="flac"))


# ------------------------------------------------------------------------------------------ LINEAR16
def test_linear16(speech: np.ndarray) -> None:
    stereo = stereo_at(speech, 8000)
    ints = np.clip(np.round(stereo.T * 32768), -32768, 32767).astype("<i2")
    data = ints.tobytes()
    decoded = decode_audio(data, AudioFormat(encoding=LINEAR16, sample_rate_hz=8000, channels=2))
    assert (decoded.container, decoded.source_sample_rate_hz, decoded.source_channels) == ("pcm", 8000, 2)
    expected = resample((ints.astype(np.float32) / 32768).mean(axis=1, dtype=np.float32), 8000, 16000)
    np.testing.assert_array_equal(decoded.samples, expected)
    odd = decode_audio(data + b"\x01", AudioFormat(encoding=LINEAR16, sample_rate_hz=8000, channels=2))
    np.testing.assert_array_equal(odd.samples, decoded.samples)  # the incomplete trailing frame is dropped
    minus_one = np.full(1600, -1, dtype="<i2").tobytes()  # starts 0xFF 0xFF, like an MPEG frame sync
    assert (
        decode_audio(minus_one, AudioFormat(encoding=LINEAR16, sample_rate_hz=16000, channels=1)).duration_ms
        == 100
    )
    for fmt, field in [
        (AudioFormat(encoding=LINEAR16, channels=1), "sample_rate_hertz"),
        (AudioFormat(encoding=LINEAR16, sample_rate_hz=16000), "audio_channel_count"),
        (AudioFormat(encoding=LINEAR16, sample_rate_hz=5, channels=1), "sample_rate_hertz"),
    ]:
        with pytest.raises(InvalidOptionsError) as caught:
            decode_audio(data, fmt)
        assert caught.value.field == field
    with pytest.raises(AudioDecodeError, match="no complete"):
        decode_audio(b"\x01\x02\x03", AudioFormat(encoding=LINEAR16, sample_rate_hz=16000, channels=2))


def test_pcm16le_to_float32() -> None:
    data = np.array([0, 16384, -32768, 32767, 100, -100], dtype="<i2").tobytes()
    np.testing.assert_array_equal(
        pcm16le_to_float32(data, 1),
        np.array([0, 0.5, -1, 32767 / 32768, 100 / 32768, -100 / 32768], dtype=np.float32),
    )
    np.testing.assert_array_equal(
        pcm16le_to_float32(data, 2), np.array([0.25, -1 / 65536, 0], dtype=np.float32)
    )
    assert pcm16le_to_float32(b"", 1).shape == (0,)
    with pytest.raises(AudioDecodeError):
        pcm16le_to_float32(data[:5], 1)
    with pytest.raises(AudioDecodeError):
        pcm16le_to_float32(data[:4], 3)


# ------------------------------------------------------------------------------------------ async
async def test_decode_audio_async(audio_dir: Path) -> None:
    data = (audio_dir / "en_44k1_stereo.flac").read_bytes()
    expected = decode_audio(data).samples
    decoded = await decode_audio_async(data)
    np.testing.assert_array_equal(decoded.samples, expected)
    with ThreadPoolExecutor(1) as pool:
        results = await asyncio.gather(*(decode_audio_async(data, executor=pool) for _ in range(3)))
    assert all(np.array_equal(r.samples, expected) for r in results)
    with pytest.raises(AudioTooLongError):
        await decode_audio_async(data, max_duration_ms=10)
    with pytest.raises(AudioDecodeError):
        await decode_audio_async(b"")


async def test_decode_threads_size_the_shared_pool(audio_dir: Path) -> None:
    """A front-end process sizes the shared pool to its share of the cores; decoding still works."""
    data = (audio_dir / "en_44k1_stereo.flac").read_bytes()
    expected = decode_audio(data).samples
    try:
        set_decode_threads(2)
        names: set[str] = set()

        def decode_and_name() -> np.ndarray:
            names.add(threading.current_thread().name)
            time.sleep(0.05)  # overlap the jobs, so every thread of the pool is used
            return decode_audio(data).samples

        loop = asyncio.get_running_loop()
        pool = audio_module._pool()
        results = await asyncio.gather(*(loop.run_in_executor(pool, decode_and_name) for _ in range(6)))
        assert all(np.array_equal(r, expected) for r in results)
        assert len(names) == 2  # never more threads than asked for
        decoded = await decode_audio_async(data)  # the public path uses the same pool
        np.testing.assert_array_equal(decoded.samples, expected)
        with pytest.raises(ValueError, match="at least 1"):
            set_decode_threads(0)
    finally:
        set_decode_threads(1)  # retires the 2-thread pool; then back to the default size for later tests
        audio_module._pool_workers = None


@pytest.mark.gpu
def test_resample_on_cuda(audio_dir: Path, tensors: Path) -> None:
    values, rate = sf.read(audio_dir / "en_44k1_stereo.flac", dtype="float32")
    wave = torch.from_numpy(values.mean(axis=1, dtype=np.float32)).cuda()
    got = resample(wave, rate, 16000)
    assert got.device.type == "cuda"
    expected = np.load(tensors / "resampled_en_44k1_stereo.npy")
    np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=0, atol=1e-5)
    odd = resample(wave[:44101], 44101, 16000)
    np.testing.assert_allclose(
        odd.cpu().numpy(), resample(values.mean(axis=1)[:44101], 44101, 16000), atol=1e-5
    )


def test_public_api() -> None:
    import asr_engine.audio as audio
    import asr_engine.resample as resampling

    assert sorted(audio.__all__) == [
        "DecodedAudio",
        "SAMPLE_RATE",
        "decode_audio",
        "decode_audio_async",
        "detect_container",
        "pcm16le_to_float32",
        "set_decode_threads",
    ]
    assert sorted(resampling.__all__) == ["StreamResampler", "resample", "sinc_kernel"]
