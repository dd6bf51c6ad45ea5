"""The gRPC faces: TensorFlow Serving's PredictionService and ModelService, and the Open
Inference Protocol's GRPCInferenceService, on one port, over the same repository."""
