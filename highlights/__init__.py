"""highlights: a lesson's recordings in, a GIF of the child's best smiling moments out."""

__version__ = "0.1.0"
