"""Noria's benchmarks: figures printed and saved, never timed assertions."""
