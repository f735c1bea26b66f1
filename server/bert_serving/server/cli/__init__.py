"""Console scripts: ``bert-serving-start`` and ``bert-serving-terminate``."""
