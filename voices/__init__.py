"""Hearing and speaking: audio in/out, speech recognition and synthesis."""
