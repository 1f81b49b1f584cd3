"""rmsprop-harness: drive real framework RMSprop optimizers against the float64 reference."""

__version__ = "0.1.0"
