"""Tests of the training recipe (codec.train) and of codec.metrics."""
