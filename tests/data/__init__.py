"""Tests of codec.tokenize: corpus tokenization and the LM datasets."""
