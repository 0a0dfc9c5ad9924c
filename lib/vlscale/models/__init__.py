"""The SigLIP model family (ViT, text transformer, two towers) with big_vision's names."""
