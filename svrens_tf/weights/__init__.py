"""Defense weights from other frameworks: safe readers of released files (`pth`: PyTorch)."""
