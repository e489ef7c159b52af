package com.lingting.example;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A 16-bit PCM WAV file split into its format and raw sample bytes, so the samples can be streamed
 * as ENCODING_LINEAR16 (the encoding that gives results while audio is still being sent).
 */
final class WavFile {
  final int sampleRate;
  final int channels;
  final byte[] pcm;

  private WavFile(int sampleRate, int channels, byte[] pcm) {
    this.sampleRate = sampleRate;
    this.channels = channels;
    this.pcm = pcm;
  }

  /** Reads a RIFF/WAVE file; rejects anything but 16-bit integer PCM. */
  static WavFile read(Path path) throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
    if (buf.remaining() < 12 || buf.getInt(0) != 0x46464952 || buf.getInt(8) != 0x45564157) {
      throw new IOException(path + " is not a RIFF/WAVE file");
    }
    int pos = 12;
    int sampleRate = 0;
    int channels = 0;
    int bits = 0;
    int format = 0;
    while (pos + 8 <= buf.limit()) {
      int id = buf.getInt(pos);
      long size = Integer.toUnsignedLong(buf.getInt(pos + 4));
      int body = pos + 8;
      if (id == 0x20746d66) { // "fmt "
        format = buf.getShort(body) & 0xffff;
        channels = buf.getShort(body + 2) & 0xffff;
        sampleRate = buf.getInt(body + 4);
        bits = buf.getShort(body + 14) & 0xffff;
        if (format == 0xfffe && size >= 26) { // WAVE_FORMAT_EXTENSIBLE: the sub-format decides
          format = buf.getShort(body + 24) & 0xffff;
        }
      } else if (id == 0x61746164) { // "data"
        if (format != 1 || bits != 16) {
          throw new IOException(path + ": only 16-bit PCM can be streamed as LINEAR16"
              + " (format " + format + ", " + bits + " bits); send other files with 'transcribe'");
        }
        int end = (int) Math.min(buf.limit(), body + size);
        return new WavFile(sampleRate, channels, Arrays.copyOfRange(buf.array(), body, end));
      }
      pos = (int) (body + size + (size & 1)); // chunks are word-aligned
    }
    throw new IOException(path + ": no data chunk");
  }

  /** Bytes of {@code millis} milliseconds of audio. */
  int bytesFor(long millis) {
    return (int) (sampleRate * channels * 2L * millis / 1000L);
  }
}
