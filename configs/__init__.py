"""YAML presets shipped with the package (installed as ``codec.configs``)."""
