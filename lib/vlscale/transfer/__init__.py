"""Transfer to a generative vision-language model (arXiv 2502.07617 §4.5): a run's image tower, frozen or not, under
a small PaliGemma-style decoder trained on tasks the synthetic world grades exactly."""
from vlscale.allocator import keep_freed_memory

# A transfer step's temporary buffers come from a heap that keeps them (vlscale.allocator; bench/allocator.py)
keep_freed_memory()
