"""The one training loop, in resumable sessions: setup, the optimizer step, sessions, the resume policy, precision, several processes."""
