"""Turning images into network inputs and network outputs into instances and label maps."""
