"""The network and the process: the U-Net, the diffusion (schedule, loss, samplers, guidance), the tasks, the PEFT rule, and loading a trained checkpoint to sample from."""
