"""The face front-end: detection, landmarks, alignment, AUs, expression prior, encoder."""
