"""Building blocks with per-layer streaming state: frame convs, ConvNeXt trunk, STFT front/head."""
