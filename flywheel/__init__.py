"""flywheel: iterative weak-to-strong alignment (Nemotron-4 340B recipe) as an orchestrated DAG."""

__version__ = "0.1.0"
