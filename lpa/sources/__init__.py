"""Image sources (digits, CIFAR-100, list files, planted parts), the long-tailed profile, and the loaders."""
