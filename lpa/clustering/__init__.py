"""K-means beside faiss: the PyTorch backend, and the sample of local features it clusters."""
