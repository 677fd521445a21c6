"""Image sources (digits, CIFAR-100, list files, planted parts and looks), the long-tailed profile, and the loaders."""

# The planted sources (lpa.sources.planted), which carry every image's ground truth: named here,
# dependency-free, for the workflow's planning.
PLANTED_SOURCES = ("parts", "looks")
