"""The serving core: model repository, one loaded version, its runner and batcher, policies."""
