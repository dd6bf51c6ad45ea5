"""The protocol-neutral dataplane every face calls (as KServe's and MLServer's
``DataPlane``): typed requests in, arrays and domain errors out.

    requests  what a face hands over: model references, tensors as declared, pictures
    budgets   every request's cost, summed over its parts, checked before the work
    tensors   declared tensors -> a model's input, checked before they are materialised
    examples  TF Serving's Classify examples (and their context) -> batch parts
    classes   the best classes of an output (Triton's classification extension)
    memory    bytes of request bodies and gRPC messages a worker holds: one budget
    work      bounded pools for CPU-heavy steps, off the event loop, within the deadline
    access    the API key, the same on every face
    results   what the DataPlane hands back: outputs, classified pictures, explanations
    plane     the DataPlane: infer, classify, inspect, image operations, metadata
"""
