"""Transfer to a generative vision-language model (arXiv 2502.07617 §4.5): a run's image tower, frozen or not, under
a small PaliGemma-style decoder trained on tasks the synthetic world grades exactly."""
