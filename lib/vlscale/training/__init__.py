"""Training: the paper's sigmoid loss, learning-rate schedule in examples seen, and optimiser."""
