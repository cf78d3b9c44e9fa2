"""The text benchmark: SST-2 through the Hugging Face Trainer path (``benchmarks/text/run.py``)."""
