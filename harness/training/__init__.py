"""Closed-loop training: real models trained natively in every framework, and why they part (docs/training.md)."""
