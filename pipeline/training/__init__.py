"""Training one run of the grid: the loop, its resume state, augmentation, losses, and the fingerprint of what
training depends on."""
