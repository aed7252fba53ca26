"""Tests of codec.data: corpus tokenization and the LM datasets."""
