"""What training and serving share: the model repository layout, the capture store, MNIST's
centring of a picture and TensorFlow device set-up.

Neither `training` nor `service` imports the other; both import this."""
