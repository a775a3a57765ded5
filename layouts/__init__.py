"""Functions that return Dash component trees; they never import callbacks."""
