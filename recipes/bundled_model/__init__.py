"""Recipe for Lingting's bundled default model: synthetic TTS corpus, training, export and evaluation."""
