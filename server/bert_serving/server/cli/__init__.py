"""Console scripts: bert-serving-start, bert-serving-terminate, bert-serving-benchmark."""
