"""voicecart: personalized voice shopping — item resolution and C-STAR trajectory embeddings."""

__version__ = "0.1.0"
