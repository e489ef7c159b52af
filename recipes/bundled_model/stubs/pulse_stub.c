/* Stand-ins for libpulse / libpulse-simple so that espeak-ng and festival load on a machine without
 * PulseAudio. The TTS engines only write WAV files, so no audio-output function is ever reached;
 * each stub returns "failure" should it be called. */
#include <stddef.h>
void *pa_simple_new(void) { return NULL; }
int pa_simple_write(void) { return -1; }
int pa_simple_drain(void) { return -1; }
int pa_simple_flush(void) { return -1; }
void pa_simple_free(void) { }
const char *pa_strerror(int e) { (void)e; return "pulse stub"; }
size_t pa_bytes_per_second(void) { return 1; }
