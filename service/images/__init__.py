"""Image operations: decode uploads safely, preprocess for a model, kernels, pooling, render."""
