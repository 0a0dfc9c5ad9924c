"""vlscale: the WebLI-100B data-scaling study, reproducible at any scale."""
__version__ = "0.1.0"
