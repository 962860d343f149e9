"""CIFAR-10 proxy transfer benchmark: a zoo of small trained classifiers and Tables 1-2 at CIFAR scale."""
