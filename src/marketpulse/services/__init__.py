"""The pipeline's stages as Kafka services: produce, process, sink."""
