"""The checkpoint directory: its meta.json record, the files it holds, and the fingerprint that says which training made them."""
