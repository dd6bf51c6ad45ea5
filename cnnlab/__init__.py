"""What training and serving share: the model repository layout and TensorFlow device set-up.

Neither `training` nor `service` imports the other; both import this."""
