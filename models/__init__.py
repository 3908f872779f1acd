"""Algorithms and the storage layer the workers share; imported by every process of ours
before TensorFlow, so that TensorFlow's log level is chosen here (see tensorflow_logs)."""

from models.tensorflow_logs import quiet_tensorflow_logs

quiet_tensorflow_logs()
