"""TwinBERT-style twin encoders distilled from a cross-encoder, with an offline FAISS index."""
