"""The protocol-neutral dataplane every face calls (as KServe's and MLServer's
``DataPlane``): typed requests in, arrays and domain errors out.

    requests  what a face hands over: model references, tensors as declared, pictures
    budgets   every request's cost, checked before the work is done
    tensors   declared tensors -> a model's input, checked before they are materialised
    pictures  encoded pictures -> a model's input, within the pixel budget
    work      bounded pools for CPU-heavy steps, off the event loop, with the timeout
    plane     the DataPlane: infer, classify, inspect, image operations, metadata
"""
