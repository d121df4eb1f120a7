"""jaxmeta: JAX-native, vectorized meta-reinforcement learning."""

__version__ = "0.1.0"
