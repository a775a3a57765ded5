"""Benchmarks of Panorama (run each as ``python -m bench.<name>``; see bench/README.md)."""
