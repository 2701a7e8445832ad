"""Images: the built-in synthetic generator, real image folders, the prepared arrays stages read, Algorithm 2's subsets."""
