"""fastlearn: a fast.ai-style deep-learning library on PyTorch."""
__version__ = "0.1.0"
