"""Torch-free analyses of one source file, shared by the source (NN1) and training (NN4) rules."""
