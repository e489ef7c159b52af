"""Lingting's inference engine: audio in, typed transcripts out. Knows nothing of gRPC or databases."""
