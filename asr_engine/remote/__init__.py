"""An engine split over processes: one engine process owns the model, front-end processes send it segments.

A front-end writes each cut segment's 16 kHz float32 samples into its own shared-memory arena
(``arena``) and sends a small message over a Unix domain socket (``wire``); the engine process
(``server``) batches segments from every front-end through its ``Engine`` and answers with the
``Hypothesis``. The front-end side (``client``, ``frontend``) is an ``Engine`` whose
``SegmentRecogniser`` is remote, so decoding, VAD, post-processing and assembly stay where they were.
Pure asyncio, mmap and numpy: nothing here knows of gRPC or databases.
"""
