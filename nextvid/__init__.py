"""nextvid: masked next-frame autoregressive video pretraining (NExT-Vid) and its experiment suite."""

__version__ = "0.1.0"
