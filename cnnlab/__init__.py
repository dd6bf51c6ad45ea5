"""What training and serving share: the model repository layout, the capture store, MNIST's
centring of a picture, TensorFlow device set-up and when two runtimes' answers agree.

Neither `training` nor `service` imports the other; both import this."""
