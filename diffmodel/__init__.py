"""Low-cost image-to-image diffusion (Palette) with incremental learning and chained checkpoints."""
