"""K-means backends beside faiss."""
